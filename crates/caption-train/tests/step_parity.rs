//! One training step equals the PyTorch original's: three steps of its frozen-encoder loop (fc and
//! ReLU on pooled features, DecoderRNN with 2 LSTM layers, `CrossEntropyLoss(ignore_index=PAD)`,
//! `torch.optim.Adam` at lr 1e-2, dropout off) from the same weights on PAD-padded captions give
//! the same losses and the same weights (fixture: `tools/train/generate_step_fixtures.py`); the
//! attention decoder's weights after one Adam step equal PyTorch's.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use caption_model::{DecoderConfig, Dropout, Targets};
use caption_text::Vocabulary;

const PAD: u32 = Vocabulary::PAD;
use caption_train::{Adam, AdamConfig, TrainModel, optimizer_step};

fn fixture() -> HashMap<String, Tensor> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/train_step.safetensors");
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// Both paths: caption-model's CPU backend (the hand-written pass and Adam in place) and the
/// reference (candle's autograd and tensor operations), forced with the backend layer's switch.
#[test]
fn three_steps_equal_the_pytorch_original() {
    three_steps(false);
    caption_model::backend::with_reference_only(|| three_steps(true));
}

fn three_steps(reference: bool) {
    let path = if reference { "reference path" } else { "CPU backend" };
    let tensors = fixture();
    let decoder = DecoderConfig { embed_size: 16, hidden_size: 24, vocab_size: 57, num_layers: 2 };
    let model = TrainModel::uninitialized(decoder, false, &Device::Cpu).unwrap();
    let trained = model.trained_vars();
    for (name, var) in &trained {
        var.set(&tensors[&format!("initial.{name}")]).unwrap();
    }
    // Every trained tensor of the original is in the fixture, and nothing else trains.
    let expected_names = tensors.keys().filter_map(|k| k.strip_prefix("final.")).count();
    assert_eq!(trained.len(), expected_names);

    let pooled = &tensors["pooled"];
    let captions = tensors["captions"].to_dtype(DType::U32).unwrap();
    let mut optimizer = Adam::new(trained.clone(), AdamConfig::default()).unwrap();
    let mut dropout = Dropout::new(0.0, 0);
    let losses: Vec<f64> = tensors["losses"].to_vec1().unwrap();
    for (step, expected) in losses.iter().enumerate() {
        let loss =
            optimizer_step(&model, pooled, Targets::new(&captions, PAD), &mut dropout, &mut optimizer, 1e-2, None)
                .unwrap();
        assert!((loss - expected).abs() < 1e-5 * expected.abs(), "{path} step {step}: loss {loss}, PyTorch {expected}");
    }
    for (name, var) in &trained {
        let initial = &tensors[&format!("initial.{name}")];
        let expected = &tensors[&format!("final.{name}")];
        // Each weight moved by about the learning rate (Adam's steps are ~lr each), and to where
        // PyTorch's did, to 0.3 % of one step: f32 sums in another order move Adam's
        // normalised update most where a gradient is near zero.
        assert!(max_difference(initial, expected) > 1e-2, "{name} did not move in PyTorch");
        let difference = max_difference(var.as_tensor(), expected);
        assert!(difference < 3e-5, "{path} {name}: max difference {difference:e} from PyTorch");
    }
}

/// The attention decoder's parameters after one Adam step (lr 4e-4) on the gradient of the
/// tutorial's loss equal `torch.optim.Adam`'s (fixture: tools/model/generate_attention_fixtures.py).
#[test]
fn one_adam_step_of_the_attention_decoder_equals_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../caption-model/tests/fixtures/attention_decoder.safetensors");
    let fixture = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let config = caption_model::AttentionConfig {
        encoder_dim: 16,
        attention_dim: 12,
        embed_dim: 10,
        decoder_dim: 14,
        vocab_size: 23,
        dropout: 0.5,
    };
    for (dtype, prefix, tolerance) in [(DType::F32, "f32", 1e-6), (DType::F64, "f64", 1e-12)] {
        let varmap = candle_nn::VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        let decoder = caption_model::DecoderWithAttention::new(vb, config).unwrap();
        let mut vars = Vec::new();
        for (name, var) in varmap.data().lock().unwrap().iter() {
            var.set(&fixture[&format!("param/{name}")].to_dtype(dtype).unwrap()).unwrap();
            vars.push((name.clone(), var.clone()));
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let lengths: Vec<usize> = fixture["lengths"].to_vec1::<i64>().unwrap().iter().map(|&l| l as usize).collect();
        let captions = fixture["captions"].to_dtype(DType::U32).unwrap();
        let grid = fixture["encoder_out"].to_dtype(dtype).unwrap();
        let output = decoder.forward(&grid, &captions, &lengths, None).unwrap();
        let loss = caption_model::attention::attention_loss(&output, &captions, 0, None, 1.0).unwrap();
        let mut adam = Adam::new(vars.clone(), AdamConfig::default()).unwrap();
        adam.step(&caption_train::Gradients::Autograd(loss.backward().unwrap()), 4e-4, 1.0).unwrap();
        for (name, var) in &vars {
            let expected = fixture[&format!("{prefix}/adam/{name}")].to_dtype(DType::F64).unwrap();
            let actual = var.as_tensor().to_dtype(DType::F64).unwrap();
            let difference =
                (actual - &expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            // full_att's bias has a gradient of exactly zero in exact arithmetic (a softmax does not
            // move with a shift), so both sides hold rounding noise (~1e-9 in float32) that Adam
            // divides by its own size plus eps: the step may be anything up to the learning rate.
            let bound = if name == "attention.full_att.bias" && dtype == DType::F32 { 4e-4 } else { tolerance };
            assert!(difference <= bound, "{prefix} {name}: {difference:e}");
        }
    }
}
