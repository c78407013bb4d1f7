//! Inception v3 against torchvision on weights defined by a formula both sides compute
//! (`tools/model/generate_inception_fixtures.py`): eval mode (pooled, logits and the spatial
//! Mixed_7c features), transform_input, train mode with batch statistics, and the running
//! statistics that train mode updates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use caption_model::{Inception3, InceptionConfig};

#[path = "common/formula.rs"]
mod formula;
use formula::{relative_difference, unit};

/// Largest relative difference allowed (to the tensor's largest magnitude).
const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn weights() -> HashMap<String, Tensor> {
    formula::weights(&fixture("inception_v3_params.json"))
}

fn network(transform_input: bool) -> Inception3 {
    network_in(transform_input, DType::F32)
}

/// The network with its (float32) weights widened to `dtype`, as torch's `model.to(dtype)`.
fn network_in(transform_input: bool, dtype: DType) -> Inception3 {
    let weights = weights().into_iter().map(|(k, v)| (k, v.to_dtype(dtype).unwrap())).collect();
    let vb = VarBuilder::from_tensors(weights, dtype, &Device::Cpu);
    Inception3::new(vb, InceptionConfig { num_classes: Some(1000), aux_logits: true, transform_input }).unwrap()
}

fn input() -> Tensor {
    let data: Vec<f32> = unit("input", 2 * 3 * 299 * 299).map(|u| (2.0 * u - 1.0) as f32).collect();
    Tensor::from_vec(data, (2, 3, 299, 299), &Device::Cpu).unwrap()
}

fn assert_close(what: &str, actual: &Tensor, expected: &Tensor) {
    let relative = relative_difference(actual, expected);
    eprintln!("{what}: largest relative difference {relative:e}");
    assert!(relative <= f64::from(TOLERANCE), "{what}: differs from torchvision by {relative:e} (relative)");
}

#[test]
fn inception_v3_equals_torchvision() {
    let expected = candle_core::safetensors::load(fixture("inception_v3.safetensors"), &Device::Cpu).unwrap();
    let x = input();

    let eval = network(false).forward_t(&x, false).unwrap();
    assert_close("eval pooled", &eval.pooled, &expected["eval/pooled"]);
    assert_close("eval logits", eval.logits.as_ref().unwrap(), &expected["eval/logits"]);
    assert!(eval.aux_logits.is_none(), "AuxLogits runs in train mode only");
    // The spatial features (Mixed_7c): 2048 × 8 × 8 per image, torchvision's (the fixture keeps
    // the first 64 channels), and `pooled` is their mean over the grid.
    assert_eq!(eval.spatial.dims(), [2, 2048, 8, 8]);
    let first_channels = eval.spatial.narrow(1, 0, 64).unwrap();
    assert_close("eval spatial (Mixed_7c)", &first_channels, &expected["eval/spatial_first_64_channels"]);
    assert_close("pooled = mean of spatial", &eval.spatial.mean((2, 3)).unwrap(), &eval.pooled);

    // The reference path (candle's convolutions and pools), forced by the backend layer's switch.
    let reference = caption_model::backend::with_reference_only(|| network(false).forward_t(&x, false)).unwrap();
    assert_close("eval pooled, reference path", &reference.pooled, &expected["eval/pooled"]);
    let first_channels = reference.spatial.narrow(1, 0, 64).unwrap();
    assert_close("eval spatial, reference path", &first_channels, &expected["eval/spatial_first_64_channels"]);
    assert_close("eval logits, reference path", reference.logits.as_ref().unwrap(), &expected["eval/logits"]);

    let transformed = network(true).forward_t(&x, false).unwrap();
    assert_close("transform_input pooled", &transformed.pooled, &expected["eval_ti/pooled"]);
    assert_close("transform_input logits", transformed.logits.as_ref().unwrap(), &expected["eval_ti/logits"]);
}

/// Train mode (batch statistics, running statistics updated) in float64 against torch in float64:
/// the semantics, free of rounding. Then float32: our error against the float64 reference must be
/// no worse than 3× torch's own float32 error (batch statistics over two images amplify rounding;
/// torch float32 itself is off by ~1e-4 there).
#[test]
fn train_mode_equals_torchvision() {
    let expected = candle_core::safetensors::load(fixture("inception_v3.safetensors"), &Device::Cpu).unwrap();
    // `backward`: `forward_t` in train mode; otherwise `forward_batch_statistics` (no backward
    // pass; on the CPU in float32 its own fused loops).
    let outputs = |dtype: DType, backward: bool| {
        let net = network_in(false, dtype);
        let x = input().to_dtype(dtype).unwrap();
        let train = if backward { net.forward_t(&x, true).unwrap() } else { net.forward_batch_statistics(&x).unwrap() };
        let after = net.forward_t(&x, false).unwrap();
        [("pooled", train.pooled), ("aux_logits", train.aux_logits.unwrap()), ("after_train_pooled", after.pooled)]
    };
    for (name, ours) in outputs(DType::F64, true) {
        let relative = relative_difference(&ours, &expected[&format!("train64/{name}")]);
        eprintln!("train f64 {name}: largest relative difference {relative:e}");
        assert!(relative <= 1e-9, "train f64 {name}: {relative:e}");
    }
    for backward in [true, false] {
        for (name, ours) in outputs(DType::F32, backward) {
            let reference = &expected[&format!("train64/{name}")];
            let torch = relative_difference(&expected[&format!("train32/{name}")], reference);
            let relative = relative_difference(&ours, reference);
            eprintln!("train f32 {name} (backward {backward}): ours {relative:e}, torch's own {torch:e} from float64");
            assert!(relative <= (3.0 * torch).max(1e-5), "train f32 {name}: {relative:e} against torch's {torch:e}");
        }
    }
}

#[test]
fn a_wrong_shape_names_the_tensor() {
    let mut weights = weights();
    weights.insert(
        "Mixed_6b.branch7x7_2.conv.weight".into(),
        Tensor::zeros((128, 128, 7, 1), DType::F32, &Device::Cpu).unwrap(),
    );
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let error = Inception3::new(vb, InceptionConfig::default()).unwrap_err().to_string();
    assert!(error.contains("Mixed_6b.branch7x7_2.conv.weight"), "{error}");
    assert!(error.contains("[128, 128, 1, 7]") && error.contains("[128, 128, 7, 1]"), "{error}");
}
