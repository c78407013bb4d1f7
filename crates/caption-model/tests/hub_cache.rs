//! The Hub loader against a cache folder this test builds itself, in hf-hub's layout; the endpoint
//! points at a closed local port, so nothing is ever downloaded.

use caption_model::{INCEPTION_V3_FILE, INCEPTION_V3_REPO, model_file};

#[test]
fn cached_files_are_found_without_network_and_misses_say_where_they_looked() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().to_path_buf();
    let repo = home.join("hub/models--timm--inception_v3.tv_in1k");
    let revision = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(revision)).unwrap();
    std::fs::write(repo.join("refs/main"), revision).unwrap();
    std::fs::write(repo.join("snapshots").join(revision).join(INCEPTION_V3_FILE), b"weights").unwrap();
    // SAFETY: this test binary runs this one test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("HF_HOME", &home);
        std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");
    }

    let path = model_file(INCEPTION_V3_REPO, INCEPTION_V3_FILE).unwrap();
    assert!(path.starts_with(&home), "{}", path.display());
    assert_eq!(std::fs::read(&path).unwrap(), b"weights");

    let error = model_file(INCEPTION_V3_REPO, "pytorch_model.bin").unwrap_err().to_string();
    assert!(error.contains("cannot get pytorch_model.bin of timm/inception_v3.tv_in1k"), "{error}");
    assert!(error.contains(&home.join("hub").display().to_string()), "{error}");
}
