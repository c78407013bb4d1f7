//! A trained model as a folder PyTorch users load without this project ([`export_pytorch`]):
//! the weights under the original's names (with BatchNorm's `num_batches_tracked`, so that
//! `load_state_dict(strict=True)` accepts them), `config.json`, the vocabulary as `vocab.json`
//! and `tokenizer.json`, and `caption.py`, a self-contained script with the original's classes
//! that loads them and captions images.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use caption_model::DecoderKind;
use serde_json::json;

use crate::InferError;
use crate::checkpoint_files::{MODEL_FILE, TOKENIZER_FILE, TrainedModel, write_model_file};

/// The configuration file of an export.
pub const CONFIG_FILE: &str = "config.json";
/// The words by id.
pub const VOCAB_FILE: &str = "vocab.json";
/// The PyTorch script.
pub const SCRIPT_FILE: &str = "caption.py";
/// Every file of an export folder.
pub const EXPORT_FILES: [&str; 5] = [MODEL_FILE, CONFIG_FILE, VOCAB_FILE, TOKENIZER_FILE, SCRIPT_FILE];
/// The script: the original's classes, strict loading, its greedy `caption_image`.
const SCRIPT: &str = include_str!("export/caption.py");
/// `config.json`'s key saying which program wrote the folder (what makes it an export's).
const EXPORTED_BY: &str = "exported_by";

/// Writes `trained` into the folder `out` (atomically: a staging folder renamed into place),
/// which must be absent, empty or an earlier export ([`claim_export_folder`]); returns the
/// files written.
///
/// # Errors
/// [`InferError::Data`] when `out` holds other files; [`InferError::Io`] or a candle error.
pub fn export_pytorch(trained: &TrainedModel, out: &Path) -> Result<Vec<PathBuf>, InferError> {
    let kind = trained
        .metadata
        .kind()
        .map_err(|problem| InferError::Checkpoint { path: trained.path.display().to_string(), problem })?;
    // The export is the original's format: its model only.
    let original = DecoderKind::Lstm;
    if kind != original {
        return Err(InferError::Checkpoint {
            path: trained.path.display().to_string(),
            problem: format!(
                "holds a {} model; the PyTorch export writes the original's {} and its caption.py (the \
                 checkpoint's {MODEL_FILE} loads in PyTorch as it is: `encoder.inception.*` and the tutorial's \
                 `decoder.*` names)",
                kind.architecture(),
                original.architecture()
            ),
        });
    }
    claim_export_folder(out)?;
    let staging = caption_io::StagingDir::new(out).map_err(caption_data::DataError::from)?;
    let dir = staging.path();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InferError::Io { path, source }
    };

    let mut tensors = trained.tensors.clone();
    // PyTorch's BatchNorm2d has a step counter next to its statistics; eval mode never reads it
    // (torchvision's momentum is set), so the export carries 0 where the weights have none.
    let counters: Vec<String> = tensors
        .keys()
        .filter_map(|name| name.strip_suffix(".running_mean"))
        .map(|layer| format!("{layer}.num_batches_tracked"))
        .filter(|name| !tensors.contains_key(name))
        .collect();
    for name in counters {
        tensors.insert(name, Tensor::new(0i64, &Device::Cpu)?);
    }
    let model = dir.join(MODEL_FILE);
    write_model_file(&model, &tensors, trained.metadata.file_metadata(&trained.vocabulary))
        .map_err(|problem| InferError::Checkpoint { path: model.display().to_string(), problem })?;

    let mut config = serde_json::to_value(&trained.metadata).expect("the configuration serialises");
    config[EXPORTED_BY] = json!(format!("caption {} from {}", env!("CARGO_PKG_VERSION"), trained.path.display()));
    let files = [
        (CONFIG_FILE, serde_json::to_string_pretty(&config).expect("JSON values serialise") + "\n"),
        (VOCAB_FILE, serde_json::to_string_pretty(trained.vocabulary.words()).expect("words serialise") + "\n"),
        (TOKENIZER_FILE, trained.vocabulary.to_tokenizer_json()),
        (SCRIPT_FILE, SCRIPT.to_string()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        caption_io::write_synced(&path, |file| std::io::Write::write_all(file, text.as_bytes())).map_err(io(&path))?;
    }
    // A file someone put into the folder since it was claimed is moved into the new one, not lost.
    let is_export_file =
        |relative: &Path, is_dir: bool| !is_dir && relative.to_str().is_some_and(|n| EXPORT_FILES.contains(&n));
    let written = staging.commit_keeping(&is_export_file).map_err(caption_data::DataError::from)?;
    Ok(EXPORT_FILES.iter().map(|name| written.join(name)).collect())
}

/// Checks that `out` may receive an export: absent, empty, or an earlier export (only
/// [`EXPORT_FILES`], with a `config.json` an export wrote).
///
/// # Errors
/// [`InferError::Data`] with [`caption_data::DataError::Output`] naming what else is there.
pub fn claim_export_folder(out: &Path) -> Result<(), InferError> {
    Ok(caption_data::claim_folder_of_files(out, "PyTorch export", &EXPORT_FILES, CONFIG_FILE, &is_export_config)?)
}

/// Whether a `config.json` (as JSON) is one an export wrote.
pub fn is_export_config(config: &serde_json::Value) -> bool {
    config[EXPORTED_BY].as_str().is_some_and(|by| by.starts_with("caption "))
}
