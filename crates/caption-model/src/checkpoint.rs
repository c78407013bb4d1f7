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
    /// There is no such file (or it is not a regular file).
    #[error("{path}: {problem}")]
    NotAFile {
        /// The path.
        path: String,
        /// `no such file`, or what it is instead.
        problem: String,
    },
    /// A PyTorch file in the legacy format `torch.save` wrote before PyTorch 1.6 (a bare pickle
    /// stream, not a zip archive), which this reader does not read.
    #[error(
        "{path}: a legacy PyTorch file (written before PyTorch 1.6, not a zip archive); load it in \
         PyTorch and save it again with torch.save(checkpoint, path), which writes the zip format"
    )]
    Legacy {
        /// The file.
        path: String,
    },
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

/// How a legacy (pre-1.6) `torch.save` file begins: the pickled magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19";

/// Reads the `state_dict` of an original checkpoint (`my_checkpoint.pth.tar`), by name.
/// BatchNorm's integer `num_batches_tracked` counters are left out (nothing here uses them).
///
/// # Errors
/// [`CheckpointError::NotAFile`], [`CheckpointError::Legacy`], [`CheckpointError::Unreadable`] or
/// [`CheckpointError::Empty`].
pub fn read_original_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Err(CheckpointError::NotAFile { path: name, problem: "not a regular file".into() }),
        Err(e) => return Err(CheckpointError::NotAFile { path: name, problem: e.to_string() }),
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    if head[..read].starts_with(LEGACY_MAGIC) {
        return Err(CheckpointError::Legacy { path: name });
    }
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
    let mut sorted: Vec<(&String, &Tensor)> = tensors.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let bytes = safetensors::serialize(sorted, None)
        .map_err(|e| CheckpointError::Serialise { path: name.clone(), source: e.into() })?;
    caption_io::write_bytes_atomically(path, &bytes).map_err(|source| CheckpointError::Write { path: name, source })
}
