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
    /// A folder is not a prepared dataset (no manifest: never written, or its writing never finished).
    #[error("{path} is not a prepared dataset (no manifest.json); run `cargo xtask prepare-data`")]
    NotPrepared {
        /// The folder.
        path: String,
    },
    /// A prepared dataset's files do not match its manifest.
    #[error("prepared dataset {path} is damaged: {problem}")]
    Corrupt {
        /// The folder.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A parquet file could not be written or read, or lacks a column.
    #[error("parquet {path}: {message}")]
    Parquet {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An image is unusable and `--strict` was asked for.
    #[error("image {image}: {problem}")]
    Image {
        /// The image's identifier.
        image: String,
        /// Why it is unusable.
        #[source]
        problem: crate::ImageProblem,
    },
    /// Tokenization or vocabulary building failed.
    #[error(transparent)]
    Text(#[from] caption_text::TextError),
    /// A Hugging Face Hub download failed.
    #[error("Hugging Face Hub {repo}: {message}")]
    Hub {
        /// The repository.
        repo: String,
        /// What went wrong.
        message: String,
    },
    /// Settings that cannot work together.
    #[error("{0}")]
    Invalid(String),
}
