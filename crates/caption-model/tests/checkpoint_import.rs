//! Importing the original's `my_checkpoint.pth.tar` (a small one in its format, written by
//! `tools/model/generate_checkpoint_fixture.py`) and exporting it to safetensors.

use std::path::{Path, PathBuf};

use candle_core::Device;
use caption_model::{CheckpointError, read_original_checkpoint, save_safetensors};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn state_dict_comes_over_by_name_and_value_and_round_trips() {
    let imported = read_original_checkpoint(&fixture("original_checkpoint.pth.tar")).unwrap();
    let expected =
        candle_core::safetensors::load(fixture("original_checkpoint_state.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = imported.keys().collect();
    names.sort();
    let mut want: Vec<&String> = expected.keys().collect();
    want.sort();
    assert_eq!(names, want);
    for (name, tensor) in &expected {
        let ours = &imported[name];
        assert_eq!(ours.dims(), tensor.dims(), "{name}");
        let same = ours.eq(tensor).unwrap().flatten_all().unwrap().min(0).unwrap().to_scalar::<u8>().unwrap();
        assert_eq!(same, 1, "{name} differs");
    }

    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("imported.safetensors");
    save_safetensors(&imported, &out).unwrap();
    let back = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    assert_eq!(back.len(), imported.len());
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_refused() {
    let not_a_checkpoint = fixture("decoder_greedy.json");
    let error = read_original_checkpoint(&not_a_checkpoint).unwrap_err();
    assert!(matches!(error, CheckpointError::Unreadable { .. }));
    assert!(error.to_string().contains("decoder_greedy.json: not a PyTorch checkpoint"));
}
