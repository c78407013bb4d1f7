//! Caption sources, one module per layout.

pub mod coco;
pub mod flickr8k_token;
pub mod hub;
pub mod kaggle;
pub mod karpathy;
pub mod plain;

use std::path::Path;

use crate::{CaptionRecord, DataError};

/// A captions file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Kaggle Flickr8k `captions.txt`.
    Kaggle,
    /// Original `Flickr8k.token.txt` (+ official split files beside it).
    Flickr8kToken,
    /// Karpathy split JSON.
    Karpathy,
    /// COCO captions annotations JSON.
    Coco,
    /// One caption per line.
    Plain,
}

impl Format {
    /// Recognises a layout from the file's first bytes.
    pub fn detect(bytes: &[u8]) -> Format {
        let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &bytes[i..]);
        if kaggle::is_header(first_line) || kaggle::is_headerless_row(first_line) {
            Format::Kaggle
        } else if flickr8k_token::looks_like(first_line) {
            Format::Flickr8kToken
        } else if start.starts_with(b"{") {
            // Karpathy files list images with their sentences; COCO files list annotations.
            let head = &start[..start.len().min(1 << 20)];
            if head.windows(11).any(|w| w == b"\"sentences\"") { Format::Karpathy } else { Format::Coco }
        } else {
            Format::Plain
        }
    }
}

/// `records`, or [`DataError::Empty`] when a source yielded none.
fn non_empty(records: Vec<CaptionRecord>, path: &str) -> Result<Vec<CaptionRecord>, DataError> {
    if records.is_empty() { Err(DataError::Empty { path: path.to_string() }) } else { Ok(records) }
}

/// Reads a captions file whose layout is recognised from its content ([`Format::detect`]).
///
/// # Errors
/// [`DataError`] naming the file and line of the first problem.
pub fn read_captions_file(path: &Path) -> Result<Vec<CaptionRecord>, DataError> {
    let bytes = read_source_file(path)?;
    read_captions(path, &bytes, Format::detect(&bytes))
}

/// The bytes of a captions or split file: a regular file of at most
/// [`crate::MAX_CAPTIONS_FILE_BYTES`].
///
/// # Errors
/// [`DataError::Input`] naming the file.
pub fn read_source_file(path: &Path) -> Result<Vec<u8>, DataError> {
    crate::read_input_file(path, crate::MAX_CAPTIONS_FILE_BYTES)
        .map_err(|problem| DataError::Input { path: path.display().to_string(), problem })
}

/// Reads a captions file of a given layout; `bytes` are its content.
///
/// # Errors
/// [`DataError`] naming the file and line of the first problem.
pub fn read_captions(path: &Path, bytes: &[u8], format: Format) -> Result<Vec<CaptionRecord>, DataError> {
    let name = path.display().to_string();
    let text = || {
        std::str::from_utf8(bytes).map_err(|e| DataError::Malformed {
            path: name.clone(),
            line: 1,
            problem: format!("not UTF-8: {e}"),
        })
    };
    match format {
        Format::Kaggle => kaggle::parse(bytes, &name),
        Format::Flickr8kToken => flickr8k_token::with_official_splits(flickr8k_token::parse(bytes, &name)?, path),
        Format::Karpathy => karpathy::parse(text()?, &name),
        Format::Coco => coco::parse(text()?, &name),
        Format::Plain => plain::parse(bytes, &name),
    }
}
