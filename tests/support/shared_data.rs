//! The real data tests read (`../shared/data` beside the repository: Flickr8k's captions and
//! splits, 18 Flickr8k photos, a COCO sample; its README says what each is), found in one place
//! that says clearly what is missing. Include it with
//! `#[path = "…/tests/support/shared_data.rs"] mod shared_data;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The variable that points the tests at another copy of the shared data folder.
pub const SHARED_DATA_VARIABLE: &str = "CAPTION_SHARED_DATA";

/// `shared/data/RELATIVE` (`RELATIVE` may be empty for the folder itself), checked to exist.
///
/// # Panics
/// When it does not exist, with a message naming the path and what to do.
pub fn shared_data(relative: &str) -> PathBuf {
    let folder = match std::env::var_os(SHARED_DATA_VARIABLE) {
        Some(folder) => PathBuf::from(folder),
        None => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            let workspace = manifest
                .ancestors()
                .find(|folder| folder.join("Cargo.lock").is_file())
                .expect("the workspace root holds Cargo.lock");
            workspace.join("../shared/data")
        }
    };
    let path = folder.join(relative);
    assert!(
        path.exists(),
        "this test reads {} (shared/data/{relative}), which is missing: the tests expect the shared data \
         folder (Flickr8k captions and photos, a COCO sample) at ../shared/data beside the repository, \
         or where {SHARED_DATA_VARIABLE} points",
        path.display()
    );
    path
}
