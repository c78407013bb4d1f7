//! The LSTM decoder against the PyTorch original's DecoderRNN and its `caption_image` loop
//! (`tools/model/generate_decoder_fixtures.py`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use caption_model::{DecoderConfig, DecoderRNN};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load() -> (DecoderRNN, std::collections::HashMap<String, Tensor>, Value) {
    let tensors = candle_core::safetensors::load(fixture("decoder.safetensors"), &Device::Cpu).unwrap();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(fixture("decoder_greedy.json")).unwrap()).unwrap();
    let size = |k: &str| meta["sizes"][k].as_u64().unwrap() as usize;
    let config = DecoderConfig {
        embed_size: size("embed_size"),
        hidden_size: size("hidden_size"),
        vocab_size: size("vocab_size"),
        num_layers: size("num_layers"),
    };
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    (DecoderRNN::new(vb.pp("decoder"), config).unwrap(), tensors, meta)
}

#[test]
fn teacher_forced_logits_equal_the_original() {
    let (decoder, tensors, _) = load();
    let logits = decoder.forward(&tensors["features"], &tensors["captions"], None).unwrap();
    let expected = &tensors["teacher_forced"];
    assert_eq!(logits.dims(), expected.dims());
    let difference = (logits - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let scale = expected.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    eprintln!("teacher-forced logits: largest difference {difference:e} (scale {scale})");
    assert!(difference <= 1e-5 * scale.max(1.0), "{difference}");
}

#[test]
fn greedy_decoding_equals_caption_image() {
    let (decoder, tensors, meta) = load();
    let eos = meta["eos"].as_u64().unwrap() as u32;
    let expected: Vec<Vec<u32>> = meta["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ids| ids.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect())
        .collect();
    // All rows at once, and each row alone as the original decodes them.
    let batched = decoder.greedy(&tensors["features"], 50, eos).unwrap();
    for (row, want) in expected.iter().enumerate() {
        assert_eq!(&batched[row].0, want, "row {row} (batched)");
        let alone = decoder.greedy(&tensors["features"].narrow(0, row, 1).unwrap(), 50, eos).unwrap();
        assert_eq!(&alone[0].0, want, "row {row} (alone)");
        assert!(batched[row].1 <= 0.0 && batched[row].1.is_finite());
    }
    assert!(expected.iter().any(|ids| ids.len() < 50) && expected.iter().any(|ids| ids.len() == 50));
}

/// Decoder weights from a fixed pseudo-random sequence (scaled so that the logits are far apart:
/// greedy choices then do not hinge on rounding).
fn pseudo_random_weights(config: DecoderConfig) -> std::collections::HashMap<String, Tensor> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut tensor = |shape: &[usize], scale: f32| {
        let values: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    };
    let (e, h, v) = (config.embed_size, config.hidden_size, config.vocab_size);
    let mut tensors = std::collections::HashMap::new();
    tensors.insert("embed.weight".to_string(), tensor(&[v, e], 2.0));
    for k in 0..config.num_layers {
        let input = if k == 0 { e } else { h };
        tensors.insert(format!("lstm.weight_ih_l{k}"), tensor(&[4 * h, input], 3.0 / (input as f32).sqrt()));
        tensors.insert(format!("lstm.weight_hh_l{k}"), tensor(&[4 * h, h], 3.0 / (h as f32).sqrt()));
        tensors.insert(format!("lstm.bias_ih_l{k}"), tensor(&[4 * h], 1.0));
        tensors.insert(format!("lstm.bias_hh_l{k}"), tensor(&[4 * h], 1.0));
    }
    tensors.insert("linear.weight".to_string(), tensor(&[v, h], 40.0 / (h as f32).sqrt()));
    tensors.insert("linear.bias".to_string(), tensor(&[v], 1.0));
    tensors
}

/// Features 0, 1, 2, … as `rows` × `width` (each caller maps them to a bounded, varied input).
fn ramp(rows: usize, width: usize) -> Tensor {
    Tensor::arange(0f32, (rows * width) as f32, &Device::Cpu).unwrap().reshape((rows, width)).unwrap()
}

fn decoder_in(dtype: DType, weights: &std::collections::HashMap<String, Tensor>, config: DecoderConfig) -> DecoderRNN {
    let weights = weights.iter().map(|(name, w)| (name.clone(), w.to_dtype(dtype).unwrap())).collect();
    DecoderRNN::new(VarBuilder::from_tensors(weights, dtype, &Device::Cpu), config).unwrap()
}

#[test]
fn cpu_greedy_equals_the_reference_path() {
    // Sizes that are not multiples of the kernels' vector width, one and two layers.
    for (embed_size, hidden_size, vocab_size, num_layers) in [(37, 45, 301, 1), (64, 256, 2994, 1), (24, 40, 500, 2)] {
        let config = DecoderConfig { embed_size, hidden_size, vocab_size, num_layers };
        let weights = pseudo_random_weights(config);
        let decoder = decoder_in(DType::F32, &weights, config);
        let features = ramp(6, embed_size).sin().unwrap();
        // An end token that one row reaches after two words or more and another row never does, so rows
        // leave the batch at different steps.
        let free = decoder.greedy_with_tensors(&features, 50, u32::MAX).unwrap();
        let first_at = |ids: &[u32], word: u32| ids.iter().position(|&id| id == word);
        let eos = free
            .iter()
            .flat_map(|(ids, _)| ids.iter().copied())
            .find(|&word| {
                free.iter().any(|(ids, _)| first_at(ids, word).is_some_and(|at| at >= 2))
                    && free.iter().any(|(ids, _)| first_at(ids, word).is_none())
            })
            .expect("the rows' captions differ");
        // The backend layer's switch forces the reference path: tensor operations.
        let tensor_ops = caption_model::backend::with_reference_only(|| decoder.greedy(&features, 50, eos)).unwrap();
        assert_eq!(tensor_ops, decoder.greedy_with_tensors(&features, 50, eos).unwrap(), "forced: the tensor path");
        let got = decoder.greedy(&features, 50, eos).unwrap();
        // The same loop in float64 is the reference both float32 paths approximate.
        let exact = decoder_in(DType::F64, &weights, config)
            .greedy_with_tensors(&features.to_dtype(DType::F64).unwrap(), 50, eos)
            .unwrap();
        assert!(exact.iter().any(|(ids, _)| ids.len() < 50) && exact.iter().any(|(ids, _)| ids.len() > 3));
        for (row, (want_ids, want_score)) in exact.iter().enumerate() {
            assert_eq!(&got[row].0, want_ids, "{config:?} row {row}");
            assert_eq!(&tensor_ops[row].0, want_ids, "{config:?} row {row} (tensor operations)");
            let error = |score: f32| (score - want_score).abs() / want_score.abs().max(1.0);
            assert!(error(got[row].1) <= 2e-6, "{} vs {want_score}", got[row].1);
            assert!(error(tensor_ops[row].1) <= 2e-6, "{} vs {want_score} (tensor operations)", tensor_ops[row].1);
        }
        // Inside a rayon task the CPU loop runs on one thread: the same results, to the bit.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(pool.install(|| decoder.greedy(&features, 50, eos).unwrap()), got, "one thread");
        let alone = decoder.greedy(&features.narrow(0, 4, 1).unwrap(), 50, eos).unwrap();
        // Features of the wrong width are an error, as on the tensor path, not a panic.
        let narrow = features.narrow(1, 0, embed_size - 1).unwrap();
        assert!(decoder.greedy(&narrow, 50, eos).unwrap_err().to_string().contains("columns"));
        assert!(decoder.greedy_with_tensors(&narrow, 50, eos).is_err());
        assert_eq!(alone[0], got[4], "one row alone equals the same row in a batch, to the bit");
        // Many rows run matrix products instead of dot products: the same words, the
        // log-probabilities equal to rounding.
        let many = decoder.greedy(&Tensor::cat(&[&features; 4], 0).unwrap(), 50, eos).unwrap();
        for (row, (ids, score)) in many.iter().enumerate() {
            assert_eq!(ids, &got[row % 6].0, "{config:?} row {row} of 24");
            assert!((score - got[row % 6].1).abs() <= 2e-6 * score.abs().max(1.0), "{score} vs {}", got[row % 6].1);
        }
    }
}

/// Sampling on the CPU loop (blocks of the vocabulary, each thread's own copy of the random
/// streams) draws the words the reference path draws over `decoding_steps` from the same seeds,
/// at several temperatures, with rows that end at different steps; the same on one thread, and
/// an image alone draws the words it draws in a batch.
#[test]
fn cpu_sampling_draws_what_the_reference_path_draws() {
    let sizes = [(37, 45, 301, 1, 1.0), (64, 256, 2994, 1, 1.0), (24, 40, 700, 2, 3.2)];
    for (embed_size, hidden_size, vocab_size, num_layers, eos_bias) in sizes {
        let config = DecoderConfig { embed_size, hidden_size, vocab_size, num_layers };
        let mut weights = pseudo_random_weights(config);
        // Flatter distributions than greedy's test wants (many words worth drawing), and an end
        // token a few times likelier than most words.
        let linear = weights["linear.weight"].affine(0.05, 0.0).unwrap();
        weights.insert("linear.weight".into(), linear);
        let eos = 3u32;
        let mut bias = weights["linear.bias"].to_vec1::<f32>().unwrap();
        bias[eos as usize] += eos_bias;
        weights.insert("linear.bias".into(), Tensor::new(bias, &Device::Cpu).unwrap());
        let decoder = decoder_in(DType::F32, &weights, config);
        let features = ramp(4, embed_size).cos().unwrap();
        let seeds = [11, 12, 13, 14];
        for temperature in [1.0, 0.7, 1.6] {
            let sampling = caption_model::Sampling { temperature, ..caption_model::Sampling::default() };
            let draw = || decoder.sample(&features, (&seeds, 5), (15, eos), sampling).unwrap();
            let got = draw();
            let reference = caption_model::backend::with_reference_only(draw);
            let lengths: Vec<usize> = got.iter().flatten().map(|c| c.ids.len()).collect();
            assert!(lengths.iter().any(|&n| n < 8) && lengths.contains(&15), "{config:?}: {lengths:?}");
            let distinct: std::collections::HashSet<&Vec<u32>> = got.iter().flatten().map(|c| &c.ids).collect();
            assert!(distinct.len() >= 15, "captions differ: {config:?}");
            for (image, (mine, theirs)) in got.iter().zip(&reference).enumerate() {
                for (k, (a, b)) in mine.iter().zip(theirs).enumerate() {
                    let at = format!("{config:?} T={temperature} image {image} sample {k}");
                    assert_eq!(a.ids, b.ids, "{at}");
                    assert_eq!(a.finished, b.finished, "{at}");
                    assert!((a.log_prob - b.log_prob).abs() <= 2e-5 * b.log_prob.abs().max(1.0), "{at}");
                }
            }
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            assert_eq!(pool.install(draw), got, "one thread");
            let alone = decoder.sample(&features.narrow(0, 2, 1).unwrap(), (&seeds[2..3], 5), (15, eos), sampling);
            // Bit for bit: rows finish at different steps, so the last rows of each run are
            // decoded with few others beside them.
            assert_eq!(alone.unwrap()[0], got[2], "an image alone draws what it draws in a batch");
        }
        assert!(decoder.sample(&features, (&seeds[..3], 5), (15, eos), caption_model::Sampling::default()).is_err());
    }
}
