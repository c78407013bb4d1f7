//! The CUDA backend against the CPU backend (itself tested against candle's autograd in
//! tests/training_pass.rs): the decoder's training pass with the encoder head, the decoder's
//! alone, and Adam's update, on the same weights, inputs and dropout masks.
//!
//! These need a GPU, so they are ignored by a plain `cargo test`; tools/device/cuda_check.sh runs
//! them on a GPU machine (`cuda_backend --ignored`). Built only with the `cuda` feature.
#![cfg(feature = "cuda")]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use caption_model::backend::adam::AdamUpdate;
use caption_model::backend::{Gradient, Path, choose};
use caption_model::init::initialize;
use caption_model::{CNNtoRNN, DecoderConfig, Dropout, Inception3, InceptionConfig, Targets};

#[path = "common/batch.rs"]
mod common_batch;
use common_batch::{PAD, batch};

/// The GPU as the commands make it ([`caption_model::parse_device`]).
fn cuda() -> Device {
    caption_model::parse_device("cuda")
        .expect("these tests need a CUDA device (run them with tools/device/cuda_check.sh)")
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn a_device_made_for_the_commands_keeps_freed_memory_in_its_pool() {
    use candle_core::cuda_backend::cudarc::driver::{result, sys};
    let Device::Cuda(device) = cuda() else { unreachable!() };
    let context = device.cuda_stream().context().clone();
    assert!(context.has_async_alloc(), "the driver allocates stream-ordered (what the setting is for)");
    let mut threshold = 0u64;
    // SAFETY: the context's device; the attribute is a 64-bit integer.
    unsafe {
        let pool = result::device::get_mem_pool(context.cu_device()).unwrap();
        let attribute = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
        result::mem_pool::get_attribute(pool, attribute, (&raw mut threshold).cast()).unwrap();
    }
    assert_eq!(threshold, u64::MAX);
}

/// The same model on the CPU and on `device`, fc and decoder from `seed`.
fn models(config: DecoderConfig, seed: u64, device: &Device) -> (CNNtoRNN, CNNtoRNN) {
    let varmap = VarMap::new();
    let cpu = CNNtoRNN::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), config, false).unwrap();
    initialize(&varmap, seed, |name| name.contains(".fc.") || name.starts_with("decoderRNN.")).unwrap();
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().to_device(device).unwrap()))
        .collect();
    let gpu = CNNtoRNN::new(VarBuilder::from_tensors(tensors, DType::F32, device), config, false).unwrap();
    (cpu, gpu)
}

/// Asserts `actual` (from the GPU) equals `expected` (from the CPU) within `tolerance` of the
/// largest magnitude, and that the comparison can fail (`expected` is not all zeros).
fn assert_close(name: &str, actual: &Tensor, expected: &Tensor, tolerance: f64) {
    assert_eq!(actual.dims(), expected.dims(), "{name}");
    assert!(actual.device().is_cuda(), "{name}: the gradient is not on the GPU");
    let actual = actual.to_device(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let expected = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = expected.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
    let worst = actual.iter().zip(&expected).fold(0f64, |m, (&a, &b)| m.max(f64::from(a - b).abs()));
    eprintln!("{name}: largest difference {worst:e} (largest value {scale:e})");
    assert!(scale > 0.0, "{name}: the CPU's values are zero, the test would prove nothing");
    assert!(worst <= tolerance * scale, "{name}: {worst:e} against {scale:e}");
}

fn check_head(config: DecoderConfig, batch_size: usize, steps: usize, p: f32) {
    let device = cuda();
    let (cpu, gpu) = models(config, 5, &device);
    let (pooled, captions) = batch(batch_size, steps, config.vocab_size);
    let expected =
        cpu.head_gradients(&pooled, Targets::new(&captions, PAD), &mut Dropout::new(p, 11)).unwrap().unwrap();
    let gpu_pooled = pooled.to_device(&device).unwrap();
    let gpu_captions = captions.to_device(&device).unwrap();
    assert_eq!(choose(&[&gpu_pooled], Gradient::NotTracked), Path::Cuda);
    let mut dropout = Dropout::new(p, 11);
    let actual = gpu
        .head_gradients(&gpu_pooled, Targets::new(&gpu_captions, PAD), &mut dropout)
        .unwrap()
        .expect("the CUDA pass runs");
    assert_eq!(dropout.state(), {
        let mut drawn = Dropout::new(p, 11);
        cpu.head_gradients(&pooled, Targets::new(&captions, PAD), &mut drawn).unwrap();
        drawn.state()
    });
    assert_eq!(actual.counted, expected.counted);
    assert!((actual.loss - expected.loss).abs() <= 1e-5 * expected.loss, "loss {} vs {}", actual.loss, expected.loss);
    let expected: HashMap<&str, &Tensor> = expected.gradients.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(actual.gradients.len(), expected.len());
    for (name, gradient) in &actual.gradients {
        assert_close(name, gradient, expected[name.as_str()], 1e-5);
    }
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn head_pass_equals_the_cpu_pass_with_dropout_pad_and_two_layers() {
    check_head(DecoderConfig { embed_size: 24, hidden_size: 40, vocab_size: 53, num_layers: 2 }, 6, 9, 0.5);
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn head_pass_equals_the_cpu_pass_at_the_original_sizes() {
    // The original's sizes and a Flickr8k-like vocabulary and caption length, batch 32.
    check_head(DecoderConfig { embed_size: 256, hidden_size: 256, vocab_size: 2994, num_layers: 1 }, 32, 21, 0.5);
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn decoder_pass_equals_the_cpu_pass() {
    let device = cuda();
    let config = DecoderConfig { embed_size: 32, hidden_size: 16, vocab_size: 29, num_layers: 1 };
    let (cpu, gpu) = models(config, 7, &device);
    let (_, captions) = batch(5, 7, config.vocab_size);
    let features = Tensor::randn(0f32, 1.0, (5, 32), &Device::Cpu).unwrap();
    let expected = cpu
        .decoder
        .loss_gradients(&features, Targets::new(&captions, PAD), &mut Dropout::new(0.3, 4))
        .unwrap()
        .unwrap();
    let actual = gpu
        .decoder
        .loss_gradients(
            &features.to_device(&device).unwrap(),
            Targets::new(&captions.to_device(&device).unwrap(), PAD),
            &mut Dropout::new(0.3, 4),
        )
        .unwrap()
        .expect("the CUDA pass runs");
    assert_eq!(actual.counted, expected.counted);
    assert!((actual.loss - expected.loss).abs() <= 1e-5 * expected.loss);
    assert_close("features", &actual.features, &expected.features, 1e-5);
    for ((name, a), (expected_name, e)) in actual.gradients.iter().zip(&expected.gradients) {
        assert_eq!(name, expected_name);
        assert_close(name, a, e, 1e-5);
    }
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn adam_update_equals_the_cpu_update() {
    let device = cuda();
    let n = 10_007;
    let values = |seed: f32| -> Vec<f32> { (0..n).map(|i| ((i as f32 * 0.37 + seed).sin()) * 0.1).collect() };
    let on = |values: Vec<f32>, device: &Device| Tensor::from_vec(values, n, device).unwrap();
    let (cpu_theta, cpu_m, cpu_v) = (
        on(values(1.0), &Device::Cpu),
        on(values(2.0), &Device::Cpu),
        on(values(3.0).iter().map(|x| x * x).collect(), &Device::Cpu),
    );
    let (gpu_theta, gpu_m, gpu_v) =
        (cpu_theta.to_device(&device).unwrap(), cpu_m.to_device(&device).unwrap(), cpu_v.to_device(&device).unwrap());
    for (step, update) in [
        AdamUpdate {
            beta1: 0.9,
            beta2: 0.999,
            grad_scale: 1.0,
            l2: 0.0,
            decay: 1.0,
            step_size: 3e-4 / 0.1,
            bias2_sqrt: 0.001f32.sqrt(),
            eps: 1e-8,
        },
        AdamUpdate {
            beta1: 0.9,
            beta2: 0.999,
            grad_scale: 0.5,
            l2: 0.01,
            decay: 0.999,
            step_size: 3e-4 / 0.19,
            bias2_sqrt: 0.002f32.sqrt(),
            eps: 1e-8,
        },
    ]
    .iter()
    .enumerate()
    {
        let grad = on(values(4.0 + step as f32), &Device::Cpu);
        update.apply(&cpu_theta, &cpu_m, &cpu_v, &grad).unwrap();
        update.apply(&gpu_theta, &gpu_m, &gpu_v, &grad.to_device(&device).unwrap()).unwrap();
    }
    assert_close("theta", &gpu_theta, &cpu_theta, 1e-6);
    assert_close("exp_avg", &gpu_m, &cpu_m, 1e-6);
    assert_close("exp_avg_sq", &gpu_v, &cpu_v, 1e-6);
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn greedy_decoding_equals_the_cpu_backend_and_the_reference() {
    let device = cuda();
    for (config, batch) in [
        (DecoderConfig { embed_size: 256, hidden_size: 256, vocab_size: 2994, num_layers: 1 }, 1),
        (DecoderConfig { embed_size: 24, hidden_size: 40, vocab_size: 53, num_layers: 2 }, 5),
    ] {
        let (cpu, gpu) = models(config, 3, &device);
        let features = Tensor::randn(0f32, 1.0, (batch, config.embed_size), &Device::Cpu).unwrap();
        let gpu_features = features.to_device(&device).unwrap();
        // A word that ends row 0's caption at its fourth step.
        let eos = cpu.decoder.greedy(&features, 50, u32::MAX).unwrap()[0].0[3];
        let expected = cpu.decoder.greedy(&features, 50, eos).unwrap();
        let reference = gpu.decoder.greedy_with_tensors(&gpu_features, 50, eos).unwrap();
        let actual = gpu.decoder.greedy(&gpu_features, 50, eos).unwrap();
        for (row, ((ids, score), (expected_ids, expected_score))) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(ids, expected_ids, "row {row}: the CPU backend's words");
            assert_eq!(ids, &reference[row].0, "row {row}: the reference path's words");
            assert!(
                (score - expected_score).abs() <= 1e-4 * expected_score.abs().max(1.0),
                "row {row}: {score} vs {expected_score}"
            );
        }
    }
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn beam_search_equals_the_cpu_backend_and_the_reference() {
    let device = cuda();
    // The original's sizes; two layers; a beam wider than a tiny vocabulary.
    for (config, images, beam_size) in [
        (DecoderConfig { embed_size: 256, hidden_size: 256, vocab_size: 2994, num_layers: 1 }, 2, 5),
        (DecoderConfig { embed_size: 24, hidden_size: 40, vocab_size: 53, num_layers: 2 }, 4, 3),
        (DecoderConfig { embed_size: 8, hidden_size: 12, vocab_size: 4, num_layers: 1 }, 3, 6),
    ] {
        let (cpu, gpu) = models(config, 7, &device);
        let features = Tensor::randn(0f32, 1.0, (images, config.embed_size), &Device::Cpu).unwrap();
        let gpu_features = features.to_device(&device).unwrap();
        let eos = cpu.decoder.greedy(&features, 50, u32::MAX).unwrap()[0].0[2];
        let search = caption_model::BeamConfig { beam_size, max_length: 12, length_penalty: 0.7, eos };
        let expected = cpu.decoder.beam_search_n_best(&features, search, beam_size).unwrap();
        let reference = gpu.decoder.beam_search_with_tensors(&gpu_features, search, beam_size).unwrap();
        let actual = gpu.decoder.beam_search_n_best(&gpu_features, search, beam_size).unwrap();
        assert!(expected.iter().any(|ranked| ranked.iter().any(|h| h.finished)), "some hypothesis reaches eos");
        for (image, ranked) in actual.iter().enumerate() {
            let ids = |ranking: &[caption_model::Hypothesis]| ranking.iter().map(|h| h.ids.clone()).collect::<Vec<_>>();
            assert_eq!(ids(ranked), ids(&expected[image]), "image {image}: the CPU backend's ranking");
            assert_eq!(ids(ranked), ids(&reference[image]), "image {image}: the reference path's ranking");
            for (found, wanted) in ranked.iter().zip(&expected[image]) {
                assert_eq!(found.finished, wanted.finished, "image {image}");
                let tolerance = 1e-4 * wanted.log_prob.abs().max(1.0);
                assert!(
                    (found.log_prob - wanted.log_prob).abs() <= tolerance,
                    "image {image}: {found:?} vs {wanted:?}"
                );
            }
        }
    }
}

/// The same Inception v3 (no fc) on the CPU and on `device`, each with its variables, and batch
/// norms that are not the identity: patterned running statistics and affine parameters.
fn inceptions(device: &Device) -> ((VarMap, Inception3), (VarMap, Inception3)) {
    let config = InceptionConfig { num_classes: None, aux_logits: false, transform_input: true };
    let (cpu_vars, gpu_vars) = (VarMap::new(), VarMap::new());
    let cpu = Inception3::new(VarBuilder::from_varmap(&cpu_vars, DType::F32, &Device::Cpu), config).unwrap();
    let gpu = Inception3::new(VarBuilder::from_varmap(&gpu_vars, DType::F32, device), config).unwrap();
    let gpu_data = gpu_vars.data().lock().unwrap();
    for (name, var) in cpu_vars.data().lock().unwrap().iter() {
        let count = var.elem_count();
        let pattern = |offset: f32, scale: f32| {
            let values: Vec<f32> = (0..count).map(|i| offset + scale * (i as f32 * 0.7).sin()).collect();
            Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()
        };
        let replaced =
            [("running_mean", 0.0, 0.1), ("running_var", 1.0, 0.5), ("bn.weight", 1.0, 0.3), ("bn.bias", 0.0, 0.1)]
                .iter()
                .find(|(suffix, _, _)| name.ends_with(suffix))
                .map(|&(_, offset, scale)| pattern(offset, scale));
        if let Some(values) = replaced {
            var.set(&values).unwrap();
        }
        gpu_data[name].set(&var.as_tensor().to_device(device).unwrap()).unwrap();
    }
    drop(gpu_data);
    ((cpu_vars, cpu), (gpu_vars, gpu))
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn inception_eval_forward_equals_the_cpu_backend() {
    let device = cuda();
    let ((_, cpu), (_, gpu)) = inceptions(&device);
    let images = Tensor::randn(0f32, 1.0, (2, 3, 139, 139), &Device::Cpu).unwrap();
    let expected = cpu.forward_t(&images, false).unwrap();
    let actual = gpu.forward_t(&images.to_device(&device).unwrap(), false).unwrap();
    assert_close("spatial", &actual.spatial, &expected.spatial, 1e-4);
    assert_close("pooled", &actual.pooled, &expected.pooled, 1e-4);
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn inception_batch_statistics_equal_the_cpu_backend() {
    let device = cuda();
    let ((_, cpu), (_, gpu)) = inceptions(&device);
    let images = Tensor::randn(0f32, 1.0, (3, 3, 139, 139), &Device::Cpu).unwrap();
    let gpu_images = images.to_device(&device).unwrap();
    let expected = cpu.forward_batch_statistics(&images).unwrap();
    let actual = gpu.forward_batch_statistics(&gpu_images).unwrap();
    assert_close("pooled, batch statistics", &actual.pooled, &expected.pooled, 1e-4);
    // The running statistics moved alike: an eval pass reads them.
    let expected = cpu.forward_t(&images, false).unwrap();
    let actual = gpu.forward_t(&gpu_images, false).unwrap();
    assert_close("pooled, eval after", &actual.pooled, &expected.pooled, 1e-4);
}

#[test]
#[ignore = "needs a CUDA device: tools/device/cuda_check.sh"]
fn inception_fine_tuning_gradients_equal_the_cpu_reference() {
    // Train mode with a backward pass: on the GPU cuDNN's convolutions (with the `cudnn` feature)
    // or candle's, on the CPU candle's autograd (the reference path).
    let device = cuda();
    let ((cpu_vars, cpu), (gpu_vars, gpu)) = inceptions(&device);
    let images = Tensor::randn(0f32, 1.0, (2, 3, 139, 139), &Device::Cpu).unwrap();
    let loss = |model: &Inception3, images: &Tensor| {
        model.forward_t(images, true).unwrap().pooled.sqr().unwrap().sum_all().unwrap()
    };
    let (cpu_loss, gpu_loss) = (loss(&cpu, &images), loss(&gpu, &images.to_device(&device).unwrap()));
    assert_close("loss", &gpu_loss.unsqueeze(0).unwrap(), &cpu_loss.unsqueeze(0).unwrap(), 1e-4);
    let (cpu_grads, gpu_grads) = (cpu_loss.backward().unwrap(), gpu_loss.backward().unwrap());
    let (cpu_data, gpu_data) = (cpu_vars.data().lock().unwrap(), gpu_vars.data().lock().unwrap());
    for name in [
        "Conv2d_1a_3x3.conv.weight",
        "Mixed_5b.branch1x1.conv.weight",
        "Mixed_7c.branch_pool.conv.weight",
        "Mixed_6e.branch7x7_2.bn.weight",
    ] {
        let expected =
            cpu_grads.get(cpu_data[name].as_tensor()).unwrap_or_else(|| panic!("no CPU gradient for {name}"));
        let actual = gpu_grads.get(gpu_data[name].as_tensor()).unwrap_or_else(|| panic!("no GPU gradient for {name}"));
        assert_close(name, actual, expected, 1e-3);
    }
}
