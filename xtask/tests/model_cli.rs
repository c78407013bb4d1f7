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
