//! The Hub path over HTTP: a fake Hub on a loopback port (`tests/support/fake_hub.rs`) hosts
//! `jxie/flickr8k`'s three parquet files. With no Hub reachable, an empty cache is an error naming
//! the dataset; with the fake Hub, hf-hub's real client lists the repository and downloads the
//! files into the cache (blob, snapshot, `refs/main`); they are read and split; a second read comes
//! from the cache without a request; a dataset the Hub lacks is an error that names it. Nothing
//! leaves the machine.

use caption_data::DataError;
use caption_data::Split;
use caption_data::sources::hub::{HubRecipe, parquet_files, read_recipe};

#[path = "../../../tests/support/fake_hub.rs"]
mod fake_hub;
#[path = "support/jxie_flickr8k.rs"]
mod jxie_flickr8k;

use fake_hub::{COMMIT, FakeHub, HostedRepo};
use jxie_flickr8k::{png, write_split};

#[test]
fn an_empty_cache_is_filled_over_http_then_read_offline() {
    let dir = tempfile::tempdir().unwrap();
    let splits = [
        ("data/train-00000-of-00001.parquet", &["a.jpg", "b.jpg", "c.jpg"][..], 10),
        ("data/validation-00000-of-00001.parquet", &["d.jpg"][..], 50),
        ("data/test-00000-of-00001.parquet", &["e.jpg", "f.jpg"][..], 90),
    ];
    let files: Vec<(String, Vec<u8>)> = splits
        .iter()
        .map(|(name, images, shade)| {
            let path = dir.path().join("hosted").join(name);
            write_split(&path, images, *shade);
            (name.to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    let cache_dir = dir.path().join("hub");
    let cache = hf_hub::Cache::new(cache_dir.clone());

    // No Hub at all (a closed port stands in for no network): an error naming the dataset.
    // SAFETY: this test binary runs this one test; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9") };
    let error = read_recipe(&HubRecipe::flickr8k(), &cache).unwrap_err().to_string();
    assert!(error.contains("jxie/flickr8k") && error.contains("holds no copy"), "{error}");

    let hub = FakeHub::start(vec![HostedRepo { kind: "datasets", id: "jxie/flickr8k".into(), files: files.clone() }]);
    // SAFETY: as above.
    unsafe { std::env::set_var("HF_ENDPOINT", &hub.endpoint) };
    let (records, images) = read_recipe(&HubRecipe::flickr8k(), &cache).unwrap();
    assert_eq!(records.len(), 30, "five captions for each of six images");
    assert_eq!(images.len(), 6);
    let split_of = |image: &str| records.iter().find(|r| r.image == image).unwrap().split;
    assert_eq!(split_of("b.jpg"), Some(Split::Train));
    assert_eq!(split_of("d.jpg"), Some(Split::Validation));
    assert_eq!(split_of("f.jpg"), Some(Split::Test));
    assert_eq!(images["e.jpg"], png(90));

    // hf-hub's cache layout, filled by the download.
    let repo = cache_dir.join("datasets--jxie--flickr8k");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), COMMIT);
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(repo.join("snapshots").join(COMMIT).join(name)).unwrap(), bytes, "{name}");
    }
    let requests = hub.requests();
    assert!(requests.contains(&"/api/datasets/jxie/flickr8k/revision/main".to_string()), "{requests:?}");
    for (name, _) in &files {
        let download = format!("/datasets/jxie/flickr8k/resolve/main/{name} range=bytes=0-");
        assert!(requests.contains(&download), "{download} not in {requests:?}");
    }

    // Read again: from the cache, no request.
    let (again, _) = read_recipe(&HubRecipe::flickr8k(), &cache).unwrap();
    assert_eq!(again.len(), records.len());
    assert_eq!(hub.requests().len(), requests.len(), "the second read asked the Hub");

    // A dataset the Hub does not have.
    let error = parquet_files("someone/missing", &hf_hub::Cache::new(dir.path().join("other"))).unwrap_err();
    assert!(matches!(&error, DataError::Hub { repo, .. } if repo == "someone/missing"), "{error}");
    let message = error.to_string();
    assert!(message.contains("status code 404") && message.contains("holds no copy"), "{message}");
}
