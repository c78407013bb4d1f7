//! Atomic file writes, the one way every caption crate writes a file that a crash could otherwise
//! leave half-written.
//!
//! [`write_atomically`] fills a temporary sibling `NAME.tmp-PID`, flushes it to disk, renames it
//! over `NAME` and flushes the folder: a reader sees the old file or the new one, never a mix,
//! and a process killed midway leaves only the temporary, which the next writer of the same folder
//! may remove ([`leftover_owner`] names whose it is). [`write_synced`] writes a file inside a
//! folder that is itself staged and renamed into place as a whole, where a rename per file would
//! add nothing. New files get the permissions any new file gets (0666 less the umask: 0644 under
//! the usual umask 022), not a temporary file's 0600.
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//!
//! let folder = tempfile::tempdir()?;
//! let path = folder.path().join("config.toml");
//! caption_io::write_atomically(&path, |file| file.write_all(b"epochs = 3\n"))?;
//! assert_eq!(std::fs::read_to_string(&path)?, "epochs = 3\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary sibling [`write_atomically`] writes before renaming: `NAME.tmp-PID`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// For a file name left by [`write_atomically`] (`NAME.tmp-PID`): the name it was to become and
/// the process that wrote it; `None` for any other name.
pub fn leftover_owner(file_name: &str) -> Option<(&str, u32)> {
    let (name, pid) = file_name.rsplit_once(".tmp-")?;
    Some((name, pid.parse().ok()?)).filter(|(name, _)| !name.is_empty())
}

/// Writes `path` atomically: `write` fills the temporary sibling ([`temporary_path`]) through a
/// buffer, which is flushed to disk and renamed over `path`; then the folder's entry is flushed.
/// On any error the temporary is removed and `path` is as it was.
///
/// # Errors
/// The first I/O error of creating, writing, syncing or renaming.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    let temporary = temporary_path(path);
    let result = write_synced(&temporary, write).and_then(|()| fs::rename(&temporary, path));
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result?;
    sync_folder(path);
    Ok(())
}

/// [`write_atomically`] with the whole content at hand.
///
/// # Errors
/// As [`write_atomically`].
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically(path, |file| file.write_all(bytes))
}

/// Creates (or truncates) `path`, lets `write` fill it through a buffer, and flushes it to disk:
/// for files inside a folder that is renamed into place as a whole once complete.
///
/// # Errors
/// The first I/O error of creating, writing or syncing.
pub fn write_synced(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    let mut buffered = BufWriter::with_capacity(1 << 20, file);
    write(&mut buffered)?;
    let file = buffered.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

/// Flushes the folder holding `path`, so that a rename into it survives a power cut (best effort:
/// not every platform opens folders as files).
fn sync_folder(path: &Path) {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(folder) = File::open(folder) {
        let _ = folder.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("metrics.json");
        write_bytes_atomically(&path, b"old").unwrap();
        let failed = write_atomically(&path, |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(folder.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["metrics.json"], "the temporary is gone");
        write_bytes_atomically(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_the_usual_permissions_not_a_temporary_files() {
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("model.safetensors");
        write_bytes_atomically(&path, b"x").unwrap();
        let atomic = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let plain = folder.path().join("plain");
        fs::write(&plain, b"x").unwrap();
        let usual = fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        assert_eq!(atomic, usual, "as a file std::fs::write creates (0644 under umask 022)");
    }

    #[test]
    fn leftovers_name_their_file_and_process() {
        let temporary = temporary_path(Path::new("runs/demo/config.toml"));
        let name = temporary.file_name().unwrap().to_str().unwrap();
        assert_eq!(leftover_owner(name), Some(("config.toml", std::process::id())));
        assert_eq!(leftover_owner("config.toml"), None);
        assert_eq!(leftover_owner("notes.tmp-abc"), None);
        assert_eq!(leftover_owner(".tmp-12"), None);
    }
}
