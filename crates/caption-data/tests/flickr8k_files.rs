//! The real caption files in ../shared/data.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use caption_data::sources::{Format, read_captions_file};
use caption_data::{Split, SplitRatios, assign_splits};

#[path = "../../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

fn shared(path: &str) -> PathBuf {
    shared_data(path)
}

#[test]
fn kaggle_captions_txt_has_40455_captions_of_8091_images() {
    let path = shared("flickr8k/captions.txt");
    assert_eq!(Format::detect(&std::fs::read(&path).unwrap()), Format::Kaggle);
    let records = read_captions_file(&path).unwrap();
    assert_eq!(records.len(), 40_455);
    let images: HashSet<&str> = records.iter().map(|r| r.image.as_str()).collect();
    assert_eq!(images.len(), 8_091);
    assert_eq!(records[0].line, 2);
    assert!(records.iter().any(|r| r.caption.contains(" , ")), "quoted captions keep their commas");
    assert!(records.iter().all(|r| r.split.is_none()));
}

#[test]
fn token_file_has_the_official_6000_1000_1000_splits() {
    let path = shared("flickr8k/Flickr8k.token.txt");
    assert_eq!(Format::detect(&std::fs::read(&path).unwrap()), Format::Flickr8kToken);
    let records = read_captions_file(&path).unwrap();
    assert_eq!(records.len(), 40_460);
    let mut split_of: HashMap<&str, Option<Split>> = HashMap::new();
    for record in &records {
        let previous = split_of.insert(&record.image, record.split);
        assert!(previous.is_none() || previous == Some(record.split), "{} in two splits", record.image);
    }
    assert_eq!(split_of.len(), 8_092);
    let count = |split| split_of.values().filter(|s| **s == split).count();
    assert_eq!(
        (count(Some(Split::Train)), count(Some(Split::Validation)), count(Some(Split::Test))),
        (6000, 1000, 1000)
    );
    // 91 real images and the stray "2258277193_586949ec62.jpg.1" group are in no split.
    assert_eq!(count(None), 92);
    assert_eq!(split_of["2258277193_586949ec62.jpg.1"], None);
}

#[test]
fn coco_captions_json_pairs_annotations_with_file_names() {
    let path = shared("coco/captions_val2017.json");
    assert_eq!(Format::detect(&std::fs::read(&path).unwrap()), Format::Coco);
    let records = read_captions_file(&path).unwrap();
    assert_eq!(records.len(), 395);
    let images: HashSet<&str> = records.iter().map(|r| r.image.as_str()).collect();
    assert_eq!(images.len(), 79);
    assert!(images.contains("000000000139.jpg"));
}

#[test]
fn deterministic_splits_keep_each_image_whole() {
    let mut records = read_captions_file(&shared("flickr8k/captions.txt")).unwrap();
    assign_splits(&mut records, SplitRatios::default(), 0);
    let mut split_of: HashMap<&str, Split> = HashMap::new();
    for record in &records {
        let split = record.split.unwrap();
        assert_eq!(*split_of.entry(&record.image).or_insert(split), split, "{} in two splits", record.image);
    }
    let train = split_of.values().filter(|s| **s == Split::Train).count() as f64 / split_of.len() as f64;
    assert!((0.78..0.82).contains(&train), "train share {train}");
}

#[test]
fn vocabulary_sizes_equal_the_originals_rule_computed_with_spacy() {
    // tools/data/generate_flickr8k_vocabulary_sizes.py: spaCy tokens, threshold 5, 4 specials.
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flickr8k_vocabulary_sizes.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // The images are not here (18 of 8,091 are): every one is stood in for by an 8×8 PNG, so
    // `prepare` runs its real path over the real captions and official splits.
    let mut pixel = Vec::new();
    image::RgbImage::new(8, 8).write_to(&mut std::io::Cursor::new(&mut pixel), image::ImageFormat::Png).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (file, original_compatible, key) in
        [("Flickr8k.token.txt", false, "train_only"), ("captions.txt", true, "seed_compatible")]
    {
        let records = read_captions_file(&shared(&format!("flickr8k/{file}"))).unwrap();
        let images: HashMap<String, Vec<u8>> = records.iter().map(|r| (r.image.clone(), pixel.clone())).collect();
        let options = caption_data::PrepareOptions { original_compatible, ..caption_data::PrepareOptions::default() };
        let prepared = caption_data::prepare(
            records,
            &caption_data::ImageSource::Bytes(images),
            &options,
            &dir.path().join(key),
            &caption_data::NoProgress,
        )
        .unwrap();
        assert_eq!(prepared.vocabulary.len() as u64, expected[key]["size"].as_u64().unwrap(), "{key}");
        if !original_compatible {
            assert_eq!(prepared.manifest.splits.get("train").map(|s| s.images), Some(6000));
        }
    }
}

/// A missing piece of the shared data is named, with where it was looked for and what to do.
#[test]
fn missing_shared_data_is_named() {
    let panic = std::panic::catch_unwind(|| shared_data("flickr8k/no-such-file.txt")).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("shared/data/flickr8k/no-such-file.txt"), "{message}");
    assert!(message.contains("which is missing") && message.contains("CAPTION_SHARED_DATA"), "{message}");
}
