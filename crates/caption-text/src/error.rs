//! Errors of caption-text.

use thiserror::Error;

/// What can go wrong loading rules, building or loading a vocabulary.
#[derive(Debug, Error)]
pub enum TextError {
    /// A rules file is not valid JSON or lacks a field.
    #[error("invalid tokenizer rules: {0}")]
    Rules(String),
    /// A rule's regular expression does not compile.
    #[error("the {name} pattern of the tokenizer rules does not compile")]
    Pattern {
        /// Which pattern: prefix, suffix, infix or url.
        name: &'static str,
        /// The compiler's error.
        #[source]
        source: Box<fancy_regex::Error>,
    },
    /// A special case whose pieces do not spell it.
    #[error("special case {string:?}: its pieces {pieces:?} do not concatenate to it")]
    SpecialCase {
        /// The special-cased string.
        string: String,
        /// Its pieces.
        pieces: Vec<String>,
    },
    /// A tokenizer.json that this crate cannot read as a caption vocabulary.
    #[error("{path}: {problem}")]
    TokenizerJson {
        /// The file, or the name given to a document read from memory.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A vocabulary setting out of range.
    #[error("invalid vocabulary: {0}")]
    Vocabulary(String),
    /// Reading or writing a file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
