//! [`CaptionRecord`]: one caption of one image, as read from a source.

/// One caption of one image, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionRecord {
    /// The image's identifier as the source names it (a file name for Flickr8k).
    pub image: String,
    /// The caption text, exactly as in the source.
    pub caption: String,
    /// One-based line of the source where the record starts.
    pub line: u64,
}
