//! Errors of caption-data.

use thiserror::Error;

/// Why a caption source could not be read.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file or folder could not be read or written (the cause says which and why).
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input file is missing, not a regular file, or too large.
    #[error("{path}: {problem}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        problem: crate::InputFileError,
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
    #[error(
        "{path} {}; run `cargo xtask prepare-data`",
        if std::path::Path::new(path).exists() {
            "is not a prepared dataset (no manifest.json)"
        } else {
            "does not exist (no prepared dataset there)"
        }
    )]
    NotPrepared {
        /// The folder.
        path: String,
    },
    /// A prepared dataset was written with another layout version than this program's
    /// ([`crate::LAYOUT_VERSION`]).
    #[error(
        "{path} was prepared with layout version {found}, this program reads version {expected}{}",
        if found < expected {
            " (older datasets store <SOS>/<EOS> in the token ids, which trained every caption with them twice): \
             prepare it again with `cargo xtask prepare-data`"
        } else {
            ": it was written by a newer caption; update this one"
        }
    )]
    OtherLayout {
        /// The folder.
        path: String,
        /// The manifest's layout version.
        found: u32,
        /// The version this program reads.
        expected: u32,
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
    /// An output folder that may not be written: it holds what the command does not own, or it
    /// is one of the command's inputs.
    #[error("{path} {problem}")]
    Output {
        /// The folder.
        path: String,
        /// Why it is refused.
        problem: String,
    },
    /// Settings that cannot work together.
    #[error("{0}")]
    Invalid(String),
}

impl From<caption_io::PathError> for DataError {
    fn from(error: caption_io::PathError) -> Self {
        DataError::Io { path: error.path.display().to_string(), source: error.source }
    }
}
