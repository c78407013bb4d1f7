//! caption-model's CNNtoRNN asks for exactly the tensors of the original's state_dict
//! (`tools/model/export_original_names.py`), with the same shapes.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use caption_model::{CNNtoRNN, DecoderConfig};
use serde_json::Value;

#[test]
fn parameter_names_and_shapes_equal_the_originals_state_dict() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cnn_to_rnn_names.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let expected: BTreeMap<String, Vec<usize>> = fixture["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()))
        .collect();

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config = DecoderConfig { embed_size: 256, hidden_size: 256, vocab_size: 2994, num_layers: 1 };
    CNNtoRNN::new(vb, config, false).unwrap();
    let ours: BTreeMap<String, Vec<usize>> =
        varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.dims().to_vec())).collect();

    let missing: Vec<&String> = expected.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<&String> = ours.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    assert_eq!(ours, expected);
}
