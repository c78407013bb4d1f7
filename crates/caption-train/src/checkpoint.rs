//! Checkpoints: folders holding everything needed to resume a run or to caption alone, written
//! atomically (temporary folder, fsync, rename).
//!
//! ```text
//! RUN/checkpoints/step-000001234/
//!   model.safetensors      every tensor under the original's names (PyTorch-loadable)
//!   optimizer.safetensors  Adam moments (exp_avg.NAME, exp_avg_sq.NAME)
//!   trainer.json           epoch, step, dropout generator, best score, config, dataset hash
//!   tokenizer.json         the vocabulary
//! RUN/best/                a copy of the best checkpoint
//! ```

use caption_infer::frozen_weights::{FROZEN_WEIGHTS_METADATA_KEY, FrozenWeights};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use caption_io::StagingDir;
use caption_model::DropoutState;
use caption_text::Vocabulary;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::config::TrainConfig;
use crate::error::io;
use caption_infer::checkpoint_files::{ModelMetadata, read_model_and_vocabulary, write_model_file};

use caption_infer::run_layout::{self, DAMAGED_DIR, is_checkpoint_entry_path};

pub use caption_infer::checkpoint_files::{
    CHECKPOINT_FILES, MODEL_FILE, OPTIMIZER_FILE, TOKENIZER_FILE, TRAINER_FILE, VOCABULARY_METADATA_KEY,
    is_checkpoint_folder, list_checkpoints,
};

/// The best validation score so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Epoch (1-based) that reached it.
    pub epoch: usize,
    /// The score (BLEU-4, or the negated validation loss without BLEU).
    pub score: f64,
}

/// Where training stands: what a resumed run continues from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Epochs completed.
    pub epoch: usize,
    /// Batches of epoch `epoch` already trained (0 at an epoch boundary).
    pub batch_in_epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// The dropout generator.
    pub dropout: DropoutState,
    /// Best validation score.
    pub best: Option<Best>,
    /// Epochs since the best.
    pub epochs_since_best: usize,
    /// The run's configuration.
    pub config: TrainConfig,
    /// Content hash of the prepared dataset it trains on.
    pub dataset_hash: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// The program that wrote it.
    pub created_by: String,
}

/// A checkpoint read back.
pub struct Checkpoint {
    /// Its folder.
    pub path: PathBuf,
    /// Trainer state.
    pub state: TrainerState,
    /// Model tensors.
    pub model: HashMap<String, Tensor>,
    /// Optimizer moments.
    pub optimizer: HashMap<String, Tensor>,
    /// Vocabulary.
    pub vocabulary: Vocabulary,
}

/// Writes a checkpoint folder `dir` atomically ([`StagingDir`]: a crash leaves only a hidden
/// partial folder that resuming never reads). `model` is every tensor, or with `frozen` (frozen
/// mode) those that train, the rest being in the run's frozen weights file it names.
///
/// # Errors
/// [`TrainError::Io`] or a candle error.
pub fn write_checkpoint(
    dir: &Path,
    state: &TrainerState,
    model: &HashMap<String, Tensor>,
    frozen: Option<&FrozenWeights>,
    optimizer: &HashMap<String, Tensor>,
    vocabulary: &Vocabulary,
) -> Result<(), TrainError> {
    let staging = StagingDir::new(dir)?;
    let path = staging.path();
    save_model(&path.join(MODEL_FILE), model, frozen, vocabulary, state)?;
    candle_core::safetensors::save(optimizer, path.join(OPTIMIZER_FILE))?;
    write_synced(&path.join(TOKENIZER_FILE), vocabulary.to_tokenizer_json().as_bytes())?;
    let trainer = serde_json::to_string_pretty(state).expect("the trainer state always serialises");
    write_synced(&path.join(TRAINER_FILE), trainer.as_bytes())?;
    for file in [MODEL_FILE, OPTIMIZER_FILE] {
        let file = path.join(file);
        fs::File::open(&file).and_then(|f| f.sync_all()).map_err(io(&file))?;
    }
    staging.commit_keeping(&is_checkpoint_entry_path)?;
    Ok(())
}

/// Copies a checkpoint folder to `to` atomically (the `best` copy).
///
/// # Errors
/// [`TrainError::Io`].
pub fn copy_checkpoint(from: &Path, to: &Path) -> Result<(), TrainError> {
    let staging = StagingDir::new(to)?;
    for file in [MODEL_FILE, OPTIMIZER_FILE, TOKENIZER_FILE, TRAINER_FILE] {
        let target = staging.path().join(file);
        if fs::hard_link(from.join(file), &target).is_err() {
            fs::copy(from.join(file), &target).map_err(io(&target))?;
            fs::File::open(&target).and_then(|f| f.sync_all()).map_err(io(&target))?;
        }
    }
    staging.commit_keeping(&is_checkpoint_entry_path)?;
    Ok(())
}

/// Writes the model's tensors with the vocabulary and the model's configuration in the file's
/// metadata ([`ModelMetadata::file_metadata`]): the file alone says how to load it (with the
/// frozen weights it names, when it does).
fn save_model(
    path: &Path,
    model: &HashMap<String, Tensor>,
    frozen: Option<&FrozenWeights>,
    vocabulary: &Vocabulary,
    state: &TrainerState,
) -> Result<(), TrainError> {
    let config = &state.config;
    let model_config = config.model_config();
    let description = ModelMetadata::new(&model_config, vocabulary.len(), Some(state.step), Some(state.epoch));
    let mut metadata = description.file_metadata(vocabulary);
    if let Some(frozen) = frozen {
        metadata.insert(FROZEN_WEIGHTS_METADATA_KEY.to_string(), frozen.metadata_value());
    }
    write_model_file(path, model, metadata)
        .map_err(|problem| TrainError::Checkpoint { path: path.display().to_string(), problem })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    caption_io::write_synced(path, |file| std::io::Write::write_all(file, bytes)).map_err(io(path))
}

/// Reads a checkpoint folder (anything incomplete or unreadable is an error naming the file).
///
/// # Errors
/// [`TrainError::Checkpoint`].
pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint, TrainError> {
    let problem = |problem: String| TrainError::Checkpoint { path: dir.display().to_string(), problem };
    let files = CHECKPOINT_FILES;
    if let Some(missing) = files.iter().find(|file| !dir.join(file).is_file()) {
        return Err(problem(format!("{missing} is missing (a checkpoint folder holds {})", files.join(", "))));
    }
    let trainer = fs::read_to_string(dir.join(TRAINER_FILE)).map_err(|e| problem(format!("{TRAINER_FILE}: {e}")))?;
    let state: TrainerState = serde_json::from_str(&trainer).map_err(|e| problem(format!("{TRAINER_FILE}: {e}")))?;
    let (model, vocabulary) = read_model_and_vocabulary(dir, state.vocab_size).map_err(problem)?;
    let optimizer = candle_core::safetensors::load(dir.join(OPTIMIZER_FILE), &Device::Cpu)
        .map_err(|e| problem(format!("{OPTIMIZER_FILE}: {e}")))?;
    Ok(Checkpoint { path: dir.to_path_buf(), state, model, optimizer, vocabulary })
}

pub use caption_infer::run_layout::checkpoint_dir;

/// Where a resumed run continues from.
#[derive(Default)]
pub struct ResumePoint {
    /// The newest checkpoint that reads back completely (a `step-N` folder, or `best/` when it is
    /// the newest state that does).
    pub checkpoint: Option<Checkpoint>,
    /// Checkpoint folders newer than it (or `best/`) that do not read back, with the reason.
    pub damaged: Vec<(PathBuf, String)>,
    /// The best score recorded by `best/`, when it reads back.
    pub best: Option<Best>,
}

/// The newest state of a run that reads back completely, among its `step-N` checkpoints and
/// `best/`, and the damaged ones newer than it.
pub fn resume_point(run: &Path) -> ResumePoint {
    let best_dir = run_layout::best_dir(run);
    let best = is_checkpoint_folder(&best_dir).then(|| read_checkpoint(&best_dir));
    let best_step = match &best {
        Some(Ok(b)) => Some(b.state.step),
        _ => None,
    };
    let mut damaged = Vec::new();
    let mut chosen = None;
    for dir in list_checkpoints(run) {
        let step = step_of(&dir).unwrap_or(0);
        if best_step.is_some_and(|b| b > step) {
            break;
        }
        match read_checkpoint(&dir) {
            Ok(checkpoint) => {
                chosen = Some(checkpoint);
                break;
            }
            Err(e) => damaged.push((dir, e.to_string())),
        }
    }
    let mut best_score = None;
    match best {
        Some(Ok(b)) => {
            best_score = b.state.best;
            if chosen.is_none() {
                chosen = Some(b);
            }
        }
        Some(Err(e)) => damaged.push((best_dir, e.to_string())),
        None => {}
    }
    ResumePoint { checkpoint: chosen, damaged, best: best_score }
}

fn step_of(dir: &Path) -> Option<u64> {
    run_layout::checkpoint_step(dir.file_name()?.to_str()?)
}

/// Moves a damaged checkpoint folder into `RUN/damaged/` (never deleting it) so that nothing
/// reads or prunes it; returns where it went.
///
/// # Errors
/// [`TrainError::Io`].
pub fn move_aside(run: &Path, dir: &Path) -> Result<PathBuf, TrainError> {
    let aside = run.join(DAMAGED_DIR);
    fs::create_dir_all(&aside).map_err(io(&aside))?;
    let name = dir.file_name().map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy().into_owned());
    let mut target = aside.join(&name);
    let mut k = 2;
    while target.exists() {
        target = aside.join(format!("{name}-{k}"));
        k += 1;
    }
    fs::rename(dir, &target).map_err(io(dir))?;
    Ok(target)
}

/// Deletes older checkpoints so that `keep` remain counting `newest` (the one just written),
/// which is never deleted, nor is anything newer than it.
pub fn prune(run: &Path, keep: usize, newest: &Path) {
    let Some(newest_step) = step_of(newest) else { return };
    let older = list_checkpoints(run).into_iter().filter(|dir| step_of(dir).is_some_and(|s| s < newest_step));
    for dir in older.skip(keep.max(1) - 1) {
        // Only what training wrote: a file someone put in the folder stays (with the folder).
        let _ = caption_io::remove_own_entries(&dir, &is_checkpoint_entry_path);
        let _ = fs::remove_dir(&dir);
    }
}

/// Checks that a checkpoint fits a run: same architecture, vocabulary and dataset.
///
/// # Errors
/// [`TrainError::Checkpoint`] saying what differs.
pub fn check_compatible(
    checkpoint: &Checkpoint,
    config: &TrainConfig,
    vocabulary: &Vocabulary,
    dataset_hash: &str,
) -> Result<(), TrainError> {
    let problem = |problem: String| TrainError::Checkpoint { path: checkpoint.path.display().to_string(), problem };
    let saved = &checkpoint.state.config;
    if !saved.same_architecture(config) {
        return Err(problem(format!(
            "it is for another architecture ({}; this run: {})",
            saved.architecture(),
            config.architecture()
        )));
    }
    if checkpoint.vocabulary.words() != vocabulary.words() {
        return Err(problem(format!(
            "it is for another vocabulary ({} ids; the dataset's has {})",
            checkpoint.vocabulary.len(),
            vocabulary.len()
        )));
    }
    if checkpoint.state.dataset_hash != dataset_hash {
        return Err(problem("it was trained on another prepared dataset (content hash differs)".into()));
    }
    Ok(())
}
