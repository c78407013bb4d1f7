//! One training step equals the PyTorch original's: three steps of its frozen-encoder loop (fc and
//! ReLU on pooled features, DecoderRNN with 2 LSTM layers, `CrossEntropyLoss(ignore_index=PAD)`,
//! `torch.optim.Adam` at lr 1e-2, dropout off) from the same weights on PAD-padded captions give
//! the same losses and the same weights (fixture: `tools/train/generate_step_fixtures.py`).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use caption_model::{DecoderConfig, Dropout};
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
        let loss = optimizer_step(&model, pooled, &captions, &mut dropout, &mut optimizer, 1e-2, None).unwrap();
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
