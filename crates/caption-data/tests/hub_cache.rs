//! The Hub path offline: a cache folder in hf-hub's layout holding parquet files in
//! `jxie/flickr8k`'s schema (image `{bytes, path}`, caption_0..caption_4), read and prepared.

use caption_data::sources::hub::{HubRecipe, read_recipe, split_from_path};
use caption_data::{ImageSource, NoProgress, PrepareOptions, Split, prepare};

#[path = "support/jxie_flickr8k.rs"]
mod jxie_flickr8k;
use jxie_flickr8k::{png, write_split};

#[test]
fn a_hub_cache_in_jxie_flickr8k_layout_is_read_and_prepared_offline() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let repo = hub.join("datasets--jxie--flickr8k");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    let snapshot = repo.join("snapshots/0123abcd/data");
    write_split(&snapshot.join("train-00000-of-00001.parquet"), &["a.jpg", "b.jpg", "c.jpg"], 10);
    write_split(&snapshot.join("validation-00000-of-00001.parquet"), &["d.jpg"], 50);
    write_split(&snapshot.join("test-00000-of-00001.parquet"), &["e.jpg", "f.jpg"], 90);

    let (records, images) = read_recipe(&HubRecipe::flickr8k(), &hf_hub::Cache::new(hub)).unwrap();
    assert_eq!(records.len(), 30);
    assert_eq!(images.len(), 6);
    let split_of = |image: &str| records.iter().find(|r| r.image == image).unwrap().split;
    assert_eq!(split_of("a.jpg"), Some(Split::Train));
    assert_eq!(split_of("d.jpg"), Some(Split::Validation));
    assert_eq!(split_of("f.jpg"), Some(Split::Test));
    assert_eq!(images["e.jpg"], png(90));

    let options = PrepareOptions { threshold: 1, ..PrepareOptions::default() };
    let out = dir.path().join("flickr8k");
    let dataset = prepare(records, &ImageSource::Bytes(images), &options, &out, &NoProgress).unwrap();
    assert_eq!(dataset.manifest.splits_from, "official");
    assert_eq!(dataset.manifest.splits["train"].images, 3);
    assert_eq!(dataset.manifest.splits["test"].captions, 10);
    let first = &dataset.images[0];
    assert_eq!((first.width, first.height), (24, 20));
    assert!(dataset.image_path(first).is_file());
}

#[test]
fn splits_are_read_from_file_names() {
    assert_eq!(split_from_path("data/train-00000-of-00002.parquet"), Some(Split::Train));
    assert_eq!(split_from_path("data/validation-00000-of-00001.parquet"), Some(Split::Validation));
    assert_eq!(split_from_path("test/0000.parquet"), Some(Split::Test));
    assert_eq!(split_from_path("data/contest-0.parquet"), None);
}
