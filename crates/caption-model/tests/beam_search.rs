//! Beam search: beam 1 is greedy decoding; a beam as wide as every sequence is exhaustive search.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use caption_model::{BeamConfig, DecoderConfig, DecoderRNN};

fn fixture_decoder() -> (DecoderRNN, Tensor) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decoder.safetensors");
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let config = DecoderConfig { embed_size: 16, hidden_size: 24, vocab_size: 50, num_layers: 2 };
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    (DecoderRNN::new(vb.pp("decoder"), config).unwrap(), tensors["features"].clone())
}

#[test]
fn beam_of_one_is_greedy() {
    let (decoder, features) = fixture_decoder();
    let greedy = decoder.greedy(&features, 50, 2).unwrap();
    let beam = decoder
        .beam_search(&features, BeamConfig { beam_size: 1, max_length: 50, length_penalty: 0.0, eos: 2 })
        .unwrap();
    for (g, b) in greedy.iter().zip(&beam) {
        assert_eq!(g.0, b.ids);
        assert!((g.1 - b.log_prob).abs() < 1e-4, "{} vs {}", g.1, b.log_prob);
        assert_eq!(b.finished, b.ids.last() == Some(&2));
    }
}

/// Log-probability of `ids` under the decoder, word by word.
fn sequence_log_prob(decoder: &DecoderRNN, features: &Tensor, ids: &[u32]) -> f32 {
    let mut state = None;
    let mut input = features.clone();
    let mut total = 0.0;
    for &id in ids {
        let (logits, next) = decoder.step(&input, state.as_ref()).unwrap();
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap().to_vec2::<f32>().unwrap();
        total += log_probs[0][id as usize];
        state = Some(next);
        input = decoder.embed_ids(&Tensor::new(&[id], &Device::Cpu).unwrap()).unwrap();
    }
    total
}

#[test]
fn a_wide_beam_is_exhaustive_search() {
    // A tiny decoder: 5 words, captions of at most 3 words, <EOS> = 2.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let decoder =
        DecoderRNN::new(vb, DecoderConfig { embed_size: 4, hidden_size: 6, vocab_size: 5, num_layers: 1 }).unwrap();
    let features = Tensor::new(&[[0.5f32, -1.0, 2.0, 0.1], [-0.3, 0.2, -1.5, 1.0]], &Device::Cpu).unwrap();
    for penalty in [0.0f32, 1.0] {
        let config = BeamConfig { beam_size: 125, max_length: 3, length_penalty: penalty, eos: 2 };
        let found = decoder.beam_search(&features, config).unwrap();
        for (row, hypothesis) in found.iter().enumerate() {
            let features = features.narrow(0, row, 1).unwrap();
            // Every sequence that ends in <EOS> within 3 words.
            let mut best: Option<(f32, Vec<u32>)> = None;
            let mut consider = |ids: Vec<u32>| {
                let log_prob = sequence_log_prob(&decoder, &features, &ids);
                let score = if penalty == 0.0 { log_prob } else { log_prob / (ids.len() as f32).powf(penalty) };
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, ids));
                }
            };
            consider(vec![2]);
            for a in [0, 1, 3, 4] {
                consider(vec![a, 2]);
                for b in [0, 1, 3, 4] {
                    consider(vec![a, b, 2]);
                }
            }
            let (score, ids) = best.unwrap();
            assert_eq!(hypothesis.ids, ids, "row {row}, penalty {penalty}");
            assert!((hypothesis.score(penalty) - score).abs() < 1e-4);
        }
    }
}

#[test]
fn without_an_end_the_best_unfinished_hypothesis_is_returned() {
    let (decoder, features) = fixture_decoder();
    // An end id outside the vocabulary: nothing can finish.
    let found = decoder
        .beam_search(&features, BeamConfig { beam_size: 3, max_length: 4, length_penalty: 0.0, eos: 1000 })
        .unwrap();
    for hypothesis in &found {
        assert_eq!(hypothesis.ids.len(), 4);
        assert!(!hypothesis.finished && hypothesis.log_prob.is_finite());
    }
}

#[test]
fn n_best_is_the_exhaustive_ranking_of_finished_captions() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let decoder =
        DecoderRNN::new(vb, DecoderConfig { embed_size: 4, hidden_size: 6, vocab_size: 5, num_layers: 1 }).unwrap();
    let features = Tensor::new(&[[0.5f32, -1.0, 2.0, 0.1], [-0.3, 0.2, -1.5, 1.0]], &Device::Cpu).unwrap();
    for penalty in [0.0f32, 0.7] {
        let config = BeamConfig { beam_size: 125, max_length: 3, length_penalty: penalty, eos: 2 };
        let ranked = decoder.beam_search_n_best(&features, config, 6).unwrap();
        for (row, found) in ranked.iter().enumerate() {
            let features = features.narrow(0, row, 1).unwrap();
            let mut all: Vec<(f32, Vec<u32>)> = vec![vec![2]]
                .into_iter()
                .chain([0, 1, 3, 4].into_iter().map(|a| vec![a, 2]))
                .chain([0, 1, 3, 4].into_iter().flat_map(|a| [0, 1, 3, 4].into_iter().map(move |b| vec![a, b, 2])))
                .map(|ids| {
                    let log_prob = sequence_log_prob(&decoder, &features, &ids);
                    (log_prob / (ids.len() as f32).powf(penalty), ids)
                })
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            assert_eq!(found.len(), 6);
            // The i-th found has the i-th best score (this untrained decoder ties many orders of
            // the same words), and is the sequence it says it is.
            for (hypothesis, (score, _)) in found.iter().zip(&all) {
                assert!(hypothesis.finished && (hypothesis.score(penalty) - score).abs() < 1e-4, "row {row}");
                let (own, _) = all.iter().find(|(_, ids)| ids == &hypothesis.ids).unwrap();
                assert!((own - score).abs() < 1e-4, "row {row}, penalty {penalty}: {:?}", hypothesis.ids);
            }
            let mut distinct: Vec<&Vec<u32>> = found.iter().map(|h| &h.ids).collect();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), found.len());
        }
    }
}

#[test]
fn n_best_starts_with_the_beam_search_caption_and_never_rises() {
    let (decoder, features) = fixture_decoder();
    for (beam_size, penalty) in [(3, 0.0f32), (5, 0.0), (5, 1.0)] {
        let config = BeamConfig { beam_size, max_length: 50, length_penalty: penalty, eos: 2 };
        let best = decoder.beam_search(&features, config).unwrap();
        let ranked = decoder.beam_search_n_best(&features, config, beam_size).unwrap();
        for (row, (found, best)) in ranked.iter().zip(&best).enumerate() {
            assert_eq!(found.len(), beam_size, "row {row}");
            assert_eq!(&found[0], best, "row {row}");
            let features = features.narrow(0, row, 1).unwrap();
            for pair in found.windows(2).filter(|pair| pair[1].finished) {
                assert!(pair[0].finished, "an unfinished caption ranked above a finished one");
                assert!(pair[0].score(penalty) >= pair[1].score(penalty), "row {row}: {pair:?}");
            }
            for hypothesis in found {
                let log_prob = sequence_log_prob(&decoder, &features, &hypothesis.ids);
                assert!((hypothesis.log_prob - log_prob).abs() < 1e-3, "{} vs {log_prob}", hypothesis.log_prob);
            }
        }
    }
}
