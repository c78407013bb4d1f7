//! Inception v3 on a device: parity with the torchvision fixtures, then forward speed.
//!
//! `cargo run --release -p caption-model --example device_check -- --device cuda` (build with
//! `--features cuda`). Prints JSON lines: parity results (largest relative difference to the
//! fixtures), images/s at batch 1 and 32 in eval mode, float32, then the decoder benchmark of
//! `decoder_bench`. `tools/model/bench_inception_torch.py` and `bench_decoder_torch.py` time
//! PyTorch on the same device.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use caption_model::{Inception3, InceptionConfig};

#[path = "../tests/common/formula.rs"]
mod formula;

#[path = "common/decoder.rs"]
mod decoder;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn main() -> candle_core::Result<()> {
    // SAFETY: no other thread exists yet. As `cargo xtask` does.
    unsafe { caption_model::pin_cpu_thread_count() };
    let args: Vec<String> = std::env::args().collect();
    let device = match args.iter().position(|a| a == "--device").and_then(|i| args.get(i + 1)).map(String::as_str) {
        Some("cuda") => caption_model::parse_device("cuda")?,
        _ => Device::Cpu,
    };
    let fixtures_dir = std::env::var("FIXTURES").map(PathBuf::from).unwrap_or_else(|_| fixture(""));
    let expected = candle_core::safetensors::load(fixtures_dir.join("inception_v3.safetensors"), &Device::Cpu)?;
    let weights = formula::weights(&fixtures_dir.join("inception_v3_params.json"));
    let network = |dtype: DType, transform_input: bool| -> candle_core::Result<Inception3> {
        let on_device = weights
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?.to_device(&device)?)))
            .collect::<candle_core::Result<_>>()?;
        let vb = VarBuilder::from_tensors(on_device, dtype, &device);
        Inception3::new(vb, InceptionConfig { num_classes: Some(1000), aux_logits: true, transform_input })
    };
    let input: Vec<f32> = formula::unit("input", 2 * 3 * 299 * 299).map(|u| (2.0 * u - 1.0) as f32).collect();
    let x = Tensor::from_vec(input, (2, 3, 299, 299), &device)?;

    let eval = network(DType::F32, false)?.forward_t(&x, false)?;
    let eval_ti = network(DType::F32, true)?.forward_t(&x, false)?;
    let report = |what: &str, value: f64| println!("{{\"check\": \"{what}\", \"relative_difference\": {value:e}}}");
    report("eval pooled f32", formula::relative_difference(&eval.pooled, &expected["eval/pooled"]));
    report("eval logits f32", formula::relative_difference(eval.logits.as_ref().unwrap(), &expected["eval/logits"]));
    report(
        "transform_input logits f32",
        formula::relative_difference(eval_ti.logits.as_ref().unwrap(), &expected["eval_ti/logits"]),
    );
    for dtype in [DType::F32, DType::F64] {
        let net = network(dtype, false)?;
        let xd = x.to_dtype(dtype)?;
        match net.forward_t(&xd, true) {
            Ok(train) => {
                report(
                    &format!("train pooled {dtype:?} vs torch f64"),
                    formula::relative_difference(&train.pooled, &expected["train64/pooled"]),
                );
                let after = net.forward_t(&xd, false)?;
                report(
                    &format!("after train {dtype:?} vs torch f64"),
                    formula::relative_difference(&after.pooled, &expected["train64/after_train_pooled"]),
                );
            }
            Err(e) => println!("{{\"check\": \"train {dtype:?}\", \"error\": {:?}}}", e.to_string()),
        }
    }

    let net = network(DType::F32, true)?;
    for batch in [1usize, 32] {
        let x = Tensor::randn(0f32, 1f32, (batch, 3, 299, 299), &device)?;
        for _ in 0..3 {
            net.forward_t(&x, false)?;
        }
        device.synchronize()?;
        let iterations = if batch == 1 { 50 } else { 10 };
        let start = Instant::now();
        for _ in 0..iterations {
            net.forward_t(&x, false)?;
        }
        device.synchronize()?;
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{{\"bench\": \"inception_v3 forward eval f32\", \"device\": \"{device:?}\", \"batch\": {batch}, \"images_per_second\": {:.1}}}",
            (batch * iterations) as f64 / seconds
        );
    }
    decoder::run(&device)
}
