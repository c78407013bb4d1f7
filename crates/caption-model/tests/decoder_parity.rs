//! The LSTM decoder against the PyTorch original's DecoderRNN and its `caption_image` loop
//! (`tools/model/generate_decoder_fixtures.py`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use caption_model::{DecoderConfig, DecoderRNN};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load() -> (DecoderRNN, std::collections::HashMap<String, Tensor>, Value) {
    let tensors = candle_core::safetensors::load(fixture("decoder.safetensors"), &Device::Cpu).unwrap();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(fixture("decoder_greedy.json")).unwrap()).unwrap();
    let size = |k: &str| meta["sizes"][k].as_u64().unwrap() as usize;
    let config = DecoderConfig {
        embed_size: size("embed_size"),
        hidden_size: size("hidden_size"),
        vocab_size: size("vocab_size"),
        num_layers: size("num_layers"),
    };
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    (DecoderRNN::new(vb.pp("decoder"), config).unwrap(), tensors, meta)
}

#[test]
fn teacher_forced_logits_equal_the_original() {
    let (decoder, tensors, _) = load();
    let logits = decoder.forward(&tensors["features"], &tensors["captions"], None).unwrap();
    let expected = &tensors["teacher_forced"];
    assert_eq!(logits.dims(), expected.dims());
    let difference = (logits - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let scale = expected.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    eprintln!("teacher-forced logits: largest difference {difference:e} (scale {scale})");
    assert!(difference <= 1e-5 * scale.max(1.0), "{difference}");
}

#[test]
fn greedy_decoding_equals_caption_image() {
    let (decoder, tensors, meta) = load();
    let eos = meta["eos"].as_u64().unwrap() as u32;
    let expected: Vec<Vec<u32>> = meta["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ids| ids.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect())
        .collect();
    // All rows at once, and each row alone as the original decodes them.
    let batched = decoder.greedy(&tensors["features"], 50, eos).unwrap();
    for (row, want) in expected.iter().enumerate() {
        assert_eq!(&batched[row].0, want, "row {row} (batched)");
        let alone = decoder.greedy(&tensors["features"].narrow(0, row, 1).unwrap(), 50, eos).unwrap();
        assert_eq!(&alone[0].0, want, "row {row} (alone)");
        assert!(batched[row].1 <= 0.0 && batched[row].1.is_finite());
    }
    assert!(expected.iter().any(|ids| ids.len() < 50) && expected.iter().any(|ids| ids.len() == 50));
}
