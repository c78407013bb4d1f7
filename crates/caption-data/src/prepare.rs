//! The preparation pipeline: records → splits → image checks → tokens → vocabulary → the prepared
//! dataset on disk.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use caption_text::{Ordering, Tokenizer, Vocabulary};
use image::ImageFormat;
use rayon::prelude::*;

use crate::manifest::{LAYOUT_VERSION, Manifest, SkippedImage, SplitCounts, VocabularyInfo};
use crate::prepared::{FileStamp, PreparedCaption, PreparedDataset, PreparedImage};
use caption_io::StagingDir;

use crate::prepared::write_file;
use crate::{CaptionRecord, DataError, ImageProblem, ImageTransform, Progress, Split, SplitRatios, assign_splits};
use crate::{claim_output_folder, refuse_output_over_inputs};

/// Where the pictures of a caption source are.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// Files in a folder, named by each record's image identifier. The prepared dataset refers
    /// to them by absolute path.
    Folder(PathBuf),
    /// The bytes of each image by identifier (Hub parquet, generated data); they are written into
    /// the prepared dataset's `images/` folder.
    Bytes(HashMap<String, Vec<u8>>),
}

/// Sides accepted for the resized copies (`PrepareOptions::resize`): an Inception input is 75 to
/// 299 pixels; 2048 leaves room without letting a typo allocate gigabytes per image.
pub const RESIZE_SIDES: std::ops::RangeInclusive<u32> = 8..=2048;

/// How to prepare.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Dataset name recorded in the manifest.
    pub name: String,
    /// Where the data came from (for the manifest).
    pub source: String,
    /// The source's layout (for the manifest).
    pub format: String,
    /// Vocabulary frequency threshold (the original: 5).
    pub threshold: usize,
    /// Build the vocabulary over every caption in file order, as the original does, instead of
    /// over the training split only.
    pub original_compatible: bool,
    /// Fail on the first unusable image instead of skipping it.
    pub strict: bool,
    /// Ratios for sources without official splits.
    pub split_ratios: SplitRatios,
    /// Seed of the hashed split.
    pub split_seed: u64,
    /// Write a cache of `N × N` resized images.
    pub resize: Option<u32>,
    /// Extra files to store in the dataset (name → bytes), hashed in the manifest.
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// The files the records were read from: the output may never be, or hold, one of them (an
    /// image folder is such an input already).
    pub input_files: Vec<PathBuf>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            name: "dataset".into(),
            source: String::new(),
            format: String::new(),
            threshold: 5,
            original_compatible: false,
            strict: false,
            split_ratios: SplitRatios::default(),
            split_seed: 0,
            resize: None,
            extra_files: Vec::new(),
            input_files: Vec::new(),
        }
    }
}

/// One image's captions, as grouped from the records.
struct ImageGroup {
    id: String,
    split: Option<Split>,
    records: Vec<usize>,
}

/// What checking one image found.
struct Checked {
    width: u32,
    height: u32,
    path: PathBuf,
    resized: Option<PathBuf>,
    stamp: FileStamp,
}

/// Prepares a dataset from caption records and their images and writes it to `out` atomically.
///
/// Splits: the records' own when every record has one; when only some do (Flickr8k's 92 images
/// outside the official split files), the others are skipped and listed; when none do, a split
/// hashed from the image identifier.
///
/// # Errors
/// [`DataError`] for an unusable image with `strict`, a failing write, or when nothing usable is
/// left.
pub fn prepare(
    mut records: Vec<CaptionRecord>,
    images: &ImageSource,
    options: &PrepareOptions,
    out: &Path,
    progress: &dyn Progress,
) -> Result<PreparedDataset, DataError> {
    if options.threshold == 0 {
        return Err(DataError::Invalid("the vocabulary threshold must be at least 1".into()));
    }
    if let Some(side) = options.resize.filter(|side| !RESIZE_SIDES.contains(side)) {
        return Err(DataError::Invalid(format!(
            "--resize {side}: the side of the resized copies must be within {}..={} pixels",
            RESIZE_SIDES.start(),
            RESIZE_SIDES.end()
        )));
    }
    if let ImageSource::Folder(folder) = images {
        refuse_names_outside(&records, folder)?;
    }
    claim_dataset_folder(out, images, &options.input_files)?;
    let any_split = records.iter().any(|r| r.split.is_some());
    let splits_from = if any_split {
        "official".to_string()
    } else {
        assign_splits(&mut records, options.split_ratios, options.split_seed);
        format!("hashed {} seed {}", options.split_ratios, options.split_seed)
    };
    let groups = group_by_image(&records);
    let staging = StagingDir::new(out)?;

    let CheckedImages { prepared: prepared_images, image_row, skipped } =
        check_images(&groups, images, options, staging.path(), progress)?;

    // Captions: tokenize every caption (the vocabulary may need them all).
    progress.start_counting("tokenizing captions", records.len() as u64, "captions");
    let tokenizer = Tokenizer::english();
    let texts: Vec<&str> = records.iter().map(|r| r.caption.as_str()).collect();
    let words = tokenizer.lowercase_words_batch(&texts);
    progress.advance(records.len() as u64);
    progress.finish();

    let mut record_image = vec![None; records.len()];
    let mut record_index = vec![0u32; records.len()];
    for (g, group) in groups.iter().enumerate() {
        for (k, &r) in group.records.iter().enumerate() {
            record_image[r] = image_row[g];
            record_index[r] = k as u32;
        }
    }
    let vocabulary_captions: Vec<&Vec<String>> = if options.original_compatible {
        words.iter().collect()
    } else {
        (0..records.len())
            .filter(|&r| record_image[r].is_some_and(|i| prepared_images[i].split == Split::Train))
            .map(|r| &words[r])
            .collect()
    };
    let vocabulary = Vocabulary::build(&vocabulary_captions, options.threshold, Ordering::Original)?
        .with_tokenizer_rules(tokenizer.rules_version());

    let mut captions = Vec::new();
    let mut empty_captions = 0;
    for r in 0..records.len() {
        let Some(image) = record_image[r] else { continue };
        if words[r].is_empty() {
            empty_captions += 1;
            continue;
        }
        captions.push(PreparedCaption {
            image,
            caption_index: record_index[r],
            text: records[r].caption.clone(),
            // The words' ids only: the loader wraps each caption in `<SOS>` … `<EOS>` for training.
            token_ids: vocabulary.encode(&words[r]),
        });
    }
    refuse_unusable(&prepared_images, &captions, &skipped, &splits_from, any_split)?;

    let splits = split_counts(&prepared_images, &captions);
    let manifest = Manifest {
        layout_version: LAYOUT_VERSION,
        name: options.name.clone(),
        source: options.source.clone(),
        format: options.format.clone(),
        splits_from,
        created_by: format!("caption-data {}", env!("CARGO_PKG_VERSION")),
        splits,
        vocabulary: VocabularyInfo {
            size: vocabulary.len(),
            threshold: options.threshold,
            scope: if options.original_compatible { "all".into() } else { "train".into() },
            ordering: Ordering::Original.to_string(),
            tokenizer: tokenizer.rules_version().to_string(),
        },
        skipped_images: skipped,
        empty_captions,
        resized: options.resize,
        files: BTreeMap::new(),
        image_modified_ns: prepared_images
            .iter()
            .filter_map(|image| Some((image.id.clone(), image.stamp.as_ref()?.modified_ns?)))
            .collect(),
    };
    let mut dataset = PreparedDataset { root: PathBuf::new(), manifest, images: prepared_images, captions, vocabulary };
    for (name, bytes) in &options.extra_files {
        write_file(&staging.path().join(name), bytes)?;
    }
    dataset.write_tables(staging.path(), &options.extra_files)?;
    dataset.root = staging.commit()?;
    Ok(dataset)
}

/// What the image checks kept and skipped: the prepared images, each group's row among them
/// (`None` when skipped), and why each skipped image was.
struct CheckedImages {
    prepared: Vec<PreparedImage>,
    image_row: Vec<Option<usize>>,
    skipped: Vec<SkippedImage>,
}

/// Checks (and resizes into `staging`) every group's image in parallel; a bad image is an error
/// with `options.strict`, else skipped with its reason, as is an image in no official split.
fn check_images(
    groups: &[ImageGroup],
    images: &ImageSource,
    options: &PrepareOptions,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<CheckedImages, DataError> {
    progress.start_counting("checking images", groups.len() as u64, "images");
    let checked: Vec<Result<Checked, ImageProblem>> = groups
        .par_iter()
        .map(|group| {
            let result = check_one(group, images, options.resize, staging);
            progress.advance(1);
            result
        })
        .collect();
    progress.finish();

    let mut skipped = Vec::new();
    let mut prepared_images = Vec::new();
    let mut image_row = vec![None; groups.len()];
    for (g, (group, result)) in groups.iter().zip(checked).enumerate() {
        let reason = match (&result, group.split) {
            (Err(problem), _) => {
                if options.strict {
                    // Named by its path when it is a file of the images folder.
                    let image = match images {
                        ImageSource::Folder(folder) => folder.join(&group.id).display().to_string(),
                        ImageSource::Bytes(_) => group.id.clone(),
                    };
                    return Err(DataError::Image { image, problem: problem.clone() });
                }
                problem.to_string()
            }
            (Ok(_), None) => "in no official split".to_string(),
            (Ok(_), Some(_)) => String::new(),
        };
        match (result, group.split) {
            (Ok(c), Some(split)) if reason.is_empty() => {
                image_row[g] = Some(prepared_images.len());
                prepared_images.push(PreparedImage {
                    id: group.id.clone(),
                    split,
                    path: c.path,
                    width: c.width,
                    height: c.height,
                    resized: c.resized,
                    stamp: Some(c.stamp),
                });
            }
            _ => skipped.push(SkippedImage { image: group.id.clone(), reason, captions: group.records.len() }),
        }
    }

    Ok(CheckedImages { prepared: prepared_images, image_row, skipped })
}

/// Refuses a dataset with no usable captioned image, or none in the training split.
fn refuse_unusable(
    prepared_images: &[PreparedImage],
    captions: &[PreparedCaption],
    skipped: &[SkippedImage],
    splits_from: &str,
    any_split: bool,
) -> Result<(), DataError> {
    if captions.is_empty() {
        return Err(DataError::Invalid(format!(
            "no usable image with a caption ({} images skipped; first reason: {})",
            skipped.len(),
            skipped.first().map_or("none", |s| s.reason.as_str())
        )));
    }
    if !prepared_images.iter().any(|image| image.split == Split::Train) {
        let count = |split| prepared_images.iter().filter(|image| image.split == split).count();
        return Err(DataError::Invalid(format!(
            "no usable image is in the training split ({} validation, {} test; splits {splits_from}): training and \
             the vocabulary need training images{}",
            count(Split::Validation),
            count(Split::Test),
            if any_split { "" } else { "; give --split-ratios a larger training share or use more images" }
        )));
    }

    Ok(())
}

/// Images and captions per split.
fn split_counts(prepared_images: &[PreparedImage], captions: &[PreparedCaption]) -> BTreeMap<String, SplitCounts> {
    let mut splits: BTreeMap<String, SplitCounts> = BTreeMap::new();
    for image in prepared_images {
        splits.entry(image.split.name().into()).or_default().images += 1;
    }
    for caption in captions {
        splits.entry(prepared_images[caption.image].split.name().into()).or_default().captions += 1;
    }
    splits
}

/// Checks that `out` may be written: absent, empty or a prepared dataset holding nothing but its
/// own files, and neither an input nor a folder holding one.
fn claim_dataset_folder(out: &Path, images: &ImageSource, input_files: &[PathBuf]) -> Result<(), DataError> {
    let mut inputs: Vec<&Path> = input_files.iter().map(PathBuf::as_path).collect();
    if let ImageSource::Folder(folder) = images {
        inputs.push(folder);
    }
    refuse_output_over_inputs(out, &inputs)?;
    let own = match PreparedDataset::own_files(out) {
        Ok(own) => own,
        Err(DataError::NotPrepared { .. }) => Default::default(),
        Err(e) => {
            return Err(DataError::Output {
                path: out.display().to_string(),
                problem: format!(
                    "looks like a prepared dataset, but which files are its own cannot be told ({e}); nothing was \
                     written or deleted: remove it yourself, or choose another folder"
                ),
            });
        }
    };
    // The layout is flat: top-level files and the images/ and resized-N/ folders of copies.
    claim_output_folder(out, "prepared dataset", &|relative, is_dir| {
        own.contains(relative) || (is_dir && own.iter().any(|file| file.starts_with(relative)))
    })
}

/// Refuses image names that would read outside `folder` (absolute, or through `..`), listing them
/// with their lines.
fn refuse_names_outside(records: &[CaptionRecord], folder: &Path) -> Result<(), DataError> {
    let inside = |name: &str| {
        let components = Path::new(name).components();
        !name.is_empty()
            && components.clone().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            && components.clone().any(|c| matches!(c, Component::Normal(_)))
    };
    let mut outside: Vec<String> = Vec::new();
    for record in records.iter().filter(|r| !inside(&r.image)) {
        if !outside.iter().any(|o| o.starts_with(&format!("{:?} ", record.image))) {
            outside.push(format!("{:?} (line {})", record.image, record.line));
        }
    }
    if outside.is_empty() {
        return Ok(());
    }
    let shown = outside.len().min(20);
    Err(DataError::Invalid(format!(
        "{} image names lead outside the images folder {} (absolute, or through \"..\"); nothing was read:\n  {}{}",
        outside.len(),
        folder.display(),
        outside[..shown].join("\n  "),
        if outside.len() > shown { format!("\n  … and {} more", outside.len() - shown) } else { String::new() }
    )))
}

fn group_by_image(records: &[CaptionRecord]) -> Vec<ImageGroup> {
    let mut groups: Vec<ImageGroup> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (r, record) in records.iter().enumerate() {
        let g = *index.entry(record.image.as_str()).or_insert_with(|| {
            groups.push(ImageGroup { id: record.image.clone(), split: record.split, records: Vec::new() });
            groups.len() - 1
        });
        groups[g].records.push(r);
    }
    groups
}

/// A file name safe to create inside the dataset folder for an image identifier.
fn file_name_for(id: &str) -> String {
    let name: String = id.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    // "", "." and ".." name no file of their own.
    if name.trim_matches('.').is_empty() { format!("_{name}_") } else { name }
}

fn check_one(
    group: &ImageGroup,
    images: &ImageSource,
    resize: Option<u32>,
    staging: &Path,
) -> Result<Checked, ImageProblem> {
    let (rgb, path, stamp) = match images {
        ImageSource::Folder(folder) => {
            let path = folder.join(&group.id);
            let data = crate::imaging::read_image_file(&path)?;
            let rgb = crate::check_image_bytes(&data)?;
            let stamp = FileStamp::of(&data, &path);
            (rgb, std::path::absolute(&path).unwrap_or(path), stamp)
        }
        ImageSource::Bytes(bytes) => {
            let data = bytes.get(&group.id).ok_or(ImageProblem::Missing)?;
            let rgb = crate::check_image_bytes(data)?;
            let relative = Path::new("images").join(file_name_for(&group.id));
            let target = staging.join(&relative);
            std::fs::create_dir_all(target.parent().expect("has a parent"))
                .and_then(|()| std::fs::write(&target, data))
                .map_err(|e| ImageProblem::Unreadable(format!("cannot store a copy: {e}")))?;
            // The copy keeps its modification time when the staging folder is renamed into place.
            (rgb, relative, FileStamp::of(data, &target))
        }
    };
    let resized = match resize {
        Some(side) => {
            let relative = Path::new(&format!("resized-{side}")).join(format!("{}.png", file_name_for(&group.id)));
            let target = staging.join(&relative);
            std::fs::create_dir_all(target.parent().expect("has a parent"))
                .map_err(|e| ImageProblem::Unreadable(format!("cannot store the resized copy: {e}")))?;
            ImageTransform::eval(side)
                .resized(&rgb)
                .save_with_format(&target, ImageFormat::Png)
                .map_err(|e| ImageProblem::Unreadable(format!("cannot store the resized copy: {e}")))?;
            Some(relative)
        }
        None => None,
    };
    Ok(Checked { width: rgb.width(), height: rgb.height(), path, resized, stamp })
}
