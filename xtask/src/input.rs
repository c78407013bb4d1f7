//! `-` as a file name: standard input, read within the same bounds as a file
//! (`caption_data::read_bounded`).

use std::path::Path;

use anyhow::{Context, Result};

/// Longest line of a text input read whole (a JSON Lines record with its references).
const MAX_TEXT_LINE_BYTES: usize = 16 << 20;

/// The bytes of `path` (a regular file of at most `limit` bytes), or of standard input when
/// `path` is `-` (at most `limit` bytes, no line longer than 16 MiB); with the name messages
/// give it.
///
/// # Errors
/// A message naming the file: missing, not a regular file, larger than `limit`, unreadable.
pub fn read_file_or_stdin(path: &Path, limit: u64) -> Result<(Vec<u8>, String)> {
    if path.as_os_str() == "-" {
        let bytes = caption_data::read_bounded(std::io::stdin().lock(), limit, MAX_TEXT_LINE_BYTES)
            .context("standard input")?;
        return Ok((bytes, "<stdin>".into()));
    }
    let bytes =
        caption_data::read_input_file(path, limit).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes, path.display().to_string()))
}
