//! Errors of caption-data.

use thiserror::Error;

/// Why a caption source could not be read.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line or record is malformed.
    #[error("{path}:{line}: {problem}")]
    Malformed {
        /// The file.
        path: String,
        /// One-based line number.
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// The file holds no caption.
    #[error("{path}: no captions")]
    Empty {
        /// The file.
        path: String,
    },
}
