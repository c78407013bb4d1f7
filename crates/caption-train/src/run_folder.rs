//! The run folder: what a run writes there, and the lock that keeps one process at a time in it.
//!
//! The layout is [`caption_infer::run_layout`]'s.
//!
//!
//! Training refuses a folder that is neither empty nor a run (a run: its `config.toml` reads as a
//! [`TrainConfig`]), and a run another live process holds. The lock is an advisory file lock
//! (`flock`), released by the system when its process ends however it ends, so a killed run's
//! lock is simply taken over.

use caption_infer::frozen_weights::FrozenWeights;
use caption_infer::run_layout::{self, TOKENIZER_FILE, TRAINER_FILE, is_safetensors_temporary};
use std::fs::{self, File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use caption_data::claim_output_folder;
use caption_io::remove_stale_leftovers;

use std::collections::HashMap;

use candle_core::Tensor;
use caption_text::Vocabulary;

use crate::checkpoint::{self, TrainerState};
use crate::error::io;
use crate::{TrainConfig, TrainError};

pub use caption_infer::run_layout::{
    BEST_DIR, BLEU_PLOT, CHECKPOINTS_DIR, CONFIG_FILE, DAMAGED_DIR, EVAL_FILES, LOCK_FILE, LOSS_PLOT, METRICS_FILE,
    is_checkpoint_entry_path, is_run_entry,
};

/// A run folder held by this process: nobody else trains in it until this is dropped.
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
    _lock: File,
}

impl RunFolder {
    /// Takes `path` for training: creates it when absent, refuses it when it holds anything and is
    /// not a run, locks it (refused while another live process holds it), and removes what
    /// killed writers left in it.
    ///
    /// # Errors
    /// [`TrainError::RunInUse`] when another process holds it; [`TrainError::Data`] with
    /// [`caption_data::DataError::Output`] when it is not a run; [`TrainError::Io`].
    pub fn lock(path: &Path) -> Result<Self, TrainError> {
        if !is_run(path) {
            // Before its config.toml a run holds at most its lock (a process id) and writers'
            // leftovers: a file of a run's name in another folder is somebody else's.
            let lock_path = path.join(LOCK_FILE);
            let lock_is_ours = fs::read_to_string(&lock_path).is_ok_and(|id| id.bytes().all(|b| b.is_ascii_digit()));
            claim_output_folder(path, "training run", &|relative, is_dir| {
                let name = relative.to_str().unwrap_or_default();
                (relative == Path::new(LOCK_FILE) && lock_is_ours)
                    || (relative.iter().nth(1).is_none() && caption_io::leftover_owner(name, is_dir).is_some())
            })?;
        }
        fs::create_dir_all(path).map_err(io(path))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                return Err(TrainError::RunInUse {
                    path: path.display().to_string(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let id = std::process::id().to_string();
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(id.as_bytes()))
            .map_err(io(&lock_path))?;
        remove_stale_leftovers(path, |_| true);
        remove_stale_leftovers(&path.join(CHECKPOINTS_DIR), |_| true);
        // The lock is held: a safetensors writer's temporary file here is a killed writer's.
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            if is_safetensors_temporary(&entry.file_name().to_string_lossy()) && entry.path().is_file() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Self { path: path.to_path_buf(), _lock: lock })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// config.toml.
    pub fn config_file(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    /// metrics.jsonl.
    pub fn metrics_file(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }

    /// The frozen mode's feature cache for the settings and dataset `key` stands for.
    pub fn feature_cache(&self, key: &str) -> PathBuf {
        run_layout::feature_cache(&self.path, key)
    }

    /// `best/`.
    pub fn best_dir(&self) -> PathBuf {
        run_layout::best_dir(&self.path)
    }

    /// Whether the run holds a checkpoint (a `step-N` folder or `best/`).
    pub fn holds_checkpoints(&self) -> bool {
        self.newest_checkpoint().is_some() || self.best_checkpoint().is_some()
    }

    /// The newest `checkpoints/step-N` folder.
    pub fn newest_checkpoint(&self) -> Option<PathBuf> {
        checkpoint::list_checkpoints(&self.path).into_iter().next()
    }

    /// `best/`, when it holds a checkpoint.
    pub fn best_checkpoint(&self) -> Option<PathBuf> {
        let best = self.best_dir();
        checkpoint::is_checkpoint_folder(&best).then_some(best)
    }

    /// Writes the run's settings and vocabulary (config.toml, tokenizer.json), atomically.
    ///
    /// # Errors
    /// [`TrainError::Io`].
    pub fn write_settings(&self, config: &TrainConfig, vocabulary: &Vocabulary) -> Result<(), TrainError> {
        write_atomically(&self.config_file(), config.to_toml().as_bytes())?;
        write_atomically(&self.path.join(TOKENIZER_FILE), vocabulary.to_tokenizer_json().as_bytes())
    }

    /// Writes `checkpoints/step-N` for `state` (atomically), then keeps the newest `keep_last`
    /// of them (never the one just written away). Returns its folder.
    ///
    /// # Errors
    /// [`TrainError::Io`] or a candle error.
    pub fn save_checkpoint(
        &self,
        state: &TrainerState,
        model: &HashMap<String, Tensor>,
        frozen: Option<&FrozenWeights>,
        optimizer: &HashMap<String, Tensor>,
        vocabulary: &Vocabulary,
        keep_last: usize,
    ) -> Result<PathBuf, TrainError> {
        let dir = run_layout::checkpoint_dir(&self.path, state.step);
        checkpoint::write_checkpoint(&dir, state, model, frozen, optimizer, vocabulary)?;
        checkpoint::prune(&self.path, keep_last, &dir);
        Ok(dir)
    }

    /// Writes frozen mode's weights file (`bytes`, named by `frozen`) at the run's top level,
    /// atomically, unless a file of that name and size is already there (the name carries the
    /// bytes' CRC-32, and readers check it).
    ///
    /// # Errors
    /// [`TrainError::Io`].
    pub fn write_frozen_weights(&self, frozen: &FrozenWeights, bytes: &[u8]) -> Result<PathBuf, TrainError> {
        let path = self.path.join(&frozen.file);
        if fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64) {
            return Ok(path);
        }
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    /// Copies the checkpoint `dir` to `best/` (atomically); returns `best/`.
    ///
    /// # Errors
    /// [`TrainError::Io`].
    pub fn copy_to_best(&self, dir: &Path) -> Result<PathBuf, TrainError> {
        let best = self.best_dir();
        checkpoint::copy_checkpoint(dir, &best)?;
        Ok(best)
    }

    /// Deletes everything the run wrote (checkpoints, best, metrics, plots, caches, evaluations),
    /// to start it over; files it did not write stay where they are. The lock stays held, and
    /// config.toml stays (the folder remains a run; training writes it anew).
    ///
    /// # Errors
    /// [`TrainError::Data`] when something cannot be removed.
    pub fn clear(&self) -> Result<(), TrainError> {
        let kept = [Path::new(LOCK_FILE), Path::new(CONFIG_FILE)];
        let own = |relative: &Path, is_dir: bool| !kept.contains(&relative) && is_run_entry(relative, is_dir);
        Ok(caption_io::remove_own_entries(&self.path, &own)?)
    }
}

/// [`caption_io::write_bytes_atomically`], its error naming `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    caption_io::write_bytes_atomically(path, bytes).map_err(io(path))
}

/// Whether `path` holds a run: its `config.toml` reads as a [`TrainConfig`], or (config.toml lost)
/// one of its checkpoints' trainer.json reads as a trainer state.
pub fn is_run(path: &Path) -> bool {
    let reads = |dir: PathBuf| {
        fs::read_to_string(dir.join(TRAINER_FILE))
            .is_ok_and(|text| serde_json::from_str::<crate::checkpoint::TrainerState>(&text).is_ok())
    };
    fs::read_to_string(path.join(CONFIG_FILE)).is_ok_and(|text| TrainConfig::from_toml(&text).is_ok())
        || crate::checkpoint::list_checkpoints(path).into_iter().chain([path.join(BEST_DIR)]).any(reads)
}

/// The settings a training command starts from before its own options: `file` when given;
/// else, resuming, the run's own (its config.toml, or its newest checkpoint's when that is lost:
/// [`saved_settings`]), so that only the options given differ; else the defaults. With whether
/// they came from a file (a random encoder's `transform_input` is then the file's).
///
/// # Errors
/// A config file that cannot be read or does not hold settings.
pub fn starting_settings(run: &Path, file: Option<&Path>, resume: bool) -> Result<(TrainConfig, bool), TrainError> {
    let saved = match file {
        Some(path) => Some(TrainConfig::from_toml_file(path)?),
        None if resume && run.join(CONFIG_FILE).is_file() => Some(TrainConfig::from_toml_file(&run.join(CONFIG_FILE))?),
        None if resume => saved_settings(run),
        None => None,
    };
    let from_file = saved.is_some();
    Ok((saved.unwrap_or_default(), from_file))
}

/// The settings the trained model at `path` was trained with: a checkpoint folder's (its
/// trainer.json), or a run folder's ([`saved_settings`]); `None` when neither reads.
pub fn settings_of_model(path: &Path) -> Option<TrainConfig> {
    if let Ok(text) = fs::read_to_string(path.join(TRAINER_FILE))
        && let Ok(state) = serde_json::from_str::<TrainerState>(&text)
    {
        return Some(state.config);
    }
    saved_settings(path)
}

/// The settings a run was trained with: its config.toml, or (config.toml lost) those its newest
/// checkpoint that reads back recorded (`best/` included); `None` when neither reads.
pub fn saved_settings(path: &Path) -> Option<TrainConfig> {
    if let Ok(text) = fs::read_to_string(path.join(CONFIG_FILE))
        && let Ok(config) = TrainConfig::from_toml(&text)
    {
        return Some(config);
    }
    let mut checkpoints: Vec<(u64, TrainConfig)> = crate::checkpoint::list_checkpoints(path)
        .into_iter()
        .chain([path.join(BEST_DIR)])
        .filter_map(|dir| {
            let text = fs::read_to_string(dir.join(TRAINER_FILE)).ok()?;
            let state: TrainerState = serde_json::from_str(&text).ok()?;
            Some((state.step, state.config))
        })
        .collect();
    checkpoints.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    checkpoints.into_iter().next().map(|(_, config)| config)
}
