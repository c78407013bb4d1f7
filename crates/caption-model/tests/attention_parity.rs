//! The attention decoder against the PyTorch reference module (tools/model/attention_reference.py,
//! fixtures from tools/model/generate_attention_fixtures.py): teacher-forced scores, attention
//! weights, the loss with the doubly stochastic term, and the gradient of every parameter and of
//! the encoder grid, in float64 (≤ 1e-10) and float32 (≤ 1e-5).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use caption_model::attention::attention_loss;
use caption_model::backend::views::AttentionTargets;
use caption_model::{AttentionConfig, DecoderWithAttention};

#[path = "common/relative.rs"]
mod common_relative;
use common_relative::relative;

/// Unweighted captions (batch × tokens) of which `lengths` count.
fn targets<'a>(ids: &'a Tensor, lengths: &'a [usize]) -> AttentionTargets<'a> {
    AttentionTargets { ids, lengths, weights: None }
}

/// The fixture's sizes.
const CONFIG: AttentionConfig = AttentionConfig {
    encoder_dim: 16,
    attention_dim: 12,
    embed_dim: 10,
    decoder_dim: 14,
    vocab_size: 23,
    dropout: 0.5,
};

/// The decoder with the fixture's weights, without gradients.
fn fixture_decoder(fixtures: &HashMap<String, Tensor>, dtype: DType) -> DecoderWithAttention {
    let tensors: HashMap<String, Tensor> = fixtures
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("param/").map(|name| (name.to_string(), v.clone())))
        .collect();
    DecoderWithAttention::new(VarBuilder::from_tensors(tensors, dtype, &Device::Cpu), CONFIG).unwrap()
}

fn fixtures() -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/attention_decoder.safetensors");
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// A fixture's int64 values (ids, lengths).
fn integers(tensor: &Tensor) -> Vec<u32> {
    tensor.to_vec1::<i64>().unwrap().iter().map(|&i| i as u32).collect()
}

fn check(dtype: DType, prefix: &str, tolerance: f64) {
    let fixtures = fixtures();
    let varmap = VarMap::new();
    let decoder = DecoderWithAttention::new(VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu), CONFIG).unwrap();
    let parameters: HashMap<String, Var> = varmap.data().lock().unwrap().clone();
    assert_eq!(parameters.len(), fixtures.keys().filter(|k| k.starts_with("param/")).count());
    for (name, var) in &parameters {
        var.set(&fixtures[&format!("param/{name}")].to_dtype(dtype).unwrap()).unwrap();
    }
    let grid = Var::from_tensor(&fixtures["encoder_out"].to_dtype(dtype).unwrap()).unwrap();
    let captions = &fixtures["captions"];
    let lengths: Vec<usize> = integers(&fixtures["lengths"]).iter().map(|&l| l as usize).collect();

    let output = decoder.forward(grid.as_tensor(), captions, &lengths, None).unwrap();
    // PAD is 0 in the fixture's captions, as in the original's vocabulary.
    let loss = attention_loss(&output, captions, 0, None, 1.0).unwrap();
    let mut worst = Vec::new();
    let mut compare = |what: String, actual: &Tensor, expected: &Tensor| {
        let difference = relative(actual, expected);
        worst.push((difference, what.clone()));
        assert!(difference <= tolerance, "{prefix} {what}: relative difference {difference:e}");
    };
    compare("scores".into(), &output.scores, &fixtures[&format!("{prefix}/scores")]);
    compare("alphas".into(), &output.alphas, &fixtures[&format!("{prefix}/alphas")]);
    compare("loss".into(), &loss.reshape(1).unwrap(), &fixtures[&format!("{prefix}/loss")]);
    let gradients = loss.backward().unwrap();
    compare(
        "grad encoder_out".into(),
        gradients.get(grid.as_tensor()).unwrap(),
        &fixtures[&format!("{prefix}/grad/encoder_out")],
    );
    for (name, var) in &parameters {
        let gradient = gradients.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        if name == "attention.full_att.bias" {
            // Adding a constant to every position's score leaves the softmax unchanged: this
            // gradient is zero, and both sides hold only rounding noise (PyTorch: 7e-18 in
            // float64, 2e-9 in float32).
            let largest = gradient.abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap();
            let largest = largest.to_scalar::<f64>().unwrap();
            assert!(largest <= tolerance * 1e-2, "{prefix} grad {name}: {largest:e}, not zero");
            continue;
        }
        compare(format!("grad {name}"), gradient, &fixtures[&format!("{prefix}/grad/{name}")]);
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("{prefix}: largest relative difference {:e} ({})", worst[0].0, worst[0].1);
}

#[test]
fn teacher_forcing_loss_and_gradients_equal_pytorch_in_float64() {
    check(DType::F64, "f64", 1e-10);
}

#[test]
fn teacher_forcing_loss_and_gradients_equal_pytorch_in_float32() {
    check(DType::F32, "f32", 1e-5);
}

fn grid_of(fixtures: &HashMap<String, Tensor>) -> Tensor {
    fixtures["encoder_out"].to_dtype(DType::F64).unwrap()
}

#[test]
fn finished_captions_have_zero_weights_each_step_sums_to_one_and_dropout_acts_on_the_scores_only() {
    let fixtures = fixtures();
    let decoder = fixture_decoder(&fixtures, DType::F64);
    let output = decoder.forward(&grid_of(&fixtures), &fixtures["captions"], &[5, 3, 7], None).unwrap();
    assert_eq!(output.decode_lengths, [4, 2, 6]);
    let alphas = output.alphas.sum(2).unwrap().to_vec2::<f64>().unwrap();
    for (row, &steps) in [4usize, 2, 6].iter().enumerate() {
        for (t, &total) in alphas[row].iter().enumerate() {
            let expected = if t < steps { 1.0 } else { 0.0 };
            assert!((total - expected).abs() < 1e-12, "row {row} step {t}: {total}");
        }
    }
    // The spatial features of Inception (batch × channels × H × W) become the grid.
    let spatial = Tensor::arange(0f32, 2.0 * 3.0 * 4.0, &Device::Cpu).unwrap().reshape((1, 2, 3, 4)).unwrap();
    let grid = DecoderWithAttention::grid(&spatial).unwrap();
    assert_eq!(grid.dims(), [1, 12, 2]);
    assert_eq!(grid.get(0).unwrap().get(5).unwrap().to_vec1::<f32>().unwrap(), [5.0, 17.0]);
    // Train mode: dropout before the output layer changes the scores, never the attention.
    let mut dropout = caption_model::Dropout::new(CONFIG.dropout, 7);
    let train = decoder.forward(&grid_of(&fixtures), &fixtures["captions"], &[5, 3, 7], Some(&mut dropout)).unwrap();
    assert!(relative(&train.scores, &output.scores) > 1e-3);
    assert!(relative(&train.alphas, &output.alphas) < 1e-15);
    // Lengths that do not fit are refused.
    assert!(
        decoder
            .forward(&fixtures["encoder_out"].to_dtype(DType::F64).unwrap(), &fixtures["captions"], &[8, 3, 7], None)
            .is_err()
    );
}

#[test]
fn greedy_decoding_and_its_attention_weights_equal_pytorch() {
    let fixtures = fixtures();
    for (dtype, prefix, tolerance) in [(DType::F64, "f64", 1e-10), (DType::F32, "f32", 1e-5)] {
        let decoder = fixture_decoder(&fixtures, dtype);
        let grid = fixtures["encoder_out"].to_dtype(dtype).unwrap();
        // All three images in one batch: each decodes as PyTorch decodes it alone.
        let captions = decoder.greedy(&grid, 12, 1, 2).unwrap();
        for (image, caption) in captions.iter().enumerate() {
            let ids = integers(&fixtures[&format!("{prefix}/greedy/{image}/ids")]);
            assert_eq!(caption.ids, ids, "{prefix} image {image}");
            let expected = fixtures[&format!("{prefix}/greedy/{image}/log_prob")].to_vec1::<f64>().unwrap()[0];
            assert!(
                (caption.log_prob - expected).abs() <= tolerance * expected.abs().max(1.0),
                "{prefix}: {} vs {expected}",
                caption.log_prob
            );
            let alphas = Tensor::new(caption.alphas.clone(), &Device::Cpu).unwrap();
            let difference = relative(&alphas, &fixtures[&format!("{prefix}/greedy/{image}/alphas")]);
            assert!(difference <= tolerance.max(1e-7), "{prefix} image {image} alphas: {difference:e}");
        }
        // Decoding stops at the end token (here 19, which these weights reach at the fourth word).
        let ended = decoder.greedy(&grid.narrow(0, 0, 1).unwrap(), 12, 1, 19).unwrap();
        let ids = integers(&fixtures[&format!("{prefix}/greedy_end_19/ids")]);
        assert_eq!(ended[0].ids, ids);
        assert_eq!(ended[0].ids.last(), Some(&19));
        assert!(ids.len() < 12);
    }
}

#[test]
fn beam_search_keeps_each_words_weights_as_teacher_forcing_computes_them() {
    let fixtures = fixtures();
    let decoder = fixture_decoder(&fixtures, DType::F64);
    let grid = grid_of(&fixtures);
    let (sos, eos) = (1, 19);
    // A beam of one is greedy decoding, words and weights.
    let beam = |size, n| {
        let config = caption_model::BeamConfig { beam_size: size, max_length: 12, length_penalty: 0.0, eos };
        decoder.beam_search_n_best(&grid, config, sos, n).unwrap()
    };
    let greedy = decoder.greedy(&grid, 12, sos, eos).unwrap();
    for (ranked, caption) in beam(1, 1).iter().zip(&greedy) {
        assert_eq!(ranked[0].ids, caption.ids);
        assert_eq!(ranked[0].alphas, caption.alphas);
    }
    // Every hypothesis of a wider beam: its log-probability and weights are those of teacher
    // forcing on its own words, and the ranking never rises.
    for (image, ranked) in beam(4, 4).iter().enumerate() {
        assert_eq!(ranked.len(), 4);
        for pair in ranked.windows(2).filter(|pair| pair[0].finished == pair[1].finished) {
            assert!(pair[0].log_prob >= pair[1].log_prob);
        }
        for hypothesis in ranked {
            let mut tokens = vec![sos];
            tokens.extend(&hypothesis.ids);
            let captions = Tensor::new(tokens.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let one = grid.narrow(0, image, 1).unwrap();
            let output = decoder.forward(&one, &captions, &[tokens.len()], None).unwrap();
            let log_probs = candle_nn::ops::log_softmax(&output.scores, 2).unwrap().squeeze(0).unwrap();
            let log_probs: Vec<Vec<f64>> = log_probs.to_vec2().unwrap();
            let expected: f64 = hypothesis.ids.iter().enumerate().map(|(t, &id)| log_probs[t][id as usize]).sum();
            assert!((f64::from(hypothesis.log_prob) - expected).abs() < 1e-4, "{} vs {expected}", hypothesis.log_prob);
            let alphas: Vec<Vec<f64>> = output.alphas.squeeze(0).unwrap().to_vec2().unwrap();
            assert_eq!(hypothesis.alphas.len(), alphas.len());
            for (kept, forced) in hypothesis.alphas.iter().zip(&alphas) {
                for (a, b) in kept.iter().zip(forced) {
                    assert!((f64::from(*a) - b).abs() < 1e-6, "image {image}: {a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn the_cpu_training_pass_gives_pytorchs_loss_and_gradients() {
    let fixtures = fixtures();
    let decoder = fixture_decoder(&fixtures, DType::F32);
    let grid = fixtures["encoder_out"].to_dtype(DType::F32).unwrap();
    let lengths: Vec<usize> = integers(&fixtures["lengths"]).iter().map(|&l| l as usize).collect();
    let mut no_dropout = caption_model::Dropout::new(0.0, 0);
    let pass =
        decoder.loss_gradients(&grid, targets(&fixtures["captions"], &lengths), &mut no_dropout, 1.0).unwrap().unwrap();
    assert_eq!(pass.counted, lengths.iter().map(|l| l - 1).sum::<usize>());
    let loss = Tensor::new(&[pass.loss], &Device::Cpu).unwrap();
    assert!(relative(&loss, &fixtures["f32/loss"]) <= 1e-6, "loss {} vs {}", pass.loss, fixtures["f32/loss"]);
    assert_eq!(pass.gradients.len(), 19);
    for (name, gradient) in &pass.gradients {
        if name == "attention.full_att.bias" {
            let largest = gradient.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(largest <= 1e-7, "grad {name}: {largest:e}, not zero");
            continue;
        }
        let difference = relative(gradient, &fixtures[&format!("f32/grad/{name}")]);
        assert!(difference <= 1e-5, "grad {name}: relative difference {difference:e}");
    }
}

#[test]
fn the_cpu_training_pass_draws_the_reference_paths_dropout_and_matches_its_gradients() {
    // Larger and unsorted, with dropout: the same seed gives the same masks on both paths.
    let config = AttentionConfig {
        encoder_dim: 24,
        attention_dim: 10,
        embed_dim: 6,
        decoder_dim: 9,
        vocab_size: 17,
        dropout: 0.5,
    };
    let varmap = VarMap::new();
    let decoder =
        DecoderWithAttention::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config).unwrap();
    caption_model::init::initialize(&varmap, 3, |_| true).unwrap();
    let grid = Tensor::randn(0f32, 1f32, (5, 7, 24), &Device::Cpu).unwrap().relu().unwrap();
    let lengths = [4usize, 9, 2, 6, 9];
    let ids: Vec<u32> = (0..5 * 9).map(|i| if i % 9 < lengths[i / 9] { 1 + (i as u32 * 7) % 16 } else { 0 }).collect();
    let captions = Tensor::from_vec(ids, (5, 9), &Device::Cpu).unwrap();
    let fast = decoder
        .loss_gradients(&grid, targets(&captions, &lengths), &mut caption_model::Dropout::new(0.5, 42), 0.7)
        .unwrap()
        .unwrap();
    let (reference_loss, reference) = caption_model::backend::with_reference_only(|| {
        assert!(
            decoder
                .loss_gradients(&grid, targets(&captions, &lengths), &mut caption_model::Dropout::new(0.5, 42), 0.7)
                .unwrap()
                .is_none()
        );
        let mut dropout = caption_model::Dropout::new(0.5, 42);
        let output = decoder.forward(&grid, &captions, &lengths, Some(&mut dropout)).unwrap();
        let loss = attention_loss(&output, &captions, 0, None, 0.7).unwrap();
        (loss.to_scalar::<f32>().unwrap(), loss.backward().unwrap())
    });
    assert!((fast.loss - reference_loss).abs() <= 1e-5 * reference_loss.abs(), "{} vs {reference_loss}", fast.loss);
    let parameters = varmap.data().lock().unwrap().clone();
    for (name, gradient) in &fast.gradients {
        let expected = reference.get(parameters[name].as_tensor()).unwrap();
        if name == "attention.full_att.bias" {
            continue;
        }
        let difference = relative(gradient, expected);
        assert!(difference <= 1e-5, "grad {name}: relative difference {difference:e}");
    }
}
