//! The weights download over HTTP: a fake Hub on a loopback port (`tests/support/fake_hub.rs`)
//! hosts `timm/inception_v3.tv_in1k`; with an empty `HF_HOME`, [`model_file`] fetches
//! `model.safetensors` through hf-hub's real client into the cache, and finds it there the next
//! time without a request. A file the repository lacks is an error naming it. Nothing leaves the
//! machine.

use caption_model::{INCEPTION_V3_FILE, INCEPTION_V3_REPO, model_file};

#[path = "../../../tests/support/fake_hub.rs"]
mod fake_hub;

use fake_hub::{COMMIT, FakeHub, HostedRepo};

#[test]
fn weights_are_downloaded_into_an_empty_cache_once() {
    let home = tempfile::tempdir().unwrap();
    let weights: Vec<u8> = (0..100_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes()).collect();
    let hub = FakeHub::start(vec![HostedRepo {
        kind: "models",
        id: INCEPTION_V3_REPO.into(),
        files: vec![(INCEPTION_V3_FILE.into(), weights.clone())],
    }]);
    // SAFETY: this test binary runs this one test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("HF_HOME", home.path());
        std::env::set_var("HF_ENDPOINT", &hub.endpoint);
    }

    let path = model_file(INCEPTION_V3_REPO, INCEPTION_V3_FILE).unwrap();
    let expected =
        home.path().join("hub/models--timm--inception_v3.tv_in1k/snapshots").join(COMMIT).join(INCEPTION_V3_FILE);
    assert_eq!(path, expected);
    assert_eq!(std::fs::read(&path).unwrap(), weights);
    let url = format!("/{INCEPTION_V3_REPO}/resolve/main/{INCEPTION_V3_FILE}");
    let requests = hub.requests();
    assert!(requests.contains(&format!("{url} range=bytes=0-0")), "{requests:?}"); // the metadata
    assert!(requests.contains(&format!("{url} range=bytes=0-")), "{requests:?}"); // the download

    assert_eq!(model_file(INCEPTION_V3_REPO, INCEPTION_V3_FILE).unwrap(), expected);
    assert_eq!(hub.requests().len(), requests.len(), "the cached file was asked for again");

    let error = model_file(INCEPTION_V3_REPO, "pytorch_model.bin").unwrap_err().to_string();
    assert!(error.contains("cannot get pytorch_model.bin of timm/inception_v3.tv_in1k"), "{error}");
}
