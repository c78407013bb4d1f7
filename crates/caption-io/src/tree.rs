//! Walking a folder by ownership: which entries a writer does not own ([`foreign_entries`]), and
//! deleting only those it does ([`remove_own_entries`]). `is_own` sees each entry's path relative
//! to the folder and whether it is a folder (symbolic links are not followed).

use std::fs;
use std::path::{Path, PathBuf};

use crate::PathError;

/// Entries under `folder` (paths relative to it) that `is_own` does not claim. `is_own` sees
/// each entry's relative path and whether it is a folder (symbolic links are not followed); a
/// folder it claims is searched in turn, one it does not is reported whole.
///
/// # Errors
/// [`PathError`] when a folder cannot be listed.
pub fn foreign_entries(folder: &Path, is_own: &dyn Fn(&Path, bool) -> bool) -> Result<Vec<PathBuf>, PathError> {
    let mut foreign = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let here = folder.join(&relative);
        let entries = fs::read_dir(&here).map_err(PathError::on(&here))?;
        for entry in entries {
            let entry = entry.map_err(PathError::on(&here))?;
            let path = relative.join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_own(&path, is_dir) {
                foreign.push(path);
            } else if is_dir {
                pending.push(path);
            }
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// Deletes the entries under `folder` that `is_own` claims (a claimed folder is emptied of its
/// own entries and removed only when nothing else is left in it); everything else stays.
///
/// # Errors
/// [`PathError`] naming what could not be listed or removed.
pub fn remove_own_entries(folder: &Path, is_own: &dyn Fn(&Path, bool) -> bool) -> Result<(), PathError> {
    fn walk(root: &Path, relative: &Path, is_own: &dyn Fn(&Path, bool) -> bool) -> Result<(), PathError> {
        let here = root.join(relative);
        for entry in fs::read_dir(&here).map_err(PathError::on(&here))? {
            let entry = entry.map_err(PathError::on(&here))?;
            let path = relative.join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_own(&path, is_dir) {
                continue;
            }
            let full = root.join(&path);
            if is_dir {
                walk(root, &path, is_own)?;
                if fs::read_dir(&full).map_err(PathError::on(&full))?.next().is_none() {
                    fs::remove_dir(&full).map_err(PathError::on(&full))?;
                }
            } else {
                fs::remove_file(&full).map_err(PathError::on(&full))?;
            }
        }
        Ok(())
    }
    walk(folder, Path::new(""), is_own)
}
