//! The errors a metric can report.

use thiserror::Error;

/// Why a metric could not be computed.
///
/// Every variant says which input was wrong, so a caller can point the user at it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// There is nothing to score.
    #[error("the corpus is empty: at least one hypothesis is needed")]
    EmptyCorpus,
    /// The hypothesis and reference lists differ in length.
    #[error("{hypotheses} hypotheses but {references} reference sets: there must be one set per hypothesis")]
    LengthMismatch {
        /// Number of hypotheses given.
        hypotheses: usize,
        /// Number of reference sets given.
        references: usize,
    },
    /// A hypothesis has no reference to be scored against.
    #[error("hypothesis #{index} has no references")]
    NoReferences {
        /// Zero-based position of the hypothesis.
        index: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The reproduced library itself fails on this input (nltk's smoothing method 6 asserts that the
    /// trigram precision is non-zero, for example); the message says what the library raises.
    #[error("{library} cannot score this input: {reason}")]
    Undefined {
        /// The library whose behaviour is reproduced.
        library: &'static str,
        /// What that library raises.
        reason: String,
    },
}
