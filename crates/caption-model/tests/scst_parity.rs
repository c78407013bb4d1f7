//! Self-critical training's loss — the teacher-forced pass over sampled captions with one weight
//! per caption, self-critical.pytorch's `RewardCriterion` — and every parameter's gradient against
//! PyTorch (fixtures from tools/train/generate_scst_fixtures.py), for both decoders: the float64
//! reference path (candle's autograd) within 1e-10, the float32 CPU training passes and the fused
//! CPU loss under autograd within 1e-5 (differences relative to each tensor's largest value).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use caption_model::attention::attention_loss;
use caption_model::backend::views::AttentionTargets;
use caption_model::{AttentionConfig, CNNtoRNN, DecoderConfig, DecoderWithAttention, Dropout, Targets};

#[path = "common/relative.rs"]
mod common_relative;
use common_relative::relative;

const PAD: u32 = 0;

const LSTM: DecoderConfig = DecoderConfig { embed_size: 16, hidden_size: 24, vocab_size: 57, num_layers: 2 };

const ATTENTION: AttentionConfig = AttentionConfig {
    encoder_dim: 16,
    attention_dim: 12,
    embed_dim: 10,
    decoder_dim: 14,
    vocab_size: 23,
    dropout: 0.5,
};

fn fixtures() -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scst_loss.safetensors");
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// The advantages, one weight per caption.
fn weights(fixtures: &HashMap<String, Tensor>, case: &str) -> Vec<f32> {
    fixtures[&format!("{case}/advantages")].to_dtype(DType::F32).unwrap().to_vec1().unwrap()
}

/// A fixture's ids as u32.
fn ids(tensor: &Tensor) -> Tensor {
    tensor.to_dtype(DType::U32).unwrap()
}

/// Compares a loss and named gradients with the fixture's, returning the largest difference.
fn compare(case: &str, fixtures: &HashMap<String, Tensor>, loss: f64, gradients: &[(String, Tensor)]) -> f64 {
    let expected_loss = fixtures[&format!("{case}/loss")].to_vec1::<f64>().unwrap()[0];
    let mut worst = (loss - expected_loss).abs() / expected_loss.abs();
    let expected: Vec<&String> = fixtures.keys().filter(|k| k.starts_with(&format!("{case}/grad/"))).collect();
    assert_eq!(gradients.len(), expected.len(), "one gradient per parameter");
    for (name, gradient) in gradients {
        if name == "attention.full_att.bias" {
            // Adding a constant to every position's score leaves the softmax unchanged: this
            // gradient is zero, and both sides hold only rounding noise.
            let largest = gradient.abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap();
            assert!(largest.to_scalar::<f64>().unwrap() <= 1e-7, "{case} {name} is not zero");
            continue;
        }
        let difference = relative(gradient, &fixtures[&format!("{case}/grad/{name}")]);
        eprintln!("{case} {name}: {difference:e}");
        worst = worst.max(difference);
    }
    worst
}

/// The original's model with the fixture's fc and decoder (Inception takes no part).
fn lstm_model(fixtures: &HashMap<String, Tensor>, dtype: DType) -> (HashMap<String, Var>, CNNtoRNN) {
    let varmap = VarMap::new();
    let model = CNNtoRNN::new(VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu), LSTM, false).unwrap();
    let vars: HashMap<String, Var> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| fixtures.contains_key(&format!("lstm/param/{name}")))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    assert_eq!(vars.len(), fixtures.keys().filter(|k| k.starts_with("lstm/param/")).count());
    for (name, var) in &vars {
        var.set(&fixtures[&format!("lstm/param/{name}")].to_dtype(dtype).unwrap()).unwrap();
    }
    (vars, model)
}

/// Autograd on the model's loss; every trained parameter's gradient by name.
fn autograd(loss: &Tensor, vars: &HashMap<String, Var>) -> Vec<(String, Tensor)> {
    let grads = loss.backward().unwrap();
    vars.iter().map(|(name, var)| (name.clone(), grads.get(var.as_tensor()).unwrap().clone())).collect()
}

#[test]
fn lstm_reference_path_in_float64_gives_pytorchs_loss_and_gradients() {
    let fixtures = fixtures();
    let (vars, model) = lstm_model(&fixtures, DType::F64);
    let (captions, weights) = (ids(&fixtures["lstm/captions"]), weights(&fixtures, "lstm"));
    let targets = Targets::new(&captions, PAD).weighted(&weights);
    let loss = model.head_loss(&fixtures["lstm/pooled"], targets, &mut Dropout::new(0.0, 0)).unwrap();
    let worst = compare("lstm", &fixtures, loss.to_scalar::<f64>().unwrap(), &autograd(&loss, &vars));
    assert!(worst <= 1e-10, "{worst:e}");
}

#[test]
fn lstm_cpu_pass_and_fused_loss_in_float32_give_pytorchs_loss_and_gradients() {
    let fixtures = fixtures();
    let (vars, model) = lstm_model(&fixtures, DType::F32);
    let (captions, weights) = (ids(&fixtures["lstm/captions"]), weights(&fixtures, "lstm"));
    let targets = Targets::new(&captions, PAD).weighted(&weights);
    let pooled = fixtures["lstm/pooled"].to_dtype(DType::F32).unwrap();
    let pass = model.head_gradients(&pooled, targets, &mut Dropout::new(0.0, 0)).unwrap().expect("the CPU pass");
    let worst = compare("lstm", &fixtures, f64::from(pass.loss), &pass.gradients);
    assert!(worst <= 1e-5, "CPU pass: {worst:e}");
    // Autograd over the model's own operations, the loss being the fused CPU cross-entropy.
    let loss = model.head_loss(&pooled, targets, &mut Dropout::new(0.0, 0)).unwrap();
    let worst = compare("lstm", &fixtures, f64::from(loss.to_scalar::<f32>().unwrap()), &autograd(&loss, &vars));
    assert!(worst <= 1e-5, "fused loss: {worst:e}");
}

/// Weights of one are cross-entropy, and the weights scale each caption's share of the loss.
#[test]
fn unit_weights_are_cross_entropy_and_weights_are_checked() {
    let fixtures = fixtures();
    let (_, model) = lstm_model(&fixtures, DType::F32);
    let captions = ids(&fixtures["lstm/captions"]);
    let pooled = fixtures["lstm/pooled"].to_dtype(DType::F32).unwrap();
    let pass = |targets: Targets| model.head_gradients(&pooled, targets, &mut Dropout::new(0.0, 0)).unwrap().unwrap();
    let ones = vec![1.0f32; 6];
    let (plain, weighted) = (pass(Targets::new(&captions, PAD)), pass(Targets::new(&captions, PAD).weighted(&ones)));
    assert_eq!(plain.loss, weighted.loss);
    for ((_, a), (_, b)) in plain.gradients.iter().zip(&weighted.gradients) {
        assert_eq!(relative(a, b), 0.0);
    }
    let zeros = vec![0.0f32; 6];
    let nothing = pass(Targets::new(&captions, PAD).weighted(&zeros));
    assert_eq!(nothing.loss, 0.0);
    assert!(
        nothing.gradients.iter().all(|(_, g)| g.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() == 0.0)
    );
    let two = [1.0f32, 2.0];
    let error = model.head_gradients(&pooled, Targets::new(&captions, PAD).weighted(&two), &mut Dropout::new(0.0, 0));
    assert!(error.unwrap_err().to_string().contains("2 caption weights for 6 captions"));
    let nan = [f32::NAN; 6];
    let error = model.head_loss(&pooled, Targets::new(&captions, PAD).weighted(&nan), &mut Dropout::new(0.0, 0));
    assert!(error.unwrap_err().to_string().contains("must be finite"));
}

/// The attention decoder with the fixture's weights: its parameters as variables.
fn attention_decoder(fixtures: &HashMap<String, Tensor>, dtype: DType) -> (HashMap<String, Var>, DecoderWithAttention) {
    let varmap = VarMap::new();
    let decoder = DecoderWithAttention::new(VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu), ATTENTION).unwrap();
    let vars: HashMap<String, Var> = varmap.data().lock().unwrap().clone();
    assert_eq!(vars.len(), fixtures.keys().filter(|k| k.starts_with("attention/param/")).count());
    for (name, var) in &vars {
        var.set(&fixtures[&format!("attention/param/{name}")].to_dtype(dtype).unwrap()).unwrap();
    }
    (vars, decoder)
}

fn lengths(fixtures: &HashMap<String, Tensor>) -> Vec<usize> {
    fixtures["attention/lengths"].to_vec1::<i64>().unwrap().iter().map(|&l| l as usize).collect()
}

#[test]
fn attention_reference_path_in_float64_gives_pytorchs_loss_and_gradients() {
    let fixtures = fixtures();
    let (vars, decoder) = attention_decoder(&fixtures, DType::F64);
    let (captions, weights, lengths) =
        (ids(&fixtures["attention/captions"]), weights(&fixtures, "attention"), lengths(&fixtures));
    let output = decoder.forward(&fixtures["attention/grid"], &captions, &lengths, None).unwrap();
    let loss = attention_loss(&output, &captions, PAD, Some(&weights), 0.0).unwrap();
    let worst = compare("attention", &fixtures, loss.to_scalar::<f64>().unwrap(), &autograd(&loss, &vars));
    assert!(worst <= 1e-10, "{worst:e}");
}

#[test]
fn attention_cpu_pass_and_fused_loss_in_float32_give_pytorchs_loss_and_gradients() {
    let fixtures = fixtures();
    let (vars, decoder) = attention_decoder(&fixtures, DType::F32);
    let (captions, weights, lengths) =
        (ids(&fixtures["attention/captions"]), weights(&fixtures, "attention"), lengths(&fixtures));
    let grid = fixtures["attention/grid"].to_dtype(DType::F32).unwrap();
    let targets = AttentionTargets { ids: &captions, lengths: &lengths, weights: Some(&weights) };
    let pass = decoder.loss_gradients(&grid, targets, &mut Dropout::new(0.0, 0), 0.0).unwrap().expect("the CPU pass");
    let worst = compare("attention", &fixtures, f64::from(pass.loss), &pass.gradients);
    assert!(worst <= 1e-5, "CPU pass: {worst:e}");
    let output = decoder.forward(&grid, &captions, &lengths, None).unwrap();
    let loss = attention_loss(&output, &captions, PAD, Some(&weights), 0.0).unwrap();
    let worst = compare("attention", &fixtures, f64::from(loss.to_scalar::<f32>().unwrap()), &autograd(&loss, &vars));
    assert!(worst <= 1e-5, "fused loss: {worst:e}");
}
