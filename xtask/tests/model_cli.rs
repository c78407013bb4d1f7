//! `cargo xtask import-checkpoint` end to end.

use std::path::Path;
use std::process::Command;

#[path = "../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

#[test]
fn imports_an_original_checkpoint_and_refuses_other_files() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/caption-model/tests/fixtures");
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("imported.safetensors");
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

    // A missing file is named as missing; a legacy (pre-1.6) torch.save file as legacy.
    let output = run(&temp.path().join("missing.pth.tar"));
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("missing.pth.tar: No such file or directory") && !message.contains("not a PyTorch"),
        "{message}"
    );
    let output = run(&fixtures.join("original_checkpoint_legacy.pth.tar"));
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("a legacy PyTorch file (written before PyTorch 1.6, not a zip archive)"), "{message}");
}

#[path = "../../crates/caption-model/tests/common/formula.rs"]
mod formula;

#[test]
fn features_from_hub_weights_equal_torchvisions_pooled_features_and_logits() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/caption-model/tests/fixtures");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
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
}

#[test]
fn features_of_image_files_equal_features_of_torchvisions_preprocessing_in_input_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("../crates/caption-model/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let weights_file = dir.path().join("weights.safetensors");
    candle_core::safetensors::save(&formula::weights(&fixtures.join("inception_v3_params.json")), &weights_file)
        .unwrap();
    // torchvision's Resize((99, 99)) → ToTensor → Normalize(0.5, 0.5) of three Flickr8k photos
    // (tools/data/generate_transform_fixtures.py).
    let transformed = candle_core::safetensors::load(
        root.join("../crates/caption-data/tests/fixtures/torchvision_eval_transform.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut names: Vec<&str> = transformed
        .keys()
        .filter_map(|k| k.strip_suffix("/99"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    names.reverse(); // not the sorted order a folder would give: rows must follow the arguments
    let photos = shared_data("flickr8k/images");
    let rows: Vec<candle_core::Tensor> =
        names.iter().map(|n| transformed[&format!("{n}/99")].reshape((1, 3, 99, 99)).unwrap()).collect();
    let images = candle_core::Tensor::cat(&rows, 0).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("images".to_string(), images)]),
        dir.path().join("x.safetensors"),
    )
    .unwrap();
    let features = |input: &[&str], out: &str| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["features", "--device", "cpu", "--batch", "2", "--size", "99", "-q", "--weights"])
            .arg(&weights_file)
            .args(input)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .unwrap()
    };
    let tensor_input = dir.path().join("x.safetensors");
    let output = features(&["--input-tensor", tensor_input.to_str().unwrap()], "reference.safetensors");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let files: Vec<String> = names.iter().map(|n| photos.join(n).display().to_string()).collect();
    let mut arguments = vec!["--images"];
    arguments.extend(files.iter().map(String::as_str));
    let output = features(&arguments, "ours.safetensors");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("3 images"));

    let load = |name: &str| candle_core::safetensors::load(dir.path().join(name), &candle_core::Device::Cpu).unwrap();
    let (ours, reference) =
        (load("ours.safetensors")["pooled"].clone(), load("reference.safetensors")["pooled"].clone());
    assert_eq!(ours.dims(), &[3, 2048]);
    // Inputs differ by at most one 8-bit level (JPEG decoder and resampler rounding), so the
    // features are close, and each row is nearest to its own image's reference row.
    for i in 0..3 {
        let distances: Vec<f64> =
            (0..3).map(|j| formula::relative_difference(&ours.get(i).unwrap(), &reference.get(j).unwrap())).collect();
        assert!(distances[i] < 0.02, "row {i}: {distances:?}");
        assert!((0..3).all(|j| j == i || distances[j] > 3.0 * distances[i]), "row {i}: {distances:?}");
    }

    // An unreadable image: named, non-zero exit, nothing written.
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff not a jpeg").unwrap();
    let output = features(&["--images", &files[0], broken.to_str().unwrap()], "never.safetensors");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.jpg"));
    assert!(!dir.path().join("never.safetensors").exists());
}
