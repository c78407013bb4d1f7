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
    /// Its name in a dataset's manifest (`kaggle`, `flickr8k-token`, `karpathy`, `coco`, `plain`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Kaggle => "kaggle",
            Format::Flickr8kToken => "flickr8k-token",
            Format::Karpathy => "karpathy",
            Format::Coco => "coco",
            Format::Plain => "plain",
        }
    }

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

/// The records of a captions file and the folder of its images, ready for [`crate::prepare`],
/// with `options` describing them: the file's absolute path as the source, its format (`format`,
/// or recognised from the content), the file as an input nothing may overwrite, and (when
/// `options.name` is empty) the images folder's parent folder's name, lowercased.
///
/// # Errors
/// [`DataError::Invalid`] when `images_dir` is not a folder; the captions file's errors.
pub fn files(
    captions: &Path,
    images_dir: &Path,
    format: Option<Format>,
    options: &mut crate::PrepareOptions,
) -> Result<(Vec<CaptionRecord>, crate::ImageSource), DataError> {
    if !images_dir.is_dir() {
        let what = if images_dir.exists() { "is a file, not a folder of images" } else { "no such folder" };
        return Err(DataError::Invalid(format!("--images-dir {}: {what}", images_dir.display())));
    }
    let bytes = read_source_file(captions)?;
    let format = format.unwrap_or_else(|| Format::detect(&bytes));
    let records = read_captions(captions, &bytes, format)?;
    if options.name.is_empty() {
        let absolute = std::path::absolute(images_dir).unwrap_or(images_dir.to_path_buf());
        let parent = absolute.parent().and_then(Path::file_name);
        options.name = parent.map_or_else(|| "dataset".into(), |n| n.to_string_lossy().to_lowercase());
    }
    options.source = std::path::absolute(captions).unwrap_or(captions.to_path_buf()).display().to_string();
    options.format = format.name().into();
    options.input_files = vec![captions.to_path_buf()];
    Ok((records, crate::ImageSource::Folder(images_dir.to_path_buf())))
}
