//! Image files named on a command line: files as given, folders expanded to the images inside
//! them (sorted; their subfolders too when asked), and every entry that could not be followed
//! (a broken or looping symbolic link of an image's name, an unreadable folder) reported, never
//! skipped in silence.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::input_file::{BoundedLines, InputFileError};

/// File name extensions taken as images in a folder (any case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "gif", "webp"];

/// Longest line of image paths read from a stream (Linux's PATH_MAX).
pub const MAX_PATH_LINE_BYTES: usize = 4096;
/// Most image paths read from a stream.
pub const MAX_LISTED_PATHS: usize = 10_000_000;

/// Image paths from a stream (standard input), one per line (`\n` or `\r\n`; blank lines
/// ignored). A line is a path as bytes, UTF-8 or not; lines longer than [`MAX_PATH_LINE_BYTES`]
/// are refused by number, not echoed (the stream was likely not a list of paths).
///
/// # Errors
/// [`InputFileError::LineTooLong`], [`InputFileError::TooLarge`] past ten million
/// paths, or a read error.
pub fn read_image_paths(reader: impl std::io::BufRead) -> Result<Vec<PathBuf>, InputFileError> {
    let mut paths = Vec::new();
    let mut lines = BoundedLines::new(reader, MAX_PATH_LINE_BYTES);
    while let Some((_, text)) = lines.next_line()? {
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if paths.len() == MAX_LISTED_PATHS {
            return Err(InputFileError::TooLarge { bytes: paths.len() as u64 + 1, limit: MAX_LISTED_PATHS as u64 });
        }
        paths.push(path_from_bytes(text));
    }
    Ok(paths)
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

/// What [`collect_image_files`] found.
#[derive(Debug, Default)]
pub struct ImageFiles {
    /// Image files: those named, then each folder's images in sorted order.
    pub files: Vec<PathBuf>,
    /// Entries that could not be followed, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Subfolders passed over (not searched without `recursive`).
    pub subfolders: Vec<PathBuf>,
}

impl ImageFiles {
    /// What to say when no image was found in `inputs` (as the user named them): where nothing
    /// was found and, when subfolders were passed over, that `--recursive` would search them.
    pub fn nothing_found(&self, inputs: &[String]) -> String {
        let hint = match (self.subfolders.len(), self.subfolders.first()) {
            (0, _) | (_, None) => String::new(),
            (n, Some(first)) => {
                format!(" ({n} subfolder(s) not searched, such as {}: add --recursive)", first.display())
            }
        };
        format!("no images in {}{hint}", inputs.join(", "))
    }
}

/// Whether `path`'s extension is an image's.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// `inputs` with each `-` replaced by the paths `stdin` lists ([`read_image_paths`]: one per
/// line, UTF-8 or not, each at most a path's length; blank lines ignored), read once.
///
/// # Errors
/// What reading the list meets ([`read_image_paths`]).
pub fn with_standard_input_paths(
    inputs: &[PathBuf],
    stdin: impl std::io::BufRead,
) -> Result<Vec<PathBuf>, InputFileError> {
    let mut stdin = Some(stdin);
    let mut paths = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            if let Some(reader) = stdin.take() {
                paths.extend(read_image_paths(reader)?);
            }
        } else {
            paths.push(input.clone());
        }
    }
    Ok(paths)
}

/// The image files among `inputs`: a file is taken as given (whatever its name; reading it says
/// whether it is an image), a folder gives its files with an image extension, sorted by path, and
/// with `recursive` those of its subfolders (each folder once, symbolic links followed).
pub fn collect_image_files(inputs: &[PathBuf], recursive: bool) -> ImageFiles {
    let mut found = ImageFiles::default();
    let mut visited = HashSet::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, recursive, &mut visited, &mut found);
        } else {
            found.files.push(input.clone());
        }
    }
    found
}

fn walk(folder: &Path, recursive: bool, visited: &mut HashSet<PathBuf>, found: &mut ImageFiles) {
    // A folder reached twice (a link back up, or named twice) is listed once.
    if !visited.insert(fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf())) {
        return;
    }
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) => {
            found.unreadable.push((folder.to_path_buf(), format!("cannot list the folder: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut subfolders = Vec::new();
    for path in paths {
        match fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => subfolders.push(path),
            Ok(metadata) if metadata.is_file() => {
                if has_image_extension(&path) {
                    found.files.push(path);
                }
            }
            Ok(_) => {
                if has_image_extension(&path) {
                    found.unreadable.push((path, "not a regular file (a device, FIFO or socket)".into()));
                }
            }
            Err(e) if has_image_extension(&path) => {
                let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                let reason = if is_link { format!("a symbolic link that leads nowhere ({e})") } else { e.to_string() };
                found.unreadable.push((path, reason));
            }
            // Not an image's name: not one of the inputs either.
            Err(_) => {}
        }
    }
    for subfolder in subfolders {
        if recursive {
            walk(&subfolder, recursive, visited, found);
        } else {
            found.subfolders.push(subfolder);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_paths_are_bytes_bounded_in_length() {
        let paths = read_image_paths(&b"a.jpg\r\n\n  \nb\xff.png\nlast.jpg"[..]).unwrap();
        assert_eq!(paths.len(), 3);
        assert_eq!((paths[0].as_path(), paths[2].as_path()), (Path::new("a.jpg"), Path::new("last.jpg")));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(paths[1].as_os_str().as_bytes(), b"b\xff.png");
        }
        let fits = vec![b'x'; MAX_PATH_LINE_BYTES];
        assert_eq!(read_image_paths(&[fits.as_slice(), b"\r\n"].concat()[..]).unwrap().len(), 1);
        let long = [b"ok.jpg\n".as_slice(), &vec![b'y'; MAX_PATH_LINE_BYTES + 1]].concat();
        let error = read_image_paths(long.as_slice()).unwrap_err();
        assert_eq!(error, InputFileError::LineTooLong { line: 2, limit: MAX_PATH_LINE_BYTES });
    }

    #[test]
    fn folders_give_their_images_and_name_what_they_cannot_follow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        for name in ["b.JPG", "a.png", "notes.txt", "sub/c.jpg", "sub/deeper/d.webp"] {
            fs::write(root.join(name), b"x").unwrap();
        }
        let flat = collect_image_files(&[root.to_path_buf()], false);
        assert_eq!(flat.files, vec![root.join("a.png"), root.join("b.JPG")]);
        assert_eq!(flat.subfolders, vec![root.join("sub")]);
        assert!(flat.unreadable.is_empty());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("gone.jpg"), root.join("dangling.jpg")).unwrap();
            std::os::unix::fs::symlink(root.join("loop.jpg"), root.join("loop.jpg")).unwrap();
            std::os::unix::fs::symlink(root, root.join("sub/up")).unwrap();
        }
        let deep = collect_image_files(&[root.to_path_buf()], true);
        let files: Vec<_> = deep.files.iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect();
        assert_eq!(files, ["a.png", "b.JPG", "sub/c.jpg", "sub/deeper/d.webp"].map(PathBuf::from));
        #[cfg(unix)]
        {
            let names: Vec<_> = deep.unreadable.iter().map(|(p, _)| p.file_name().unwrap().to_owned()).collect();
            assert_eq!(names, ["dangling.jpg", "loop.jpg"]);
            assert!(deep.unreadable[0].1.contains("symbolic link"), "{:?}", deep.unreadable);
        }
    }
}
