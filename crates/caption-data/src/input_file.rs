//! Reading a user's input: a regular file of bounded size, never a device, FIFO or socket
//! (`/dev/zero` never ends, a FIFO blocks until someone writes to it); a stream (standard input)
//! within a bound on its size and on each line's length, so an endless input stops early.

use std::io::{BufRead, Read};
use std::path::Path;

/// Largest captions or annotations file read (COCO's largest is about 90 MB).
pub const MAX_CAPTIONS_FILE_BYTES: u64 = 2 << 30;
/// Largest image file read (a 20,000-pixel-wide JPEG is well below this).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// Why an input file was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputFileError {
    /// Nothing at that path.
    #[error("no such file")]
    Missing,
    /// Something other than a regular file (a folder, a device, a FIFO, a socket).
    #[error("not a regular file ({0})")]
    NotAFile(&'static str),
    /// Larger than the limit.
    #[error("{bytes} bytes, more than the {limit} accepted")]
    TooLarge {
        /// The file's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A line longer than the limit (named by number; its text is not repeated).
    #[error("line {line}: longer than the {limit} bytes accepted")]
    LineTooLong {
        /// The line's number, from 1.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// Another I/O error, as text.
    #[error("{0}")]
    Io(String),
}

/// Opens `path` for reading when it is a regular file (symbolic links followed), checked before
/// it is opened so that a FIFO never blocks.
///
/// # Errors
/// [`InputFileError`].
pub fn open_input_file(path: &Path) -> Result<std::fs::File, InputFileError> {
    Ok(open_regular(path)?.0)
}

/// `path` opened after its metadata says it is a regular file, with that metadata.
fn open_regular(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), InputFileError> {
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InputFileError::Missing,
        _ => InputFileError::Io(e.to_string()),
    })?;
    if !metadata.is_file() {
        return Err(InputFileError::NotAFile(kind(&metadata)));
    }
    let file = std::fs::File::open(path).map_err(|e| InputFileError::Io(e.to_string()))?;
    Ok((file, metadata))
}

/// All of `reader` (a stream: standard input), refused past `limit` bytes or at a line longer
/// than `max_line` bytes.
///
/// # Errors
/// [`InputFileError::TooLarge`], [`InputFileError::LineTooLong`], or a read error.
pub fn read_bounded(mut reader: impl Read, limit: u64, max_line: usize) -> Result<Vec<u8>, InputFileError> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let (mut line_start, mut line) = (0usize, 1usize);
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputFileError::Io(e.to_string())),
        };
        let offset = bytes.len();
        bytes.extend_from_slice(&chunk[..read]);
        for (i, _) in chunk[..read].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            if offset + i - line_start > max_line {
                return Err(InputFileError::LineTooLong { line, limit: max_line });
            }
            line_start = offset + i + 1;
            line += 1;
        }
        if bytes.len() - line_start > max_line {
            return Err(InputFileError::LineTooLong { line, limit: max_line });
        }
        if bytes.len() as u64 > limit {
            return Err(InputFileError::TooLarge { bytes: bytes.len() as u64, limit });
        }
    }
    Ok(bytes)
}

/// The lines of a reader one at a time, each at most `max` bytes (its `\n` or `\r\n`
/// removed): an input without line ends stops at the first line's bound instead of filling
/// memory.
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
    /// [`InputFileError::LineTooLong`], or a read error.
    pub fn next_line(&mut self) -> Result<Option<(usize, &[u8])>, InputFileError> {
        self.line.clear();
        // Two bytes beyond the longest line accepted leave room for its `\r\n`.
        self.reader.set_limit(self.max as u64 + 2);
        let read = self.reader.read_until(b'\n', &mut self.line).map_err(|e| InputFileError::Io(e.to_string()))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let ended = self.line.last() == Some(&b'\n');
        let mut text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.len() > self.max || (!ended && read > self.max + 1) {
            return Err(InputFileError::LineTooLong { line: self.number, limit: self.max });
        }
        Ok(Some((self.number, text)))
    }
}

/// Reads the whole of `path` when it is a regular file (symbolic links followed) of at most
/// `limit` bytes. The kind of file is checked before it is opened, so a FIFO never blocks.
///
/// # Errors
/// [`InputFileError`].
pub fn read_input_file(path: &Path, limit: u64) -> Result<Vec<u8>, InputFileError> {
    let (file, metadata) = open_regular(path)?;
    if metadata.len() > limit {
        return Err(InputFileError::TooLarge { bytes: metadata.len(), limit });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // A file growing while it is read still stops at the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| InputFileError::Io(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(InputFileError::TooLarge { bytes: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

fn kind(metadata: &std::fs::Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_input_file(&file, 5).unwrap(), b"12345");
        assert_eq!(read_input_file(&file, 4), Err(InputFileError::TooLarge { bytes: 5, limit: 4 }));
        assert_eq!(read_input_file(&dir.path().join("none"), 5), Err(InputFileError::Missing));
        assert_eq!(read_input_file(dir.path(), 5), Err(InputFileError::NotAFile("a folder")));
        #[cfg(unix)]
        {
            assert_eq!(read_input_file(Path::new("/dev/zero"), 5), Err(InputFileError::NotAFile("a device")));
            let fifo = dir.path().join("fifo");
            let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
            assert_eq!(read_input_file(&fifo, 5), Err(InputFileError::NotAFile("a FIFO")));
            assert!(matches!(open_input_file(&fifo), Err(InputFileError::NotAFile("a FIFO"))));
        }
    }

    #[test]
    fn streams_are_read_within_their_bounds() {
        assert_eq!(read_bounded(&b"ab\ncd\n"[..], 6, 2).unwrap(), b"ab\ncd\n");
        assert_eq!(read_bounded(&b"ab\ncd\n"[..], 5, 2), Err(InputFileError::TooLarge { bytes: 6, limit: 5 }));
        assert_eq!(read_bounded(&b"ab\ncde\n"[..], 100, 2), Err(InputFileError::LineTooLong { line: 2, limit: 2 }));
        assert_eq!(
            read_bounded(std::io::repeat(0), u64::MAX, 1000),
            Err(InputFileError::LineTooLong { line: 1, limit: 1000 })
        );
        let mut lines = BoundedLines::new(&b"a\r\n\nbcd\nxy"[..], 3);
        assert_eq!(lines.next_line().unwrap(), Some((1, &b"a"[..])));
        assert_eq!(lines.next_line().unwrap(), Some((2, &b""[..])));
        assert_eq!(lines.next_line().unwrap(), Some((3, &b"bcd"[..])));
        assert_eq!(lines.next_line().unwrap(), Some((4, &b"xy"[..])));
        assert_eq!(lines.next_line().unwrap(), None);
        let mut long = BoundedLines::new(&b"abcd\n"[..], 3);
        assert_eq!(long.next_line(), Err(InputFileError::LineTooLong { line: 1, limit: 3 }));
        let mut endless = BoundedLines::new(std::io::BufReader::new(std::io::repeat(b'x')), 4096);
        assert_eq!(endless.next_line(), Err(InputFileError::LineTooLong { line: 1, limit: 4096 }));
    }
}
