//! Frozen mode's weights that never train, stored once per run: in frozen mode only the head
//! (the original's `fc` and decoder, or the attention decoder) changes, so each checkpoint's
//! model.safetensors holds the head and names, in its metadata under
//! [`FROZEN_WEIGHTS_METADATA_KEY`], the run's `frozen-weights-CRC.safetensors` that holds the
//! rest (Inception v3, its batch norm statistics). Reading a model file finds that file beside it
//! or in the folders above it (a checkpoint's run) and checks its CRC-32, so checkpoints, `best/`
//! and a copy of the run share one copy of the encoder. `cargo xtask export` writes one file
//! holding everything.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::run_layout::{frozen_weights_file, is_frozen_weights_file};
use crate::safetensors_file::{MAX_MODEL_FILE_BYTES, Tensors, serialize_sorted};

/// The key of model.safetensors' metadata that names the frozen weights' file.
pub const FROZEN_WEIGHTS_METADATA_KEY: &str = "caption.frozen_weights";

/// The file holding a model's frozen weights, as a model file's metadata names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenWeights {
    /// Its file name, `frozen-weights-CRC.safetensors`.
    pub file: String,
    /// The CRC-32 of the whole file, 8 hex digits.
    pub crc32: String,
}

impl FrozenWeights {
    /// `tensors` as the bytes of a safetensors file (sorted by name), and the reference to it.
    ///
    /// # Errors
    /// A message when the tensors cannot be serialised.
    pub fn serialize(tensors: &Tensors) -> Result<(Self, Vec<u8>), String> {
        let bytes = serialize_sorted(tensors, None)?;
        let crc32 = format!("{:08x}", crc32fast::hash(&bytes));
        Ok((Self { file: frozen_weights_file(&crc32), crc32 }, bytes))
    }

    /// Whether `name` is a frozen weights file's.
    pub fn is_file_name(name: &str) -> bool {
        is_frozen_weights_file(name)
    }

    /// The value stored under [`FROZEN_WEIGHTS_METADATA_KEY`].
    pub fn metadata_value(&self) -> String {
        serde_json::to_string(self).expect("always serialises")
    }

    /// The tensors of the file for the model file at `model_file`: looked for beside it, then in
    /// the two folders above (a `best/` checkpoint's run, a `checkpoints/step-N` checkpoint's
    /// run); with the path it was read from.
    ///
    /// # Errors
    /// A message when no such file is there, or it is not the one named (its CRC-32 differs).
    pub fn load(&self, model_file: &Path) -> Result<(Tensors, PathBuf), String> {
        if !Self::is_file_name(&self.file) {
            return Err(format!("its metadata names {:?} as its frozen weights, not a frozen weights file", self.file));
        }
        let folder = model_file.parent().unwrap_or(Path::new(""));
        let Some(path) = folder.ancestors().take(3).map(|dir| dir.join(&self.file)).find(|path| path.is_file()) else {
            return Err(format!(
                "its frozen weights ({}: the encoder, kept once per run in frozen mode) are not beside it or in \
                 its run folder; give the checkpoint inside its run, or `cargo xtask export` it for a model that \
                 stands alone",
                self.file
            ));
        };
        let bytes = caption_data::read_input_file(&path, MAX_MODEL_FILE_BYTES)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if format!("{:08x}", crc32fast::hash(&bytes)) != self.crc32 {
            return Err(format!("{} does not match its CRC-32 (damaged or replaced)", path.display()));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((tensors, path))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Tensor;

    use super::*;

    #[test]
    fn frozen_weights_are_found_above_their_model_file_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let tensor = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap();
        let tensors = Tensors::from([("encoder.inception.x".to_string(), tensor)]);
        let (frozen, bytes) = FrozenWeights::serialize(&tensors).unwrap();
        assert!(
            FrozenWeights::is_file_name(&frozen.file) && !FrozenWeights::is_file_name("frozen-weights-x.safetensors")
        );
        let run = dir.path().join("run");
        let step = run.join("checkpoints/step-1");
        std::fs::create_dir_all(&step).unwrap();
        let error = frozen.load(&step.join("model.safetensors")).unwrap_err();
        assert!(error.contains("not beside it"), "{error}");
        std::fs::write(run.join(&frozen.file), &bytes).unwrap();
        let (read, path) = frozen.load(&step.join("model.safetensors")).unwrap();
        assert_eq!(path, run.join(&frozen.file));
        assert_eq!(read["encoder.inception.x"].to_vec1::<f32>().unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // Three folders up is not its run: not found there.
        let deeper = step.join("a/model.safetensors");
        assert!(frozen.load(&deeper).unwrap_err().contains("not beside it"));
        let mut changed = bytes.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(run.join(&frozen.file), &changed).unwrap();
        assert!(frozen.load(&step.join("model.safetensors")).unwrap_err().contains("CRC-32"));
    }
}
