//! What a checkpoint folder holds, as far as captioning needs it, and how a run folder is searched
//! for one. caption-train writes these folders (adding the optimizer's and the trainer's state)
//! and reads them back through the same functions.
//!
//! ```text
//! RUN/checkpoints/step-N/   model.safetensors  tokenizer.json  trainer.json  (optimizer.safetensors)
//! RUN/best/                 the same files: the best validation score's checkpoint
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use caption_text::Vocabulary;
use serde::Deserialize;

/// Model file of a checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// Vocabulary file of a checkpoint.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Optimizer state file of a checkpoint (resuming reads it; captioning does not).
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Trainer state file of a checkpoint (written last).
pub const TRAINER_FILE: &str = "trainer.json";
/// Every file of a checkpoint folder.
pub const CHECKPOINT_FILES: [&str; 4] = [MODEL_FILE, OPTIMIZER_FILE, TRAINER_FILE, TOKENIZER_FILE];
/// A run's folder of `step-N` checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// A run's folder of the best checkpoint.
pub const BEST_DIR: &str = "best";
/// The key of model.safetensors' metadata that holds the vocabulary it was trained with: a JSON
/// array of the words by id (specials included). PyTorch's `safe_open(...).metadata()` reads it.
pub const VOCABULARY_METADATA_KEY: &str = "caption.vocabulary";

/// Model tensors by name.
pub type Tensors = HashMap<String, Tensor>;

/// Reads model.safetensors: its tensors and the vocabulary bound in its metadata (none in files
/// written before vocabularies were bound, or by other programs).
///
/// # Errors
/// A message saying what is wrong with the file.
pub fn read_model_file(path: &Path) -> Result<(Tensors, Option<Vec<String>>), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
    let bound = match metadata.metadata().as_ref().and_then(|m| m.get(VOCABULARY_METADATA_KEY)) {
        Some(words) => Some(
            serde_json::from_str::<Vec<String>>(words)
                .map_err(|e| format!("its metadata {VOCABULARY_METADATA_KEY:?} is not a list of words: {e}"))?,
        ),
        None => None,
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| e.to_string())?;
    Ok((tensors, bound))
}

/// Refuses a tokenizer.json whose words or ids differ from those the model was trained with
/// (`bound`), naming the first id that differs.
///
/// # Errors
/// A message naming the first difference.
pub fn check_bound_vocabulary(bound: &[String], vocabulary: &Vocabulary) -> Result<(), String> {
    let words = vocabulary.words();
    if let Some(id) = (0..bound.len().min(words.len())).find(|&id| bound[id] != words[id]) {
        return Err(format!(
            "{TOKENIZER_FILE} is not the vocabulary the model was trained with: id {id} is {:?} there but {:?} in \
             {MODEL_FILE} (a tokenizer.json from another dataset, or edited); put back the one written with the model",
            words[id], bound[id]
        ));
    }
    if bound.len() != words.len() {
        return Err(format!(
            "{TOKENIZER_FILE} has {} ids but the model was trained with {} (the first {} agree); put back the \
             tokenizer.json written with the model",
            words.len(),
            bound.len(),
            bound.len().min(words.len())
        ));
    }
    Ok(())
}

/// A checkpoint folder's model tensors and the vocabulary they were trained with: model.safetensors
/// and tokenizer.json, refused when tokenizer.json is not the vocabulary bound in the model's
/// metadata ([`check_bound_vocabulary`]) or has another size than `vocab_size` (trainer.json's).
///
/// # Errors
/// A message naming the file that is unreadable or does not fit.
pub fn read_model_and_vocabulary(dir: &Path, vocab_size: usize) -> Result<(Tensors, Vocabulary), String> {
    let (tensors, bound) = read_model_file(&dir.join(MODEL_FILE)).map_err(|e| format!("{MODEL_FILE}: {e}"))?;
    let vocabulary = Vocabulary::load(&dir.join(TOKENIZER_FILE)).map_err(|e| e.to_string())?;
    if let Some(bound) = &bound {
        check_bound_vocabulary(bound, &vocabulary)?;
    }
    if vocabulary.len() != vocab_size {
        return Err(format!("{TOKENIZER_FILE} has {} ids but {TRAINER_FILE} says {vocab_size}", vocabulary.len()));
    }
    Ok((tensors, vocabulary))
}

/// The settings in a checkpoint's trainer.json that captioning needs (its `config`, in
/// caption-train's `TrainConfig` names, and the vocabulary size).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelSettings {
    /// The decoder's sizes and the encoder's input.
    pub config: ModelConfig,
    /// The vocabulary size the model was trained with.
    pub vocab_size: usize,
    /// The training step the checkpoint was written at.
    #[serde(default)]
    pub step: Option<u64>,
    /// The epochs completed when it was written.
    #[serde(default)]
    pub epoch: Option<usize>,
}

/// The model's part of a run's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelConfig {
    /// Embedding size (also the image feature size).
    pub embed_size: usize,
    /// LSTM hidden size.
    pub hidden_size: usize,
    /// LSTM layers.
    pub num_layers: usize,
    /// The side images are resized to.
    pub image_size: u32,
    /// Whether Inception v3 re-normalises its input as torchvision's pretrained weights expect.
    pub transform_input: bool,
    /// The longest caption generated.
    pub max_length: usize,
    /// Images per forward.
    pub batch_size: usize,
}

/// Reads trainer.json's [`ModelSettings`].
///
/// # Errors
/// A message saying what is wrong with the file.
pub fn read_model_settings(path: &Path) -> Result<ModelSettings, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Whether `dir` holds a checkpoint, complete or not: one of its files (a folder holding only
/// what somebody else put there is not one).
pub fn is_checkpoint_folder(dir: &Path) -> bool {
    CHECKPOINT_FILES.iter().any(|file| dir.join(file).is_file())
}

/// The `checkpoints/step-N` folders of a run, newest (highest step) first.
pub fn list_checkpoints(run: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(run.join(CHECKPOINTS_DIR)) else { return Vec::new() };
    let mut dirs: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            is_checkpoint_folder(&e.path()).then(|| (step, e.path()))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// The checkpoint to caption with at `path`: `path` itself when it is a checkpoint folder, else
/// the run's `best/`, else its newest `checkpoints/step-N`.
pub fn find_checkpoint(path: &Path) -> Option<PathBuf> {
    if path.join(TRAINER_FILE).is_file() {
        return Some(path.to_path_buf());
    }
    let best = path.join(BEST_DIR);
    if best.join(TRAINER_FILE).is_file() {
        return Some(best);
    }
    list_checkpoints(path).into_iter().next()
}
