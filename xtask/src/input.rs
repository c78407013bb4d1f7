//! Reading what a command is given to read: a regular file of bounded size, or standard input
//! (`-`) up to the same bound; never a device or a FIFO named as a file (`/dev/zero` never ends,
//! a FIFO waits for a writer forever).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Longest line of image paths read from standard input (Linux's PATH_MAX).
pub const MAX_PATH_LINE_BYTES: usize = 4096;
/// Most image paths read from standard input.
pub const MAX_STDIN_PATHS: usize = 10_000_000;

/// Longest line of a text input read whole (a JSON Lines record with its references).
pub const MAX_TEXT_LINE_BYTES: usize = 16 << 20;

/// The bytes of `path` (a regular file of at most `limit` bytes), or of standard input when
/// `path` is `-` (at most `limit` bytes, no line longer than [`MAX_TEXT_LINE_BYTES`], so an
/// endless input without line ends stops early); with the name messages give it.
///
/// # Errors
/// A message naming the file: missing, not a regular file, larger than `limit`, unreadable.
pub fn read_file_or_stdin(path: &Path, limit: u64) -> Result<(Vec<u8>, String)> {
    if path.as_os_str() == "-" {
        let bytes = read_text_bounded(std::io::stdin().lock(), limit, MAX_TEXT_LINE_BYTES).context("standard input")?;
        return Ok((bytes, "<stdin>".into()));
    }
    let bytes =
        caption_data::read_input_file(path, limit).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes, path.display().to_string()))
}

/// All of `reader`, refused past `limit` bytes or at a line longer than `max_line` bytes.
///
/// # Errors
/// Which bound was passed (the line by number), or a read error.
pub fn read_text_bounded(mut reader: impl Read, limit: u64, max_line: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let (mut line_start, mut lines) = (0usize, 1usize);
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read"),
        };
        let offset = bytes.len();
        bytes.extend_from_slice(&chunk[..read]);
        for (i, _) in chunk[..read].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            if offset + i - line_start > max_line {
                bail!("line {lines}: longer than the {max_line} bytes accepted");
            }
            line_start = offset + i + 1;
            lines += 1;
        }
        if bytes.len() - line_start > max_line {
            bail!("line {lines}: longer than the {max_line} bytes accepted");
        }
        if bytes.len() as u64 > limit {
            bail!("more than the {limit} bytes accepted");
        }
    }
    Ok(bytes)
}

/// Lines of a reader, each at most `max` bytes (its `\n` or `\r\n` removed): an input without
/// line ends (`/dev/zero`) stops at the first line's bound instead of filling memory.
pub struct BoundedLines<R> {
    reader: std::io::Take<R>,
    max: usize,
    line: Vec<u8>,
    number: usize,
}

impl<R: BufRead> BoundedLines<R> {
    /// Lines of `reader` of at most `max` bytes.
    pub fn new(reader: R, max: usize) -> Self {
        Self { reader: reader.take(0), max, line: Vec::new(), number: 0 }
    }

    /// The next line and its number (from 1), or `None` at the end.
    ///
    /// # Errors
    /// A line longer than the bound (named by number, not echoed), or a read error.
    pub fn next_line(&mut self) -> Result<Option<(usize, &[u8])>> {
        self.line.clear();
        // Two bytes beyond the longest line accepted leave room for its `\r\n`.
        self.reader.set_limit(self.max as u64 + 2);
        let read = self.reader.read_until(b'\n', &mut self.line).context("cannot read")?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let ended = self.line.last() == Some(&b'\n');
        let mut text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.len() > self.max || (!ended && read > self.max + 1) {
            bail!("line {}: longer than the {} bytes accepted", self.number, self.max);
        }
        Ok(Some((self.number, text)))
    }
}

/// Image paths from standard input, one per line (`\n` or `\r\n`; blank lines ignored). A line
/// is a path as bytes, UTF-8 or not. Lines longer than [`MAX_PATH_LINE_BYTES`] are refused by
/// number, not echoed (standard input was likely not a list of paths).
///
/// # Errors
/// A message naming the line that is too long, too many lines, or a read error.
pub fn read_path_lines(reader: impl BufRead) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    let mut lines = BoundedLines::new(reader, MAX_PATH_LINE_BYTES);
    while let Some((_, text)) = lines.next_line().context("standard input (image paths, one per line)")? {
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if paths.len() == MAX_STDIN_PATHS {
            bail!("standard input: more than {MAX_STDIN_PATHS} image paths; caption them in parts");
        }
        paths.push(path_from_bytes(text));
    }
    Ok(paths)
}

/// Opens `path` for reading when it is a regular file (never a device or FIFO, which could
/// block or never end).
///
/// # Errors
/// A message naming the file.
pub fn open_regular_file(path: &Path) -> Result<std::fs::File> {
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !metadata.is_file() {
        bail!("cannot read {}: not a regular file (a folder, device or FIFO)", path.display());
    }
    std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lines_are_bytes_bounded_in_length() {
        let paths = read_path_lines(&b"a.jpg\r\n\n  \nb\xff.png\nlast.jpg"[..]).unwrap();
        assert_eq!(paths.len(), 3);
        assert_eq!(paths[0], PathBuf::from("a.jpg"));
        assert_eq!(paths[2], PathBuf::from("last.jpg"));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(paths[1].as_os_str().as_bytes(), b"b\xff.png");
        }
        let fits = vec![b'x'; MAX_PATH_LINE_BYTES];
        assert_eq!(read_path_lines(&[fits.as_slice(), b"\r\n"].concat()[..]).unwrap().len(), 1);
        assert_eq!(read_path_lines(fits.as_slice()).unwrap().len(), 1);
        let long = [b"ok.jpg\n".as_slice(), &vec![b'y'; MAX_PATH_LINE_BYTES + 1]].concat();
        let error = format!("{:#}", read_path_lines(long.as_slice()).unwrap_err());
        assert!(error.contains("line 2") && !error.contains("yyyy"), "{error}");
        // An endless input without line ends (/dev/zero) stops at the first line's bound.
        let error = format!("{:#}", read_path_lines(std::io::BufReader::new(std::io::repeat(0))).unwrap_err());
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn text_is_read_within_its_bounds() {
        assert_eq!(read_text_bounded(&b"ab\ncd\n"[..], 6, 2).unwrap(), b"ab\ncd\n");
        assert!(read_text_bounded(&b"ab\ncd\n"[..], 5, 2).unwrap_err().to_string().contains("more than the 5 bytes"));
        let error = read_text_bounded(&b"ab\ncde\n"[..], 100, 2).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        let error = read_text_bounded(std::io::repeat(0), u64::MAX, 1000).unwrap_err().to_string();
        assert!(error.contains("line 1"), "{error}");
    }
}
