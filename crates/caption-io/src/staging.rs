//! Writing folders atomically, and clearing what killed writers left behind.
//!
//! A folder is written as a hidden sibling `.NAME.partial-PID` and renamed into place when
//! complete; the folder it replaces is first renamed to `.NAME.old-PID`, then removed. Single
//! files are written as `NAME.tmp-PID` (or `STEM.tmp-PID`) and renamed. A process killed
//! mid-write leaves one of these behind; the next writer of the same name removes it when the
//! process whose id it carries is gone, and nothing else.

use std::fs;
use std::path::{Path, PathBuf};

use crate::file::sync_dir;
use crate::{PathError, foreign_entries, remove_own_entries};

/// A folder being written next to its final place and renamed into it when complete: a crash
/// leaves only a hidden `.NAME.partial-PID` folder that nothing reads and the next writer of
/// `NAME` removes.
#[derive(Debug)]
pub struct StagingDir {
    target: PathBuf,
    staging: PathBuf,
    done: bool,
}

impl StagingDir {
    /// Starts a staging folder for `target` (which may exist; it is replaced on commit: check
    /// first that it may be). Leftovers of earlier writers of `target` that were killed are
    /// removed ([`remove_stale_leftovers`]).
    ///
    /// # Errors
    /// [`PathError`] when the parent folder cannot be created or written.
    pub fn new(target: &Path) -> Result<Self, PathError> {
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(PathError::on(parent))?;
        let name = target.file_name().map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned());
        remove_stale_leftovers(parent, |base| base == name);
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(PathError::on(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(PathError::on(&staging))?;
        Ok(Self { target: target.to_path_buf(), staging, done: false })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Moves the finished folder into place, replacing what was there (all of it: check first
    /// that it may be, or use [`StagingDir::commit_keeping`]).
    ///
    /// # Errors
    /// [`PathError`] when a rename fails (the old folder is then left in place).
    pub fn commit(self) -> Result<PathBuf, PathError> {
        self.commit_keeping(&|_, _| true)
    }

    /// Moves the finished folder into place. Of the folder it replaces, the entries `is_own`
    /// claims are deleted and the others (a user's files) are moved into the new folder at the
    /// same place, so nothing the writer does not own is lost.
    ///
    /// # Errors
    /// [`PathError`] when a rename fails (the old folder is then left in place).
    pub fn commit_keeping(mut self, is_own: &dyn Fn(&Path, bool) -> bool) -> Result<PathBuf, PathError> {
        sync_dir(&self.staging);
        let old = self.staging.with_file_name(format!(
            ".{}.old-{}",
            self.target.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let had_old = self.target.exists();
        if had_old {
            fs::rename(&self.target, &old).map_err(PathError::on(&self.target))?;
        }
        fs::rename(&self.staging, &self.target).map_err(PathError::on(&self.target))?;
        if let Some(parent) = self.target.parent() {
            sync_dir(parent);
        }
        if had_old {
            keep_foreign(&old, &self.target, is_own)?;
            let _ = remove_own_entries(&old, &|_, _| true);
            let _ = fs::remove_dir(&old);
        }
        self.done = true;
        Ok(self.target.clone())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Moves the entries of `old` that `is_own` does not claim to the same places under `new`.
fn keep_foreign(old: &Path, new: &Path, is_own: &dyn Fn(&Path, bool) -> bool) -> Result<(), PathError> {
    for relative in foreign_entries(old, is_own)? {
        let target = new.join(&relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(PathError::on(parent))?;
        }
        fs::rename(old.join(&relative), &target).map_err(PathError::on(&target))?;
    }
    Ok(())
}

/// What a name in a folder is, when a killed writer may have left it: the name the writer was
/// writing and its process id. Folders `.NAME.partial-PID` and `.NAME.old-PID` are
/// [`StagingDir`]'s, files `NAME.tmp-PID` [`write_atomically`](crate::write_atomically)'s; any
/// other name is `None`.
pub fn leftover_owner(name: &str, is_dir: bool) -> Option<(&str, u32)> {
    let number = |digits: &str| {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
    };
    if is_dir {
        let hidden = name.strip_prefix('.')?;
        let (base, pid) = hidden.rsplit_once(".partial-").or_else(|| hidden.rsplit_once(".old-"))?;
        Some((base, number(pid)?))
    } else {
        let (base, pid) = name.rsplit_once(".tmp-")?;
        Some((base, number(pid)?)).filter(|(base, _)| !base.is_empty())
    }
}

/// Removes the leftovers in `folder` (`.BASE.partial-PID` and `.BASE.old-PID` folders,
/// `BASE.tmp-PID` files) whose process is gone and whose base name `belongs` to the caller (a
/// file's base may be its stem: `config.tmp-PID` for `config.toml`). Returns what it removed.
/// Leftovers of live processes, and anything else, are never touched.
pub fn remove_stale_leftovers(folder: &Path, belongs: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(folder) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((base, pid)) = leftover_owner(&name, file_type.is_dir()) else { continue };
        if !belongs(base) || process_is_alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if file_type.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Whether a process with this id exists (on other systems than Unix: always assumed alive, so
/// nothing is removed).
pub fn process_is_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let result = unsafe { libc::kill(pid, 0) };
        result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process id that is not running: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn leftovers_name_their_file_and_process() {
        let temporary = crate::temporary_path(Path::new("runs/demo/config.toml"));
        let name = temporary.file_name().unwrap().to_str().unwrap();
        assert_eq!(leftover_owner(name, false), Some(("config.toml", std::process::id())));
        assert_eq!(leftover_owner("config.toml", false), None);
        assert_eq!(leftover_owner("notes.tmp-abc", false), None);
        assert_eq!(leftover_owner(".tmp-12", false), None);
        assert_eq!(leftover_owner(".shapes.partial-12", true), Some(("shapes", 12)));
        assert_eq!(leftover_owner(".shapes.old-12", true), Some(("shapes", 12)));
        assert_eq!(leftover_owner("shapes.partial-12", true), None, "not hidden");
        assert_eq!(leftover_owner(".shapes.partial-12", false), None, "a file of a folder's name");
    }

    #[test]
    fn leftovers_of_dead_writers_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (dead, alive) = (dead_pid(), std::process::id());
        let make_dir = |name: &str| {
            fs::create_dir(dir.path().join(name)).unwrap();
            fs::write(dir.path().join(name).join("x"), b"x").unwrap();
        };
        make_dir(&format!(".shapes.partial-{dead}"));
        make_dir(&format!(".shapes.old-{dead}"));
        make_dir(&format!(".shapes.partial-{alive}"));
        make_dir(&format!(".other.partial-{dead}"));
        make_dir(&format!("shapes.partial-{dead}"));
        make_dir(".shapes.partial-12x");
        fs::write(dir.path().join(format!("shapes.tmp-{dead}")), b"t").unwrap();
        fs::write(dir.path().join(format!(".shapes.partial-{dead}.txt")), b"user").unwrap();
        let removed = remove_stale_leftovers(dir.path(), |base| base == "shapes");
        assert_eq!(removed.len(), 3, "{removed:?}");
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let mut expected = vec![
            format!(".shapes.partial-{alive}"),
            format!(".other.partial-{dead}"),
            format!("shapes.partial-{dead}"),
            ".shapes.partial-12x".to_string(),
            format!(".shapes.partial-{dead}.txt"),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_commit_keeping_moves_a_users_files_into_the_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        fs::create_dir_all(target.join("sub")).unwrap();
        fs::write(target.join("f"), b"old").unwrap();
        fs::write(target.join("sub/notes.txt"), b"mine").unwrap();
        let staging = StagingDir::new(&target).unwrap();
        fs::write(staging.path().join("f"), b"new").unwrap();
        staging.commit_keeping(&|p, _| p == Path::new("f")).unwrap();
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "new");
        assert_eq!(fs::read_to_string(target.join("sub/notes.txt")).unwrap(), "mine");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_commit_replaces_the_target_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        for round in 0..2 {
            let staging = StagingDir::new(&target).unwrap();
            fs::write(staging.path().join("f"), format!("{round}")).unwrap();
            staging.commit().unwrap();
            assert_eq!(fs::read_to_string(target.join("f")).unwrap(), round.to_string());
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
