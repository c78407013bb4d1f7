//! The PyTorch original's checkpoint: `torch.save({"state_dict", "optimizer", "step"},
//! "my_checkpoint.pth.tar")`, read with candle's PyTorch pickle reader, and written out as
//! safetensors under the same (original) names.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use thiserror::Error;

/// Why a checkpoint could not be imported or exported.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read as a PyTorch checkpoint with a `state_dict`.
    #[error("{path}: not a PyTorch checkpoint with a \"state_dict\"")]
    Unreadable {
        /// The file.
        path: String,
        /// The reader's error.
        #[source]
        source: candle_core::Error,
    },
    /// The checkpoint holds no tensor under `state_dict`.
    #[error("{path}: the \"state_dict\" holds no tensors")]
    Empty {
        /// The file.
        path: String,
    },
    /// Writing the safetensors file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising the tensors failed.
    #[error("cannot serialise the tensors for {path}")]
    Serialise {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: candle_core::Error,
    },
}

/// Reads the `state_dict` of an original checkpoint (`my_checkpoint.pth.tar`), by name.
/// BatchNorm's integer `num_batches_tracked` counters are left out (nothing here uses them).
///
/// # Errors
/// [`CheckpointError::Unreadable`] or [`CheckpointError::Empty`].
pub fn read_original_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let name = path.display().to_string();
    let tensors = candle_core::pickle::read_all_with_key(path, Some("state_dict"))
        .map_err(|source| CheckpointError::Unreadable { path: name.clone(), source })?;
    let tensors: HashMap<String, Tensor> =
        tensors.into_iter().filter(|(k, _)| !k.ends_with("num_batches_tracked")).collect();
    if tensors.is_empty() {
        return Err(CheckpointError::Empty { path: name });
    }
    Ok(tensors)
}

/// Writes `tensors` as a safetensors file, atomically (temporary file, fsync, rename).
///
/// # Errors
/// [`CheckpointError::Serialise`] or [`CheckpointError::Write`].
pub fn save_safetensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(), CheckpointError> {
    let name = path.display().to_string();
    let temporary = path.with_extension(format!("safetensors.tmp-{}", std::process::id()));
    candle_core::safetensors::save(tensors, &temporary)
        .map_err(|source| CheckpointError::Serialise { path: name.clone(), source })?;
    let finish = || -> std::io::Result<()> {
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    finish().map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        CheckpointError::Write { path: name, source }
    })
}
