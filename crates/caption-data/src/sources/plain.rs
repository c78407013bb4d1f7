//! Plain text: one caption per line (LF or CRLF), blank lines ignored. The image of each caption
//! is unknown; records name it by line number (`line-17`).

use crate::{CaptionRecord, DataError};

/// Parses the file's bytes; `path` names it in errors.
///
/// # Errors
/// [`DataError::Malformed`] for a line that is not UTF-8; [`DataError::Empty`] when every line is
/// blank.
pub fn parse(bytes: &[u8], path: &str) -> Result<Vec<CaptionRecord>, DataError> {
    let mut records = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|e| DataError::Malformed {
            path: path.to_string(),
            line: number,
            problem: format!("not UTF-8: {e}"),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        records.push(CaptionRecord {
            image: format!("line-{number}"),
            caption: text.to_string(),
            line: number,
            split: None,
        });
    }
    super::non_empty(records, path)
}
