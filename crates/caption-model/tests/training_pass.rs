//! The hand-written CPU training pass (`CNNtoRNN::head_gradients`: fc + decoder + PAD-masked
//! cross-entropy; `DecoderRNN::loss_gradients`: the decoder alone) against candle's autograd over
//! the same model in float64, with the same dropout masks.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, VarBuilder, VarMap};
use caption_model::init::initialize;
use caption_model::{CNNtoRNN, DecoderConfig, DecoderRNN, Dropout, Targets};

#[path = "common/batch.rs"]
mod common_batch;
use common_batch::{PAD, batch};

/// A model whose fc and decoder come from `seed` (Inception keeps candle's initialisation: it
/// takes no part).
fn model(config: DecoderConfig, seed: u64) -> (VarMap, CNNtoRNN) {
    let varmap = VarMap::new();
    let model = CNNtoRNN::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config, false).unwrap();
    initialize(&varmap, seed, |name| name.contains(".fc.") || name.starts_with("decoderRNN.")).unwrap();
    (varmap, model)
}

/// `CrossEntropyLoss(ignore_index=PAD)` of float64 `logits` against `captions`: caption-model's
/// loss, which for float64 is the reference path, composed of candle's operations.
fn masked_mean_cross_entropy(logits: &Tensor, captions: &Tensor) -> Tensor {
    caption_model::loss::masked_cross_entropy(logits, captions, PAD, None).unwrap().0
}

/// The loss and gradients through candle's autograd in float64: the composition the trainer ran
/// before (`features_from_pooled`, the decoder's forward, the masked mean cross-entropy).
fn autograd_reference(
    varmap: &VarMap,
    config: DecoderConfig,
    pooled: &Tensor,
    captions: &Tensor,
    dropout: &mut Dropout,
) -> (f64, HashMap<String, Vec<f64>>) {
    let vars: HashMap<String, Var> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.contains(".fc.") || name.starts_with("decoderRNN."))
        .map(|(name, var)| (name.clone(), Var::from_tensor(&var.as_tensor().to_dtype(DType::F64).unwrap()).unwrap()))
        .collect();
    let decoder_tensors: HashMap<String, Tensor> = vars
        .iter()
        .filter_map(|(name, var)| Some((name.strip_prefix("decoderRNN.")?.to_string(), var.as_tensor().clone())))
        .collect();
    let decoder = DecoderRNN::new(VarBuilder::from_tensors(decoder_tensors, DType::F64, &Device::Cpu), config).unwrap();
    let fc = candle_nn::Linear::new(
        vars["encoderCNN.inception.fc.weight"].as_tensor().clone(),
        Some(vars["encoderCNN.inception.fc.bias"].as_tensor().clone()),
    );
    let pooled = pooled.to_dtype(DType::F64).unwrap();
    let dropped = dropout.apply(&pooled).unwrap();
    let features = dropout.apply(&fc.forward(&dropped).unwrap().relu().unwrap()).unwrap();
    let steps = captions.dim(0).unwrap();
    let inputs = captions.narrow(0, 0, steps - 1).unwrap();
    let logits = decoder.forward(&features, &inputs, Some(dropout)).unwrap();
    let loss = masked_mean_cross_entropy(&logits, captions);
    let grads = loss.backward().unwrap();
    let gradients = vars
        .iter()
        .map(|(name, var)| {
            let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
            (name.clone(), grad.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        })
        .collect();
    (loss.to_scalar::<f64>().unwrap(), gradients)
}

fn check(config: DecoderConfig, batch_size: usize, steps: usize, p: f32) {
    let (varmap, model) = model(config, 5);
    let (pooled, captions) = batch(batch_size, steps, config.vocab_size);
    let fused = model.head_gradients(&pooled, Targets::new(&captions, PAD), &mut Dropout::new(p, 11)).unwrap().unwrap();
    // Forced onto the reference path, or asked for a gradient into `pooled`, the pass declines
    // (the caller runs autograd) and draws no mask.
    let mut untouched = Dropout::new(p, 11);
    let forced = caption_model::backend::with_reference_only(|| {
        model.head_gradients(&pooled, Targets::new(&captions, PAD), &mut untouched)
    });
    assert!(forced.unwrap().is_none());
    let tracked = Var::from_tensor(&pooled).unwrap();
    assert!(model.head_gradients(tracked.as_tensor(), Targets::new(&captions, PAD), &mut untouched).unwrap().is_none());
    assert_eq!(untouched.state(), Dropout::new(p, 11).state(), "no mask drawn");
    let (loss, reference) = autograd_reference(&varmap, config, &pooled, &captions, &mut Dropout::new(p, 11));

    let counted = captions.flatten_all().unwrap().to_vec1::<u32>().unwrap().iter().filter(|&&id| id != PAD).count();
    assert_eq!(fused.counted, counted);
    assert!((f64::from(fused.loss) - loss).abs() <= 1e-6 * loss, "loss {} vs {loss}", fused.loss);
    assert_eq!(fused.gradients.len(), reference.len(), "one gradient per trained parameter");
    for (name, gradient) in &fused.gradients {
        let expected = &reference[name];
        let values = gradient.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values.len(), expected.len(), "{name}");
        let scale = expected.iter().fold(0f64, |m, x| m.max(x.abs()));
        let worst = values.iter().zip(expected).fold(0f64, |m, (&a, &b)| m.max((f64::from(a) - b).abs()));
        eprintln!("{name}: largest difference {worst:e} (largest gradient {scale:e})");
        if steps == 1 && (name == "decoderRNN.embed.weight" || name.contains("weight_hh")) {
            // One step is the image alone: no token is embedded, no hidden state recurs.
            assert!(scale == 0.0 && values.iter().all(|&x| x == 0.0), "{name}");
            continue;
        }
        assert!(scale > 0.0, "{name}: the reference gradient is zero, the test would prove nothing");
        assert!(worst <= 2e-5 * scale, "{name}: {worst:e} against {scale:e}");
    }
}

#[test]
fn gradients_equal_autograd_with_dropout_pad_and_two_layers() {
    let config = DecoderConfig { embed_size: 24, hidden_size: 40, vocab_size: 53, num_layers: 2 };
    check(config, 6, 9, 0.5);
}

#[test]
fn gradients_equal_autograd_without_dropout_with_one_layer() {
    let config = DecoderConfig { embed_size: 32, hidden_size: 16, vocab_size: 29, num_layers: 1 };
    check(config, 3, 1, 0.0);
    check(config, 4, 6, 0.0);
}

/// The decoder alone, with the gradient for its input features.
#[test]
fn decoder_gradients_and_the_features_gradient_equal_autograd() {
    let config = DecoderConfig { embed_size: 12, hidden_size: 20, vocab_size: 31, num_layers: 2 };
    let (varmap, model) = model(config, 9);
    let (_, captions) = batch(5, 7, config.vocab_size);
    let features: Vec<f32> = (0..5 * 12).map(|i| (i as f32 * 0.37).cos()).collect();
    let features = Tensor::from_vec(features, (5, 12), &Device::Cpu).unwrap();
    let pass = model
        .decoder
        .loss_gradients(&features, Targets::new(&captions, PAD), &mut Dropout::new(0.3, 4))
        .unwrap()
        .unwrap();

    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(name, var)| {
            let name = name.strip_prefix("decoderRNN.")?;
            Some((name.to_string(), var.as_tensor().to_dtype(DType::F64).unwrap()))
        })
        .collect();
    let vars: HashMap<String, Var> = tensors.iter().map(|(n, t)| (n.clone(), Var::from_tensor(t).unwrap())).collect();
    let by_name = vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let decoder = DecoderRNN::new(VarBuilder::from_tensors(by_name, DType::F64, &Device::Cpu), config).unwrap();
    let input = Var::from_tensor(&features.to_dtype(DType::F64).unwrap()).unwrap();
    let inputs = captions.narrow(0, 0, 6).unwrap();
    let logits = decoder.forward(input.as_tensor(), &inputs, Some(&mut Dropout::new(0.3, 4))).unwrap();
    let loss = masked_mean_cross_entropy(&logits, &captions);
    let grads = loss.backward().unwrap();
    assert!((f64::from(pass.loss) - loss.to_scalar::<f64>().unwrap()).abs() < 1e-5);

    let mut compared = pass.gradients.clone();
    compared.push(("features".into(), pass.features.clone()));
    for (name, gradient) in compared {
        let reference = if name == "features" { input.as_tensor() } else { vars[&name].as_tensor() };
        let expected: Vec<f64> = grads.get(reference).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let values: Vec<f32> = gradient.flatten_all().unwrap().to_vec1().unwrap();
        let scale = expected.iter().fold(0f64, |m, x| m.max(x.abs()));
        let worst = values.iter().zip(&expected).fold(0f64, |m, (&a, &b)| m.max((f64::from(a) - b).abs()));
        assert!(scale > 0.0 && worst <= 2e-5 * scale, "{name}: {worst:e} against {scale:e}");
    }
}

/// A batch whose every target is PAD (captions cut to one step of PAD) counts nothing: loss 0 and
/// every gradient 0, as the autograd path's mean over at least one token gives.
#[test]
fn a_batch_of_pad_only_gives_zero_loss_and_gradients() {
    let config = DecoderConfig { embed_size: 8, hidden_size: 12, vocab_size: 10, num_layers: 1 };
    let (_, model) = model(config, 2);
    let (pooled, _) = batch(3, 2, 10);
    let captions = Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap();
    let pass = model.head_gradients(&pooled, Targets::new(&captions, PAD), &mut Dropout::new(0.5, 1)).unwrap().unwrap();
    assert_eq!((pass.loss, pass.counted), (0.0, 0));
    for (name, gradient) in &pass.gradients {
        let values = gradient.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(!values.is_empty() && values.iter().all(|&g| g == 0.0), "{name}");
    }
}

#[test]
fn bad_batches_are_errors_that_say_what_is_wrong() {
    let config = DecoderConfig { embed_size: 8, hidden_size: 8, vocab_size: 10, num_layers: 1 };
    let (_, model) = model(config, 1);
    let (pooled, _) = batch(2, 3, 10);
    let mut dropout = Dropout::new(0.0, 0);
    let bad_id = Tensor::new(&[[1u32, 2], [10, 3]], &Device::Cpu).unwrap();
    let error = model.head_gradients(&pooled, Targets::new(&bad_id, PAD), &mut dropout).unwrap_err().to_string();
    assert!(error.contains("token id 10 outside a vocabulary of 10"), "{error}");
    let narrow = Tensor::zeros((2, 100), DType::F32, &Device::Cpu).unwrap();
    let captions = Tensor::new(&[[1u32, 2], [3, 4]], &Device::Cpu).unwrap();
    let error = model.head_gradients(&narrow, Targets::new(&captions, PAD), &mut dropout).unwrap_err().to_string();
    assert!(error.contains("100 columns, fc takes 2048"), "{error}");
    let three = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    let error = model.head_gradients(&pooled, Targets::new(&three, PAD), &mut dropout).unwrap_err().to_string();
    assert!(error.contains("2 feature rows for 3 captions"), "{error}");
}
