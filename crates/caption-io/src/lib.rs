//! Atomic writes, the one way every caption crate writes a file or a folder that a crash could
//! otherwise leave half-written, and the clean-up of what killed writers left.
//!
//! Folders: [`StagingDir`] writes a hidden sibling `.NAME.partial-PID` and renames it into place
//! when complete (of the folder it replaces, entries the writer does not own are kept);
//! [`remove_stale_leftovers`] removes what a killed writer left, once its process is gone;
//! [`foreign_entries`] and [`remove_own_entries`] walk a folder by ownership.
//!
//! Files:
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

mod error;
mod file;
mod staging;
mod tree;

pub use error::PathError;
pub use file::{temporary_path, write_atomically, write_bytes_atomically, write_synced};
pub use staging::{StagingDir, leftover_owner, process_is_alive, remove_stale_leftovers};
pub use tree::{foreign_entries, remove_own_entries};
