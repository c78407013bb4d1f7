//! [`CaptionRecord`]: one caption of one image, as read from a source, and its [`Split`].

use std::fmt;
use std::str::FromStr;

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    /// Training data.
    Train,
    /// Validation (Flickr8k's "dev", Karpathy's "val").
    Validation,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The split's name: `train`, `validation`, `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = String;

    /// Accepts the names datasets use: `train`, `validation`/`val`/`dev`, `test`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "validation" | "val" | "dev" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            other => Err(format!("unknown split {other:?}: expected train, validation (val, dev) or test")),
        }
    }
}

/// One caption of one image, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionRecord {
    /// The image's identifier as the source names it (a file name for Flickr8k and COCO).
    pub image: String,
    /// The caption text, exactly as in the source.
    pub caption: String,
    /// One-based line of the source where the record starts (for JSON sources: the record's
    /// position in its list).
    pub line: u64,
    /// The split the source assigns, if it has official splits.
    pub split: Option<Split>,
}
