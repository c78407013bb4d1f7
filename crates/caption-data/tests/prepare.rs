//! The preparation pipeline end to end: generated shapes, the real Flickr8k files, broken images.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use caption_data::shapes::{self, ShapesConfig};
use caption_data::sources::read_captions_file;
use caption_data::{
    CaptionRecord, DataError, ImageSource, ImageTransform, NoProgress, PrepareOptions, PreparedDataset, Split, loader,
    prepare,
};
use caption_text::Vocabulary;

#[path = "../../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

fn shared(path: &str) -> PathBuf {
    shared_data(path)
}

fn prepare_shapes(out: &Path, images: usize) -> PreparedDataset {
    try_prepare_shapes(out, images).unwrap()
}

fn try_prepare_shapes(out: &Path, images: usize) -> Result<PreparedDataset, DataError> {
    let generated = shapes::generate(ShapesConfig { images, size: 64, seed: 9, ..ShapesConfig::default() });
    let (records, pngs) = shapes::records_and_images(&generated);
    let options = PrepareOptions {
        name: "shapes".into(),
        format: "shapes".into(),
        extra_files: vec![(shapes::GROUND_TRUTH_FILE.into(), serde_json::to_vec(&generated).unwrap())],
        resize: Some(32),
        ..PrepareOptions::default()
    };
    prepare(records, &ImageSource::Bytes(pngs), &options, out, &NoProgress)
}

#[test]
fn a_prepared_shapes_dataset_reopens_identically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shapes");
    let written = prepare_shapes(&out, 80);
    let opened = PreparedDataset::open(&out).unwrap();
    assert_eq!(opened.images, written.images);
    assert_eq!(opened.captions, written.captions);
    assert_eq!(opened.manifest, written.manifest);
    assert_eq!(opened.vocabulary.words(), written.vocabulary.words());
    assert_eq!(opened.captions.len(), 400);
    let counts: usize = opened.manifest.splits.values().map(|c| c.images).sum();
    assert_eq!(counts, 80);
    assert!(opened.manifest.splits["train"].images > 50);
    for word in ["red", "green", "blue", "yellow", "circle", "two"] {
        assert!(opened.vocabulary.id(word).is_some(), "{word} in the vocabulary");
    }
    // Every caption row decodes back to its text's words.
    let tokenizer = caption_text::Tokenizer::english();
    for caption in &opened.captions {
        let words = tokenizer.lowercase_words(&caption.text);
        let known: Vec<String> =
            words.iter().map(|w| if opened.vocabulary.id(w).is_some() { w.clone() } else { "<UNK>".into() }).collect();
        assert_eq!(opened.vocabulary.decode(&caption.token_ids), known);
    }
    let truth = shapes::read_ground_truth(&out).unwrap();
    assert_eq!(truth.len(), 80);
    // The image files and the resized cache exist and decode.
    for image in &opened.images {
        let rgb = caption_data::check_image_file(&opened.image_path(image)).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (64, 64));
        let small = caption_data::check_image_file(&out.join(image.resized.as_ref().unwrap())).unwrap();
        assert_eq!((small.width(), small.height()), (32, 32));
    }
    // Nothing else is left beside the dataset.
    let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings, vec![std::ffi::OsString::from("shapes")]);
}

#[test]
fn damaged_or_unfinished_datasets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shapes");
    prepare_shapes(&out, 20);
    let tokenizer = out.join("tokenizer.json");
    let mut text = std::fs::read_to_string(&tokenizer).unwrap();
    text = text.replacen("circle", "circlf", 1);
    std::fs::write(&tokenizer, text).unwrap();
    let error = PreparedDataset::open(&out).unwrap_err();
    assert!(matches!(error, DataError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("tokenizer.json"), "{error}");
    // Preparing again replaces a damaged dataset: its manifest still says which files are its own.
    prepare_shapes(&out, 20);
    PreparedDataset::open(&out).unwrap();
    // Without a manifest the folder is nobody's: it is not opened, and not replaced either.
    std::fs::remove_file(out.join("manifest.json")).unwrap();
    assert!(matches!(PreparedDataset::open(&out), Err(DataError::NotPrepared { .. })));
    let error = try_prepare_shapes(&out, 20).unwrap_err();
    assert!(matches!(error, DataError::Output { .. }) && error.to_string().contains("captions.parquet"), "{error}");
    assert!(out.join("captions.parquet").is_file());
}

#[test]
fn flickr8k_official_splits_and_missing_images_are_reported() {
    let records = read_captions_file(&shared("flickr8k/Flickr8k.token.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flickr8k");
    let options = PrepareOptions { name: "flickr8k".into(), ..PrepareOptions::default() };
    let dataset =
        prepare(records, &ImageSource::Folder(shared("flickr8k/images")), &options, &out, &NoProgress).unwrap();
    let present: HashSet<String> = std::fs::read_dir(shared("flickr8k/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let usable: HashSet<&str> = dataset.images.iter().map(|i| i.id.as_str()).collect();
    assert!(!usable.is_empty() && usable.iter().all(|id| present.contains(*id)));
    assert_eq!(dataset.manifest.splits_from, "official");
    let reasons: HashMap<&str, usize> = dataset.manifest.skipped_images.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(s.reason.as_str()).or_default() += 1;
        m
    });
    assert_eq!(usable.len() + dataset.manifest.skipped_images.len(), 8_092);
    assert_eq!(reasons.values().sum::<usize>(), 8_092 - usable.len());
    assert!(reasons["missing file"] > 7_900, "{reasons:?}");
    for image in &dataset.images {
        assert_eq!(dataset.captions.iter().filter(|c| dataset.images[c.image].id == image.id).count(), 5);
    }
}

#[test]
fn original_compatible_vocabulary_covers_all_captions_in_file_order() {
    let records = read_captions_file(&shared("flickr8k/captions.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = PrepareOptions { original_compatible: true, ..PrepareOptions::default() };
    let dataset =
        prepare(records, &ImageSource::Folder(shared("flickr8k/images")), &options, &dir.path().join("d"), &NoProgress)
            .unwrap();
    // The original's vocabulary on Flickr8k's captions.txt (checked against its Python code in
    // caption-text's fixtures): 2,994 ids.
    assert_eq!(dataset.vocabulary.len(), 2_994);
    assert_eq!(dataset.manifest.vocabulary.scope, "all");
    assert_eq!(dataset.manifest.splits_from.split(' ').next(), Some("hashed"));
}

fn write_png(path: &Path, width: u32, height: u32) {
    image::RgbImage::from_pixel(width, height, image::Rgb([10, 200, 30])).save(path).unwrap();
}

fn broken_folder() -> (tempfile::TempDir, Vec<CaptionRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_png(&images.join("good.png"), 40, 30);
    write_png(&images.join("also_good.png"), 30, 40);
    std::fs::write(images.join("empty.jpg"), b"").unwrap();
    std::fs::write(images.join("text.jpg"), b"hello, I am not a JPEG").unwrap();
    let jpeg = std::fs::read(shared("flickr8k/images/102455176_5f8ead62d5.jpg")).unwrap();
    std::fs::write(images.join("truncated.jpg"), &jpeg[..200]).unwrap();
    let record = |image: &str, caption: &str| CaptionRecord {
        image: image.into(),
        caption: caption.into(),
        line: 1,
        split: None,
    };
    let records = ["good.png", "also_good.png", "empty.jpg", "text.jpg", "truncated.jpg", "absent.jpg"]
        .iter()
        .flat_map(|image| (0..5).map(move |k| record(image, &format!("a green picture number {k}"))))
        .collect();
    (dir, records)
}

#[test]
fn broken_images_are_skipped_with_reasons_or_fatal_when_strict() {
    let (dir, records) = broken_folder();
    let options =
        PrepareOptions { threshold: 1, split_ratios: "100/0/0".parse().unwrap(), ..PrepareOptions::default() };
    let source = ImageSource::Folder(dir.path().join("images"));
    let dataset = prepare(records.clone(), &source, &options, &dir.path().join("out"), &NoProgress).unwrap();
    assert_eq!(dataset.images.len(), 2);
    assert_eq!(dataset.captions.len(), 10);
    let reasons: HashMap<&str, &str> =
        dataset.manifest.skipped_images.iter().map(|s| (s.image.as_str(), s.reason.as_str())).collect();
    assert_eq!(reasons["empty.jpg"], "zero-byte file");
    assert_eq!(reasons["absent.jpg"], "missing file");
    assert!(reasons["text.jpg"].starts_with("cannot decode"), "{reasons:?}");
    assert!(reasons["truncated.jpg"].starts_with("cannot decode"), "{reasons:?}");
    assert!(dataset.manifest.skipped_images.iter().all(|s| s.captions == 5));

    let strict = PrepareOptions { strict: true, ..options };
    let error = prepare(records, &source, &strict, &dir.path().join("strict"), &NoProgress).unwrap_err();
    assert!(matches!(error, DataError::Image { .. }), "{error}");
    assert!(!dir.path().join("strict").exists(), "a failed preparation leaves no dataset");
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(leftovers, 0);
}

/// The PyTorch original's batches (tools/data/generate_batch_fixture.py runs its get_loader.py):
/// each caption trains as `<SOS>` + its words' ids + `<EOS>` (once each), then `<PAD>`.
#[test]
fn training_batches_equal_the_originals() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("original_batches.json")).unwrap()).unwrap();
    let records = read_captions_file(&fixtures.join("captions_200.txt")).unwrap();
    let pictures: HashMap<String, Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut png = Vec::new();
            image::RgbImage::from_pixel(16, 16, image::Rgb([9, 9, 9]))
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .unwrap();
            (r.image.clone(), png)
        })
        .collect();
    let options = PrepareOptions {
        original_compatible: true,
        threshold: fixture["threshold"].as_u64().unwrap() as usize,
        ..PrepareOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let dataset =
        prepare(records, &ImageSource::Bytes(pictures), &options, &dir.path().join("d"), &NoProgress).unwrap();
    let itos: Vec<String> = serde_json::from_value(fixture["itos"].clone()).unwrap();
    assert_eq!(dataset.vocabulary.words(), itos.as_slice());
    // Reopened from disk, in file order, cut as the original's DataLoader cuts them.
    let dataset = PreparedDataset::open(&dir.path().join("d")).unwrap();
    let rows: Vec<usize> = (0..dataset.captions.len()).collect();
    let batch_size = fixture["batch_size"].as_u64().unwrap() as usize;
    let batches = loader::caption_batches(&dataset, &rows, batch_size);
    let expected = fixture["batches"].as_array().unwrap();
    assert_eq!(batches.len(), expected.len());
    for (batch, expected) in batches.iter().zip(expected) {
        let expected: Vec<Vec<u32>> = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(batch.length, expected.len());
        assert_eq!(batch.tokens, expected.concat(), "batch of rows {:?}", batch.captions);
    }
}

#[test]
fn datasets_of_the_old_layout_are_refused_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shapes");
    prepare_shapes(&out, 12);
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let current = format!("\"layout_version\": {}", caption_data::LAYOUT_VERSION);
    assert!(text.contains(&current), "{text}");
    std::fs::write(&manifest, text.replace(&current, "\"layout_version\": 1")).unwrap();
    let error = PreparedDataset::open(&out).unwrap_err();
    assert!(matches!(error, DataError::OtherLayout { found: 1, .. }), "{error}");
    assert!(error.to_string().contains("prepare it again with `cargo xtask prepare-data`"), "{error}");
}

#[test]
fn batches_are_padded_time_major_and_shuffles_are_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = prepare_shapes(&dir.path().join("shapes"), 30);
    let rows = dataset.captions_in(Split::Train);
    let a = loader::epoch_order(&rows, Some((1, 0)));
    assert_eq!(a, loader::epoch_order(&rows, Some((1, 0))));
    assert_ne!(a, loader::epoch_order(&rows, Some((1, 1))));
    assert_ne!(a, rows);
    let batches = loader::caption_batches(&dataset, &a, 8);
    assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), rows.len());
    for batch in &batches {
        let n = batch.len();
        for (b, &row) in batch.captions.iter().enumerate() {
            let ids = &dataset.captions[row].token_ids;
            let column: Vec<u32> = (0..batch.length).map(|t| batch.tokens[t * n + b]).collect();
            assert!(ids.iter().all(|&id| id >= Vocabulary::UNK), "stored ids are words only: {ids:?}");
            assert_eq!(column[0], Vocabulary::SOS);
            assert_eq!(&column[1..=ids.len()], ids.as_slice());
            assert_eq!(column[ids.len() + 1], Vocabulary::EOS);
            assert!(column[ids.len() + 2..].iter().all(|&t| t == Vocabulary::PAD));
        }
    }
    let transform = ImageTransform::train(32, 28);
    let images = loader::load_images(&dataset, &batches[0].images, &transform, 5).unwrap();
    assert_eq!(images.len(), batches[0].len() * 3 * 28 * 28);
    assert_eq!(images, loader::load_images(&dataset, &batches[0].images, &transform, 5).unwrap());
    assert!(images.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn parquet_files_declare_plain_string_and_list_types_for_older_readers() {
    use base64::Engine;
    use polars_arrow::datatypes::ArrowDataType;
    let dir = tempfile::tempdir().unwrap();
    prepare_shapes(dir.path(), 12);
    for (file, strings, lists) in [("captions.parquet", 3, 1), ("images.parquet", 5, 0)] {
        let mut reader = std::fs::File::open(dir.path().join(file)).unwrap();
        let metadata = polars_parquet::arrow::read::read_metadata(&mut reader).unwrap();
        // The Arrow schema stored in the file (base64 IPC), as written: what pyarrow reads.
        let stored = metadata.key_value_metadata().as_ref().unwrap();
        let encoded = stored.iter().find(|kv| kv.key == "ARROW:schema").unwrap().value.clone().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let message = if bytes[..4] == [255; 4] { &bytes[8..] } else { &bytes[..] };
        let (schema, ..) = polars_arrow::io::ipc::read::deserialize_schema(message).unwrap();
        let dtypes: Vec<&ArrowDataType> = schema.iter_values().map(|field| &field.dtype).collect();
        assert!(!dtypes.iter().any(|d| matches!(d, ArrowDataType::Utf8View | ArrowDataType::LargeUtf8)), "{dtypes:?}");
        assert!(!dtypes.iter().any(|d| matches!(d, ArrowDataType::LargeList(_))), "{dtypes:?}");
        assert_eq!(dtypes.iter().filter(|d| matches!(d, ArrowDataType::Utf8)).count(), strings, "{file}: {dtypes:?}");
        let list_of_u32 =
            |d: &&&ArrowDataType| matches!(d, ArrowDataType::List(item) if item.dtype == ArrowDataType::UInt32);
        assert_eq!(dtypes.iter().filter(list_of_u32).count(), lists, "{file}: {dtypes:?}");
    }
}

#[test]
fn an_image_that_changed_after_preparation_is_named_when_the_dataset_opens() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = prepare_shapes(dir.path(), 12);
    let stamp = dataset.images[0].stamp.clone().unwrap();
    let first = dataset.image_path(&dataset.images[0]);
    assert_eq!(stamp.bytes, std::fs::metadata(&first).unwrap().len());
    let second = dataset.image_path(&dataset.images[1]);
    let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    // Written again with the same bytes (a new modification time): hashed, found equal, opened.
    std::fs::write(&first, &a).unwrap();
    PreparedDataset::open(dir.path()).unwrap();
    // Two images swapped: the first one opened is named.
    std::fs::write(&first, &b).unwrap();
    std::fs::write(&second, &a).unwrap();
    let error = PreparedDataset::open(dir.path()).unwrap_err().to_string();
    assert!(error.contains(&dataset.images[0].id) && error.contains("prepare it again"), "{error}");
    // The same size, one byte changed: caught by the hash.
    std::fs::write(&second, &b).unwrap();
    let mut edited = a.clone();
    let middle = edited.len() / 2;
    edited[middle] ^= 1;
    std::fs::write(&first, &edited).unwrap();
    let error = PreparedDataset::open(dir.path()).unwrap_err().to_string();
    assert!(error.contains("SHA-256 differs"), "{error}");
    std::fs::write(&first, &a).unwrap();
    PreparedDataset::open(dir.path()).unwrap();
    // The same data prepared again has the same content hash (times are kept out of it).
    let again = prepare_shapes(&dir.path().join("again"), 12);
    assert_eq!(again.manifest.content_hash(), dataset.manifest.content_hash());
}
