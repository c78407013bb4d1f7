//! Errors of caption-train.

use thiserror::Error;

/// Why training could not start or continue.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A setting is invalid or a config file cannot be read.
    #[error("config: {0}")]
    Config(String),
    /// Weights are missing, misshapen or unreadable.
    #[error("weights: {0}")]
    Weights(String),
    /// A checkpoint does not fit this run (another vocabulary, architecture or dataset) or is
    /// unreadable.
    #[error("checkpoint {path}: {problem}")]
    Checkpoint {
        /// The checkpoint folder.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The loss or a parameter stopped being a finite number: training stopped, and nothing was
    /// saved after the last good checkpoint.
    #[error(
        "training diverged at step {step}: {problem}; nothing was saved after {}: lower --lr or set \
         --clip-grad-norm, then start again (or --resume from that checkpoint)",
        last_checkpoint.as_deref().unwrap_or("the start (no checkpoint yet)")
    )]
    Diverged {
        /// The step whose loss or update was not finite.
        step: u64,
        /// Which value, and what it was.
        problem: String,
        /// The newest checkpoint saved before.
        last_checkpoint: Option<String>,
    },
    /// Another live process is training in the run folder.
    #[error("{path} is in use by another training process{}; wait for it to finish, or stop it", if holder.is_empty() { String::new() } else { format!(" (process {holder})") })]
    RunInUse {
        /// The run folder.
        path: String,
        /// The holder's process id, as it wrote it in the lock file.
        holder: String,
    },
    /// Resuming keeps the run's settings; these asked for others.
    #[error("resuming keeps the run's settings, and these differ from it: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    ResumeConflict(Vec<crate::SettingChange>),
    /// A model could not be loaded or run for captioning.
    #[error(transparent)]
    Infer(#[from] caption_infer::InferError),
    /// A file could not be written or read.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The dataset cannot be used.
    #[error(transparent)]
    Data(#[from] caption_data::DataError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A plot could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
    /// Scoring failed.
    #[error(transparent)]
    Metrics(#[from] caption_metrics::MetricsError),
}

/// `TrainError::Io` for `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.display().to_string(), source }
}

impl From<caption_io::PathError> for TrainError {
    fn from(error: caption_io::PathError) -> Self {
        TrainError::Io { path: error.path.display().to_string(), source: error.source }
    }
}
