//! Which folders a command may write into: absent, empty, or of the command's own kind (holding
//! nothing the command would not have written itself), and never one that is, or holds, one of
//! the command's inputs. Anything else is refused before a byte is written, naming what is there.

use std::fs;
use std::path::{Component, Path, PathBuf};

use caption_io::foreign_entries;

use crate::DataError;

/// How many foreign entries a refusal names.
const SHOWN: usize = 10;

/// Checks that a command writing a `kind` (e.g. "prepared dataset") may replace `folder`: it does
/// not exist, is empty, or holds only entries `is_own` claims ([`foreign_entries`]).
///
/// # Errors
/// [`DataError::Output`] naming the folder and up to ten entries that are not the command's, or
/// saying that it is a file or a symbolic link.
pub fn claim_output_folder(folder: &Path, kind: &str, is_own: &dyn Fn(&Path, bool) -> bool) -> Result<(), DataError> {
    let refuse = |problem: String| Err(DataError::Output { path: folder.display().to_string(), problem });
    let metadata = match fs::symlink_metadata(folder) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(DataError::Io { path: folder.display().to_string(), source }),
    };
    if metadata.file_type().is_symlink() {
        return refuse(format!("is a symbolic link; give the folder it points to, {}", describe_link(folder)));
    }
    if !metadata.is_dir() {
        return refuse("exists and is not a folder; nothing was written".into());
    }
    let foreign = foreign_entries(folder, is_own)?;
    if foreign.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = foreign.iter().take(SHOWN).map(|p| p.display().to_string()).collect();
    if foreign.len() > SHOWN {
        names.push(format!("and {} more", foreign.len() - SHOWN));
    }
    refuse(format!(
        "is not empty and not a {kind} (it holds {}); nothing was written or deleted: choose another folder, \
         or move those out",
        names.join(", ")
    ))
}

/// [`claim_output_folder`] for a command that writes a flat folder of the files `files`, one of
/// which, `marker`, says the folder is the command's: those files count as its own only when the
/// marker reads as JSON that `recognise` accepts; nothing else ever does.
///
/// # Errors
/// As [`claim_output_folder`].
pub fn claim_folder_of_files(
    folder: &Path,
    kind: &str,
    files: &[&str],
    marker: &str,
    recognise: &dyn Fn(&serde_json::Value) -> bool,
) -> Result<(), DataError> {
    let recognised = fs::read_to_string(folder.join(marker))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|value| recognise(&value));
    let own = |relative: &Path, is_dir: bool| {
        recognised && !is_dir && relative.to_str().is_some_and(|name| files.contains(&name))
    };
    claim_output_folder(folder, kind, &own)
}

fn describe_link(path: &Path) -> String {
    fs::read_link(path).map_or_else(|_| "unknown".into(), |target| target.display().to_string())
}

/// Refuses an output folder that is one of `inputs` or holds one (replacing it would delete the
/// data being read). Paths are compared after resolving symbolic links.
///
/// # Errors
/// [`DataError::Output`] naming the input.
pub fn refuse_output_over_inputs(output: &Path, inputs: &[&Path]) -> Result<(), DataError> {
    let out = resolved(output);
    for input in inputs {
        if resolved(input).starts_with(&out) {
            return Err(DataError::Output {
                path: output.display().to_string(),
                problem: format!(
                    "is, or holds, the input {}; an output never replaces what it reads: choose another path",
                    input.display()
                ),
            });
        }
    }
    Ok(())
}

/// `path` made absolute, with its longest existing prefix resolved through symbolic links and
/// the rest normalised (`.` dropped, `..` taken back): two paths naming the same place compare
/// equal, whether or not it exists yet.
pub fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.clone();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = fs::canonicalize(&existing) {
            break real;
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break existing,
        }
    };
    let mut out = base;
    for name in rest.iter().rev() {
        match Path::new(name).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::CurDir) | None => {}
            _ => out.push(name),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use caption_io::remove_own_entries;

    use super::*;

    #[test]
    fn only_absent_empty_or_own_folders_are_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let own = |p: &Path, _: bool| p.starts_with("mine");
        assert!(claim_output_folder(&dir.path().join("absent"), "thing", &own).is_ok());
        let folder = dir.path().join("out");
        fs::create_dir_all(folder.join("mine/deeper")).unwrap();
        fs::write(folder.join("mine/deeper/a"), b"a").unwrap();
        assert!(claim_output_folder(&folder, "thing", &own).is_ok());
        fs::write(folder.join("thesis.tex"), b"chapter 1").unwrap();
        let error = claim_output_folder(&folder, "thing", &own).unwrap_err().to_string();
        assert!(error.contains("not a thing") && error.contains("thesis.tex"), "{error}");
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(claim_output_folder(&file, "thing", &own).unwrap_err().to_string().contains("not a folder"));
        // Removing the own entries leaves the rest in place.
        fs::write(folder.join("mine/notes.txt"), b"kept").unwrap();
        let own_but_notes = |p: &Path, d: bool| own(p, d) && p != Path::new("mine/notes.txt");
        remove_own_entries(&folder, &own_but_notes).unwrap();
        assert!(!folder.join("mine/deeper").exists());
        assert_eq!(fs::read_to_string(folder.join("mine/notes.txt")).unwrap(), "kept");
        assert_eq!(fs::read_to_string(folder.join("thesis.tex")).unwrap(), "chapter 1");
    }

    #[test]
    fn an_output_that_is_or_holds_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("data/images");
        fs::create_dir_all(&images).unwrap();
        for output in [images.clone(), dir.path().join("data"), dir.path().to_path_buf(), images.join("..")] {
            assert!(refuse_output_over_inputs(&output, &[&images]).is_err(), "{}", output.display());
        }
        assert!(refuse_output_over_inputs(&dir.path().join("data/out"), &[&images]).is_ok());
        assert!(refuse_output_over_inputs(&dir.path().join("data/images2"), &[&images]).is_ok());
        assert!(refuse_output_over_inputs(&images.join("new/deeper"), &[&images]).is_ok());
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(dir.path().join("data"), &link).unwrap();
            assert!(refuse_output_over_inputs(&link, &[&images]).is_err());
        }
    }
}
