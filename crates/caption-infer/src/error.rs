//! Errors of caption-infer.

use thiserror::Error;

/// Why a model could not be loaded or run.
#[derive(Debug, Error)]
pub enum InferError {
    /// A checkpoint or run folder is incomplete, unreadable or inconsistent.
    #[error("checkpoint {path}: {problem}")]
    Checkpoint {
        /// The checkpoint folder.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Weights are missing, misshapen or do not fit the vocabulary.
    #[error("weights: {0}")]
    Weights(String),
    /// A dataset image could not be read.
    #[error(transparent)]
    Data(#[from] caption_data::DataError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The model cannot be evaluated on this split (no images, another vocabulary).
    #[error("{0}")]
    Evaluation(String),
    /// A metric could not be computed.
    #[error(transparent)]
    Metrics(#[from] caption_metrics::MetricsError),
    /// A file could not be written.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
