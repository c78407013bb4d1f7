//! Reading a user's input file: a regular file of bounded size, never a device, FIFO or socket
//! (`/dev/zero` never ends, a FIFO blocks until someone writes to it).

use std::io::Read;
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
    /// Another I/O error, as text.
    #[error("{0}")]
    Io(String),
}

/// Reads the whole of `path` when it is a regular file (symbolic links followed) of at most
/// `limit` bytes. The kind of file is checked before it is opened, so a FIFO never blocks.
///
/// # Errors
/// [`InputFileError`].
pub fn read_input_file(path: &Path, limit: u64) -> Result<Vec<u8>, InputFileError> {
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InputFileError::Missing,
        _ => InputFileError::Io(e.to_string()),
    })?;
    if !metadata.is_file() {
        return Err(InputFileError::NotAFile(kind(&metadata)));
    }
    if metadata.len() > limit {
        return Err(InputFileError::TooLarge { bytes: metadata.len(), limit });
    }
    let file = std::fs::File::open(path).map_err(|e| InputFileError::Io(e.to_string()))?;
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
        }
    }
}
