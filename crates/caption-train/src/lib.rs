//! Training the CNN-to-RNN captioner on a prepared dataset, with checkpoints that survive crashes
//! and resume bit for bit.
//!
//! - [`TrainConfig`]: every setting (TOML, saved with the run); modes [`Mode::Frozen`] (encoder
//!   features cached once, the default), [`Mode::Original`] (the original's setup) and
//!   [`Mode::Finetune`]; the decoder ([`DecoderKind::Lstm`], the original's, or
//!   [`DecoderKind::Attention`], Show, Attend and Tell, with [`AttentionSettings`] and its grids
//!   cached in a memory-mapped file, [`spatial_cache`]);
//! - [`train`]: seeded shuffles and dropout masks, the PAD-masked loss, [`Adam`], validation loss
//!   and BLEU-1..4 after each epoch, the best checkpoint kept, early stopping, metrics.jsonl and
//!   its PNG [`plots`] (loss.png, bleu.png);
//! - [`checkpoint`]: folders with model.safetensors (the original's names, the vocabulary bound
//!   in its metadata), optimizer state, trainer state and tokenizer.json, written atomically;
//!   resume continues from the newest state that reads back (`best/` included) and moves damaged
//!   ones aside;
//! - [`run_folder`]: the run folder's layout and its lock: one training process at a time, and
//!   never a folder that is not a run;
//! - [`outputs`]: the one rule for every single file a command writes (a report, attention maps,
//!   a tokenizer.json, features): never an input, a file of another kind, or anything a dataset,
//!   checkpoint, evaluation, export or run owns, checked before any work;
//! - `SettingFlags` (feature `cli`): every setting as a clap flag, applied over the settings a
//!   run starts from, and the flag that sets each key.
//!
//! A run stops with [`TrainError::Diverged`] the moment its loss is not a finite number, and
//! never writes a checkpoint holding a parameter that is not; frozen mode's feature caches carry
//! checksums and are computed again, saying why, when their bytes changed.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use caption_train::{EncoderWeights, TrainConfig, TrainOptions, train};
//!
//! let dataset = caption_data::PreparedDataset::open("datasets/shapes".as_ref())?;
//! let config = TrainConfig { epochs: 5, encoder: EncoderWeights::Random, image_size: 107, ..TrainConfig::default() };
//! let stop = AtomicBool::new(false);
//! let summary = train(TrainOptions {
//!     config,
//!     dataset: &dataset,
//!     run_dir: "runs/shapes".into(),
//!     resume: false,
//!     device: candle_core::Device::Cpu,
//!     progress: &caption_data::NoProgress,
//!     stop: &stop,
//!     log: &|line| println!("{line}"),
//! })?;
//! println!("best: {:?}", summary.best);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adam;
pub mod checkpoint;
mod config;
mod denormals;
mod error;
pub mod features;

mod model;
pub mod outputs;
pub mod plots;
pub mod run_folder;
pub mod scst;
#[cfg(feature = "cli")]
mod settings_flags;
pub mod spatial_cache;
mod step;
mod trainer;
pub mod validation;

pub use adam::{Adam, AdamConfig, Gradients};
pub use caption_model::DecoderKind;
pub use caption_model::loss::masked_cross_entropy;
pub use config::{
    AttentionSettings, Baseline, EncoderWeights, Mode, Objective, OptimizerKind, Schedule, ScstSettings, SettingChange,
    TrainConfig, parse_setting,
};
pub use denormals::flush_denormals_to_zero;
pub use error::TrainError;
pub use model::{DECODER_PREFIX, FC_PREFIX, INCEPTION_PREFIX, TrainModel};
pub use run_folder::{CONFIG_FILE, METRICS_FILE};
#[cfg(feature = "cli")]
pub use settings_flags::SettingFlags;
pub use step::{gradients_step, optimizer_step};
pub use trainer::{RunSummary, TrainOptions, train};
pub use validation::{Evaluator, Validation};
