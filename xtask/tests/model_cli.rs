//! `cargo xtask import-checkpoint` end to end.

use std::path::Path;
use std::process::Command;

#[test]
fn imports_an_original_checkpoint_and_refuses_other_files() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/caption-model/tests/fixtures");
    let out = std::env::temp_dir().join(format!("caption-xtask-import-{}.safetensors", std::process::id()));
    let run = |input: &Path| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("import-checkpoint")
            .arg(input)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let output = run(&fixtures.join("original_checkpoint.pth.tar"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("9 tensors, 1822 parameters"));
    let tensors = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    assert!(tensors.contains_key("decoderRNN.lstm.weight_ih_l0"));

    let output = run(&fixtures.join("decoder_greedy.json"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a PyTorch checkpoint"));
}

#[path = "../../crates/caption-model/tests/common/formula.rs"]
mod formula;

#[test]
fn features_from_hub_weights_equal_torchvisions_pooled_features_and_logits() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/caption-model/tests/fixtures");
    let dir = std::env::temp_dir().join(format!("caption-xtask-features-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The weights sit in a Hugging Face cache layout, so `--weights hub` finds them offline.
    let snapshot = dir.join("hf/hub/models--timm--inception_v3.tv_in1k/snapshots/0000");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(dir.join("hf/hub/models--timm--inception_v3.tv_in1k/refs")).unwrap();
    std::fs::write(dir.join("hf/hub/models--timm--inception_v3.tv_in1k/refs/main"), "0000").unwrap();
    let weights = formula::weights(&fixtures.join("inception_v3_params.json"));
    candle_core::safetensors::save(&weights, snapshot.join("model.safetensors")).unwrap();
    let input: Vec<f32> = formula::unit("input", 2 * 3 * 299 * 299).map(|u| (2.0 * u - 1.0) as f32).collect();
    let images = candle_core::Tensor::from_vec(input, (2, 3, 299, 299), &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("images".to_string(), images)]),
        dir.join("x.safetensors"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("HF_HOME", dir.join("hf"))
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["features", "--device", "cpu", "--batch", "1", "--weights", "hub"])
        .arg("--input-tensor")
        .arg(dir.join("x.safetensors"))
        .arg("--out")
        .arg(dir.join("features.safetensors"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ours = candle_core::safetensors::load(dir.join("features.safetensors"), &candle_core::Device::Cpu).unwrap();
    let expected =
        candle_core::safetensors::load(fixtures.join("inception_v3.safetensors"), &candle_core::Device::Cpu).unwrap();
    for (key, reference) in [("pooled", "eval/pooled"), ("logits", "eval/logits")] {
        let relative = formula::relative_difference(&ours[key], &expected[reference]);
        assert!(relative <= 1e-4, "{key}: {relative:e} relative");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
