//! The prepared dataset on disk: `captions.parquet`, `images.parquet`, `tokenizer.json`,
//! `manifest.json` (and, for generated or downloaded data, the image files), written atomically.
//!
//! ```text
//! datasets/<name>/
//!   manifest.json      counts, skipped images with reasons, vocabulary, source, file hashes
//!   captions.parquet   image, split, caption_index, caption, token_ids (list<u32>, no SOS/EOS)
//!   images.parquet     image, split, path, width, height, status, resized
//!   tokenizer.json     the vocabulary as a Hugging Face tokenizer
//!   images/            image files when the source had no folder of its own (Hub, shapes)
//!   resized-<N>/       pre-resized N × N PNGs, when asked for
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use caption_text::Vocabulary;
use polars::prelude::*;

use crate::manifest::{LAYOUT_VERSION, Manifest, hex};
use crate::{DataError, Split};

/// One caption row of a prepared dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCaption {
    /// Row of the image in [`PreparedDataset::images`].
    pub image: usize,
    /// Position of this caption among its image's captions (0-based, source order).
    pub caption_index: u32,
    /// The caption exactly as in the source.
    pub text: String,
    /// Token ids (no `<SOS>`/`<EOS>`; unknown words are `<UNK>`).
    pub token_ids: Vec<u32>,
}

/// One image row of a prepared dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// The image's identifier in the source (its file name for Flickr8k and COCO).
    pub id: String,
    /// Its split.
    pub split: Split,
    /// Where the file is: absolute, or relative to the dataset folder.
    pub path: PathBuf,
    /// Width in pixels (as decoded).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pre-resized copy, relative to the dataset folder, if one was written.
    pub resized: Option<PathBuf>,
    /// The file as it was prepared (none in datasets prepared before images were stamped).
    pub stamp: Option<FileStamp>,
}

/// What an image file was when its dataset was prepared: [`PreparedDataset::open`] checks that
/// each file still is (its size and modification time, and its SHA-256 when the time differs).
/// Size and hash are in images.parquet, the time in manifest.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch (when the system gives one).
    pub modified_ns: Option<i64>,
    /// SHA-256 of the bytes, as hex.
    pub sha256: String,
}

impl FileStamp {
    /// The stamp of a file's `bytes`, with its modification time read from `path`.
    pub fn of(bytes: &[u8], path: &Path) -> Self {
        let modified_ns = fs::metadata(path).ok().as_ref().and_then(modified_ns);
        Self { bytes: bytes.len() as u64, modified_ns, sha256: sha256_hex(bytes) }
    }

    /// Why the file at `path` is not the one stamped, if it is not: cheap when its size and
    /// modification time are unchanged (nothing is read), its bytes hashed otherwise.
    pub fn changed(&self, path: &Path) -> Option<String> {
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(e) => return Some(format!("cannot be read ({e})")),
        };
        if metadata.len() != self.bytes {
            return Some(format!("is {} bytes; it was {} when the dataset was prepared", metadata.len(), self.bytes));
        }
        if self.modified_ns.is_some() && modified_ns(&metadata) == self.modified_ns {
            return None;
        }
        match fs::read(path) {
            Ok(bytes) if sha256_hex(&bytes) == self.sha256 => None,
            Ok(_) => Some("holds other bytes than when the dataset was prepared (its SHA-256 differs)".into()),
            Err(e) => Some(format!("cannot be read ({e})")),
        }
    }
}

/// A file's modification time (from its metadata) in nanoseconds since the Unix epoch.
fn modified_ns(metadata: &fs::Metadata) -> Option<i64> {
    let modified = metadata.modified().ok()?;
    i64::try_from(modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos()).ok()
}

/// A prepared dataset: usable images, their captions, the vocabulary and the manifest.
#[derive(Debug, Clone)]
pub struct PreparedDataset {
    /// The folder it lives in (empty until written or opened).
    pub root: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// Usable images.
    pub images: Vec<PreparedImage>,
    /// Captions of usable images, in source order.
    pub captions: Vec<PreparedCaption>,
    /// The vocabulary.
    pub vocabulary: Vocabulary,
}

const CAPTIONS: &str = "captions.parquet";
const IMAGES: &str = "images.parquet";
const TOKENIZER: &str = "tokenizer.json";
const MANIFEST: &str = "manifest.json";

impl PreparedDataset {
    /// Path of an image file (resolving paths relative to the dataset folder).
    pub fn image_path(&self, image: &PreparedImage) -> PathBuf {
        self.root.join(&image.path)
    }

    /// Rows of the images in `split`.
    pub fn images_in(&self, split: Split) -> Vec<usize> {
        (0..self.images.len()).filter(|&i| self.images[i].split == split).collect()
    }

    /// Rows of the captions whose image is in `split`.
    pub fn captions_in(&self, split: Split) -> Vec<usize> {
        (0..self.captions.len()).filter(|&i| self.images[self.captions[i].image].split == split).collect()
    }

    /// The reference captions of every image, by image row, as raw text.
    pub fn references(&self) -> Vec<Vec<&str>> {
        let mut references = vec![Vec::new(); self.images.len()];
        for caption in &self.captions {
            references[caption.image].push(caption.text.as_str());
        }
        references
    }

    /// Whether `root` holds a prepared dataset (of any layout version): its manifest.json reads as
    /// JSON with a layout version and file hashes. Cheap: nothing else is read.
    pub fn is_prepared(root: &Path) -> bool {
        crate::read_input_file(&root.join(MANIFEST), crate::MAX_CAPTIONS_FILE_BYTES)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|manifest| manifest.get("layout_version").is_some() && manifest.get("files").is_some())
    }

    /// Opens a prepared dataset, checking that every file's hash matches the manifest.
    ///
    /// # Errors
    /// [`DataError::NotPrepared`] when the folder has no manifest (an unfinished write never has
    /// one), [`DataError::Corrupt`] when a file is missing or its hash differs, or a read error.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let manifest_path = root.join(MANIFEST);
        if !manifest_path.is_file() {
            return Err(DataError::NotPrepared { path: root.display().to_string() });
        }
        let manifest_text = read_to_string(&manifest_path)?;
        let manifest: Manifest =
            serde_json::from_str(&manifest_text).map_err(|e| corrupt(root, format!("manifest.json: {e}")))?;
        if manifest.layout_version != LAYOUT_VERSION {
            return Err(DataError::OtherLayout {
                path: root.display().to_string(),
                found: manifest.layout_version,
                expected: LAYOUT_VERSION,
            });
        }
        for (file, expected) in &manifest.files {
            let bytes = fs::read(root.join(file)).map_err(|e| corrupt(root, format!("{file}: {e}")))?;
            if sha256_hex(&bytes) != *expected {
                return Err(corrupt(root, format!("{file} does not match the hash in manifest.json")));
            }
        }
        let vocabulary = Vocabulary::load(&root.join(TOKENIZER)).map_err(|e| corrupt(root, format!("{e}")))?;
        let mut images = read_images(root)?;
        for image in &mut images {
            if let Some(stamp) = &mut image.stamp {
                stamp.modified_ns = manifest.image_modified_ns.get(&image.id).copied();
            }
        }
        let captions = read_captions(root, &images, vocabulary.len())?;
        let dataset = Self { root: root.to_path_buf(), manifest, images, captions, vocabulary };
        dataset.check_images()?;
        Ok(dataset)
    }

    /// Checks that every stamped image file is still the one prepared ([`FileStamp::changed`]),
    /// in parallel; the first that is not is named.
    ///
    /// # Errors
    /// [`DataError::Corrupt`] naming the image and what changed.
    pub fn check_images(&self) -> Result<(), DataError> {
        use rayon::prelude::*;
        let changed = self.images.par_iter().find_map_first(|image| {
            let stamp = image.stamp.as_ref()?;
            let path = self.image_path(image);
            stamp.changed(&path).map(|why| format!("image {} ({}) {why}", image.id, path.display()))
        });
        match changed {
            None => Ok(()),
            Some(problem) => Err(corrupt(
                &self.root,
                format!("{problem}: the dataset's captions may no longer be this picture's; prepare it again"),
            )),
        }
    }

    /// The files a prepared dataset folder consists of, relative to `root`: manifest.json, every
    /// file the manifest hashes, and the image copies and resized copies images.parquet lists.
    /// What [`crate::prepare`] may replace; anything else in the folder is the user's.
    ///
    /// # Errors
    /// [`DataError::NotPrepared`] without a manifest, or an error reading the manifest or
    /// images.parquet.
    pub fn own_files(root: &Path) -> Result<std::collections::HashSet<PathBuf>, DataError> {
        let manifest_path = root.join(MANIFEST);
        if !manifest_path.is_file() {
            return Err(DataError::NotPrepared { path: root.display().to_string() });
        }
        let manifest: Manifest = serde_json::from_str(&read_to_string(&manifest_path)?)
            .map_err(|e| corrupt(root, format!("manifest.json: {e}")))?;
        let mut own: std::collections::HashSet<PathBuf> = manifest.files.keys().map(PathBuf::from).collect();
        own.insert(PathBuf::from(MANIFEST));
        for image in read_images(root)? {
            own.extend(image.resized);
            if image.path.is_relative() {
                own.insert(image.path);
            }
        }
        Ok(own)
    }

    /// Writes the tables, tokenizer and manifest into `staging` (a folder being filled by
    /// [`StagingDir`]), filling in the manifest's file hashes.
    ///
    /// # Errors
    /// [`DataError::Io`] or [`DataError::Parquet`].
    pub(crate) fn write_tables(&mut self, staging: &Path, extra_files: &[(String, Vec<u8>)]) -> Result<(), DataError> {
        let mut captions = captions_frame(self).map_err(|e| parquet_error(staging, CAPTIONS, e))?;
        write_parquet(&staging.join(CAPTIONS), &mut captions)?;
        let mut images = images_frame(self).map_err(|e| parquet_error(staging, IMAGES, e))?;
        write_parquet(&staging.join(IMAGES), &mut images)?;
        write_file(&staging.join(TOKENIZER), self.vocabulary.to_tokenizer_json().as_bytes())?;
        self.manifest.files.clear();
        let extra = extra_files.iter().map(|(name, _)| name.as_str());
        for file in [CAPTIONS, IMAGES, TOKENIZER].into_iter().chain(extra) {
            let bytes = fs::read(staging.join(file)).map_err(|e| io(staging.join(file), e))?;
            self.manifest.files.insert(file.to_string(), sha256_hex(&bytes));
        }
        let manifest = serde_json::to_string_pretty(&self.manifest).expect("the manifest always serialises");
        write_file(&staging.join(MANIFEST), manifest.as_bytes())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

fn io(path: PathBuf, source: std::io::Error) -> DataError {
    DataError::Io { path: path.display().to_string(), source }
}

fn corrupt(root: &Path, problem: String) -> DataError {
    DataError::Corrupt { path: root.display().to_string(), problem }
}

/// Writes `bytes` to `path` (inside a staged folder) and flushes them to disk.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    caption_io::write_synced(path, |file| std::io::Write::write_all(file, bytes)).map_err(|e| io(path.to_path_buf(), e))
}

fn parquet_error(root: &Path, file: &str, e: PolarsError) -> DataError {
    DataError::Parquet { path: root.join(file).display().to_string(), message: e.to_string() }
}

fn read_to_string(path: &Path) -> Result<String, DataError> {
    fs::read_to_string(path).map_err(|e| io(path.to_path_buf(), e))
}

fn write_parquet(path: &Path, frame: &mut DataFrame) -> Result<(), DataError> {
    let mut parquet_error = None;
    let arrow_schema = polars_parquet::arrow::write::schema_to_metadata_key(&plain_arrow_schema(frame));
    let written = caption_io::write_synced(path, |file| {
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(KeyValueMetadata::Static(vec![arrow_schema])))
            .finish(frame)
            .map(drop)
            .map_err(|e| {
                parquet_error = Some(e.to_string());
                std::io::Error::other("parquet")
            })
    });
    match (written, parquet_error) {
        (_, Some(message)) => Err(DataError::Parquet { path: path.display().to_string(), message }),
        (result, None) => result.map_err(|e| io(path.to_path_buf(), e)),
    }
}

/// The Arrow schema stored in the files (the `ARROW:schema` key readers take their column types
/// from): strings as `string` and lists as `list`, the plain types every Arrow reader knows.
/// polars would store its newest ones (`string_view`, `large_list`), which pyarrow before 16 and
/// other older readers refuse.
fn plain_arrow_schema(frame: &DataFrame) -> ArrowSchema {
    fn plain(dtype: ArrowDataType) -> ArrowDataType {
        match dtype {
            ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View => ArrowDataType::Utf8,
            ArrowDataType::LargeList(item) | ArrowDataType::List(item) => {
                ArrowDataType::List(Box::new(ArrowField::new("element".into(), plain(item.dtype.clone()), true)))
            }
            other => other,
        }
    }
    frame
        .schema()
        .iter()
        .map(|(name, dtype)| {
            let field = ArrowField::new(name.clone(), plain(dtype.to_arrow(CompatLevel::oldest())), true);
            (name.clone(), field)
        })
        .collect()
}

fn read_parquet(path: &Path) -> Result<DataFrame, DataError> {
    let file = File::open(path).map_err(|e| io(path.to_path_buf(), e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| DataError::Parquet { path: path.display().to_string(), message: e.to_string() })
}

fn captions_frame(dataset: &PreparedDataset) -> PolarsResult<DataFrame> {
    let rows = &dataset.captions;
    let image: Vec<&str> = rows.iter().map(|c| dataset.images[c.image].id.as_str()).collect();
    let split: Vec<&str> = rows.iter().map(|c| dataset.images[c.image].split.name()).collect();
    let index: Vec<u32> = rows.iter().map(|c| c.caption_index).collect();
    let text: Vec<&str> = rows.iter().map(|c| c.text.as_str()).collect();
    let ids: Vec<Series> = rows.iter().map(|c| Series::new("".into(), c.token_ids.as_slice())).collect();
    let mut ids = Series::new("token_ids".into(), ids);
    if rows.is_empty() {
        ids = ids.cast(&DataType::List(Box::new(DataType::UInt32)))?;
    }
    DataFrame::new_infer_height(vec![
        Series::new("image".into(), image).into(),
        Series::new("split".into(), split).into(),
        Series::new("caption_index".into(), index).into(),
        Series::new("caption".into(), text).into(),
        ids.into(),
    ])
}

fn images_frame(dataset: &PreparedDataset) -> PolarsResult<DataFrame> {
    let rows = &dataset.images;
    let path_text = |p: &Path| p.to_string_lossy().into_owned();
    DataFrame::new_infer_height(vec![
        Series::new("image".into(), rows.iter().map(|i| i.id.as_str()).collect::<Vec<_>>()).into(),
        Series::new("split".into(), rows.iter().map(|i| i.split.name()).collect::<Vec<_>>()).into(),
        Series::new("path".into(), rows.iter().map(|i| path_text(&i.path)).collect::<Vec<_>>()).into(),
        Series::new("width".into(), rows.iter().map(|i| i.width).collect::<Vec<_>>()).into(),
        Series::new("height".into(), rows.iter().map(|i| i.height).collect::<Vec<_>>()).into(),
        Series::new("resized".into(), rows.iter().map(|i| i.resized.as_deref().map(path_text)).collect::<Vec<_>>())
            .into(),
        Series::new("file_bytes".into(), rows.iter().map(|i| i.stamp.as_ref().map(|s| s.bytes)).collect::<Vec<_>>())
            .into(),
        Series::new(
            "file_sha256".into(),
            rows.iter().map(|i| i.stamp.as_ref().map(|s| s.sha256.clone())).collect::<Vec<_>>(),
        )
        .into(),
    ])
}

fn column<'a>(frame: &'a DataFrame, file: &Path, name: &str) -> Result<&'a Column, DataError> {
    frame
        .column(name)
        .map_err(|_| DataError::Parquet { path: file.display().to_string(), message: format!("no column {name:?}") })
}

fn typed<T>(file: &Path, name: &str, result: PolarsResult<T>) -> Result<T, DataError> {
    result
        .map_err(|e| DataError::Parquet { path: file.display().to_string(), message: format!("column {name:?}: {e}") })
}

fn read_images(root: &Path) -> Result<Vec<PreparedImage>, DataError> {
    let file = root.join(IMAGES);
    let frame = read_parquet(&file)?;
    let strings = |name: &str| -> Result<Vec<Option<String>>, DataError> {
        let column = column(&frame, &file, name)?;
        let values = typed(&file, name, column.str())?;
        Ok(values.iter().map(|v| v.map(str::to_string)).collect())
    };
    let numbers = |name: &str| -> Result<Vec<Option<u32>>, DataError> {
        let column = column(&frame, &file, name)?;
        Ok(typed(&file, name, column.u32())?.iter().collect())
    };
    let (ids, splits, paths, resized) = (strings("image")?, strings("split")?, strings("path")?, strings("resized")?);
    let (widths, heights) = (numbers("width")?, numbers("height")?);
    // Stamps: datasets prepared before them have none.
    let stamped = frame.column("file_sha256").is_ok();
    let (sizes, hashes) = if stamped {
        let sizes: Vec<Option<u64>> =
            typed(&file, "file_bytes", column(&frame, &file, "file_bytes")?.u64())?.iter().collect();
        (sizes, strings("file_sha256")?)
    } else {
        (vec![None; ids.len()], vec![None; ids.len()])
    };
    let bad = |row: usize, what: &str| DataError::Parquet {
        path: file.display().to_string(),
        message: format!("row {row}: {what}"),
    };
    let mut images = Vec::with_capacity(ids.len());
    for row in 0..ids.len() {
        let split = splits[row].as_deref().ok_or_else(|| bad(row, "no split"))?;
        images.push(PreparedImage {
            id: ids[row].clone().ok_or_else(|| bad(row, "no image id"))?,
            split: split.parse().map_err(|e: String| bad(row, &e))?,
            path: PathBuf::from(paths[row].clone().ok_or_else(|| bad(row, "no path"))?),
            width: widths[row].ok_or_else(|| bad(row, "no width"))?,
            height: heights[row].ok_or_else(|| bad(row, "no height"))?,
            resized: resized[row].clone().map(PathBuf::from),
            stamp: match (sizes[row], &hashes[row]) {
                (Some(bytes), Some(sha256)) => Some(FileStamp { bytes, modified_ns: None, sha256: sha256.clone() }),
                _ => None,
            },
        });
    }
    Ok(images)
}

/// The caption rows; every token id must be a word's (or `<UNK>`): `<PAD>`, `<SOS>`, `<EOS>` and
/// ids beyond the vocabulary are refused, naming the row.
fn read_captions(root: &Path, images: &[PreparedImage], vocab_size: usize) -> Result<Vec<PreparedCaption>, DataError> {
    let file = root.join(CAPTIONS);
    let frame = read_parquet(&file)?;
    let row_of: std::collections::HashMap<&str, usize> =
        images.iter().enumerate().map(|(i, image)| (image.id.as_str(), i)).collect();
    let image = typed(&file, "image", column(&frame, &file, "image")?.str())?;
    let index = typed(&file, "caption_index", column(&frame, &file, "caption_index")?.u32())?;
    let text = typed(&file, "caption", column(&frame, &file, "caption")?.str())?;
    let ids = typed(&file, "token_ids", column(&frame, &file, "token_ids")?.list())?;
    let bad = |row: usize, what: String| DataError::Parquet {
        path: file.display().to_string(),
        message: format!("row {row}: {what}"),
    };
    let mut captions = Vec::with_capacity(frame.height());
    for (row, ((image, index), text)) in image.iter().zip(index.iter()).zip(text.iter()).enumerate() {
        let image = image.ok_or_else(|| bad(row, "no image".into()))?;
        let ids = ids.get_as_series(row).ok_or_else(|| bad(row, "no token ids".into()))?;
        let ids = typed(&file, "token_ids", ids.u32())?;
        let token_ids: Vec<u32> = ids
            .iter()
            .map(|id| match id {
                Some(id) if id >= Vocabulary::UNK && (id as usize) < vocab_size => Ok(id),
                Some(id) if id < Vocabulary::UNK => Err(bad(
                    row,
                    format!("token id {id} is {}: captions hold words only", Vocabulary::SPECIALS[id as usize]),
                )),
                Some(id) => Err(bad(row, format!("token id {id} is beyond the vocabulary ({vocab_size} ids)"))),
                None => Err(bad(row, "a missing token id".into())),
            })
            .collect::<Result<_, _>>()?;
        captions.push(PreparedCaption {
            image: *row_of.get(image).ok_or_else(|| bad(row, format!("image {image:?} is not in images.parquet")))?,
            caption_index: index.ok_or_else(|| bad(row, "no caption index".into()))?,
            text: text.ok_or_else(|| bad(row, "no caption".into()))?.to_string(),
            token_ids,
        });
    }
    Ok(captions)
}
