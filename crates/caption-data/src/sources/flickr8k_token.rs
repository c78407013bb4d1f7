//! The original Flickr8k text release: `Flickr8k.token.txt` (`name.jpg#n<TAB>caption`) and the
//! official split files beside it (`Flickr_8k.trainImages.txt`, `Flickr_8k.devImages.txt`,
//! `Flickr_8k.testImages.txt`, one image name per line).

use std::collections::HashMap;
use std::path::Path;

use crate::{CaptionRecord, DataError, Split};

/// The official split files and the split each lists.
pub const SPLIT_FILES: [(&str, Split); 3] = [
    ("Flickr_8k.trainImages.txt", Split::Train),
    ("Flickr_8k.devImages.txt", Split::Validation),
    ("Flickr_8k.testImages.txt", Split::Test),
];

/// Whether `first_line` looks like a token-file line (`name#n<TAB>…`).
pub fn looks_like(first_line: &[u8]) -> bool {
    std::str::from_utf8(first_line)
        .ok()
        .and_then(|line| line.split_once('\t'))
        .and_then(|(key, _)| key.rsplit_once('#'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses the token file's bytes; `path` names it in errors. Records have no split.
///
/// # Errors
/// [`DataError::Malformed`] for a line without a tab, without `#n` or not UTF-8, or with an empty
/// caption; [`DataError::Empty`] for a file without captions.
pub fn parse(bytes: &[u8], path: &str) -> Result<Vec<CaptionRecord>, DataError> {
    let mut records = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index as u64 + 1;
        let malformed =
            |problem: &str| DataError::Malformed { path: path.to_string(), line: number, problem: problem.to_string() };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = std::str::from_utf8(line).map_err(|_| malformed("not UTF-8"))?;
        let (key, caption) = line.split_once('\t').ok_or_else(|| malformed("expected name.jpg#n<TAB>caption"))?;
        let (image, n) = key.rsplit_once('#').ok_or_else(|| malformed("the image name lacks its #n caption number"))?;
        if image.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("expected name.jpg#n<TAB>caption"));
        }
        if caption.trim().is_empty() {
            return Err(malformed("empty caption"));
        }
        records.push(CaptionRecord {
            image: image.to_string(),
            caption: caption.to_string(),
            line: number,
            split: None,
        });
    }
    super::non_empty(records, path)
}

/// Reads the token file and, when the official split files are in the same folder, gives each
/// record the split that lists its image. Images in no split file keep no split (Flickr8k has 92).
///
/// # Errors
/// As [`parse`], plus [`DataError::Input`] for unreadable files and [`DataError::Malformed`] for
/// an image listed in two split files.
pub fn read(path: &Path) -> Result<Vec<CaptionRecord>, DataError> {
    let bytes = super::read_source_file(path)?;
    with_official_splits(parse(&bytes, &path.display().to_string())?, path)
}

/// Gives each record the split of the official split file beside `token_file` that lists its
/// image (none when no file lists it).
///
/// # Errors
/// As [`read_split_files`].
pub fn with_official_splits(
    mut records: Vec<CaptionRecord>,
    token_file: &Path,
) -> Result<Vec<CaptionRecord>, DataError> {
    let folder = token_file.parent().unwrap_or(Path::new("."));
    let splits = read_split_files(folder)?;
    for record in &mut records {
        record.split = splits.get(&record.image).copied();
    }
    Ok(records)
}

/// The official split of every listed image; empty when the folder has no split files.
///
/// # Errors
/// [`DataError::Malformed`] when one image is listed twice.
pub fn read_split_files(folder: &Path) -> Result<HashMap<String, Split>, DataError> {
    let mut splits: HashMap<String, (Split, String, u64)> = HashMap::new();
    for (name, split) in SPLIT_FILES {
        let path = folder.join(name);
        let bytes = match super::read_source_file(&path) {
            Ok(bytes) => bytes,
            Err(DataError::Input { problem: crate::InputFileError::Missing, .. }) => continue,
            Err(e) => return Err(e),
        };
        let text = String::from_utf8(bytes).map_err(|e| DataError::Malformed {
            path: path.display().to_string(),
            line: 1,
            problem: format!("not UTF-8: {e}"),
        })?;
        for (index, line) in text.lines().enumerate() {
            let image = line.trim();
            if image.is_empty() {
                continue;
            }
            if let Some((other, file, line)) = splits.get(image) {
                return Err(DataError::Malformed {
                    path: path.display().to_string(),
                    line: index as u64 + 1,
                    problem: format!(
                        "{image} is already in the {other} split ({file}:{line}); an image is in one split only"
                    ),
                });
            }
            splits.insert(image.to_string(), (split, name.to_string(), index as u64 + 1));
        }
    }
    Ok(splits.into_iter().map(|(image, (split, _, _))| (image, split)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked() {
        let records = parse(b"1.jpg#0\tA dog .\r\n1.jpg#1\tA pup .\n", "t.txt").unwrap();
        assert_eq!((records[1].image.as_str(), records[1].caption.as_str(), records[1].line), ("1.jpg", "A pup .", 2));
        let error = |bytes: &[u8]| parse(bytes, "t.txt").unwrap_err().to_string();
        assert!(error(b"1.jpg#0 A dog\n").contains("t.txt:1: expected"));
        assert!(error(b"1.jpg#0\tok\n1.jpg\tA dog\n").contains("t.txt:2: the image name lacks"));
        assert!(error(b"1.jpg#x\tA dog\n").contains("t.txt:1:"));
        assert!(error(b"1.jpg#0\t \n").contains("empty caption"));
    }
}
