//! Atomic file writes: [`write_atomically`] (a temporary sibling `NAME.tmp-PID`, flushed, renamed
//! over `NAME`, the folder flushed) and [`write_synced`] for files inside a folder that is staged
//! as a whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary sibling [`write_atomically`] writes before renaming: `NAME.tmp-PID`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
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
pub(crate) fn sync_folder(path: &Path) {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_dir(folder);
}

/// Flushes the folder `path` itself (best effort).
pub(crate) fn sync_dir(path: &Path) {
    if let Ok(folder) = File::open(path) {
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
}
