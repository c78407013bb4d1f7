//! Caption sources, one module per layout.

pub mod kaggle;
pub mod plain;

use std::path::Path;

use crate::{CaptionRecord, DataError};

/// Reads a captions file whose layout is recognised from its first line: Kaggle Flickr8k
/// `captions.txt` (header `image,caption`) or plain text, one caption per line.
///
/// # Errors
/// [`DataError`] naming the file and line of the first problem.
pub fn read_captions_file(path: &Path) -> Result<Vec<CaptionRecord>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.display().to_string(), source })?;
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if kaggle::is_header(first_line) {
        kaggle::parse(&bytes, &path.display().to_string())
    } else {
        plain::parse(&bytes, &path.display().to_string())
    }
}
