//! Datasets in parquet on the Hugging Face Hub (an image column `{bytes, path}` and caption
//! columns), downloaded with hf-hub (the local cache first) and read with polars.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use polars::prelude::*;

use crate::{CaptionRecord, DataError, Split};

/// Caption records and the bytes of each image by identifier.
pub type HubData = (Vec<CaptionRecord>, HashMap<String, Vec<u8>>);

/// Which columns hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubColumns {
    /// The image column: a struct `{bytes, path}` (the `datasets` Image feature) or binary.
    pub image: String,
    /// Caption columns: each a string, or a list of strings.
    pub captions: Vec<String>,
    /// A column naming the split, when the files are not split by name.
    pub split: Option<String>,
    /// A column naming the image file, when the image struct has no path.
    pub file_name: Option<String>,
}

/// A Hub dataset and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRecipe {
    /// `org/name`.
    pub repo: String,
    /// Its columns.
    pub columns: HubColumns,
}

impl HubRecipe {
    /// Flickr8k as `jxie/flickr8k` publishes it: `image`, `caption_0`..`caption_4`; train 6000 /
    /// validation 1000 / test 1000 files.
    pub fn flickr8k() -> Self {
        Self {
            repo: "jxie/flickr8k".into(),
            columns: HubColumns {
                image: "image".into(),
                captions: (0..5).map(|i| format!("caption_{i}")).collect(),
                split: None,
                file_name: None,
            },
        }
    }

    /// Flickr30k with Karpathy's splits as `umaru97/flickr30k_train_val_test` publishes it:
    /// `image`, `caption` (a list), `split`, `filename`.
    pub fn flickr30k() -> Self {
        Self {
            repo: "umaru97/flickr30k_train_val_test".into(),
            columns: HubColumns {
                image: "image".into(),
                captions: vec!["caption".into()],
                split: Some("split".into()),
                file_name: Some("filename".into()),
            },
        }
    }
}

/// The split a parquet file's path names (`train-00000-of-00001.parquet`, `data/test/...`).
pub fn split_from_path(path: &str) -> Option<Split> {
    let lower = path.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    if parts.contains(&"train") {
        Some(Split::Train)
    } else if parts.iter().any(|p| matches!(*p, "validation" | "val" | "valid" | "dev")) {
        Some(Split::Validation)
    } else if parts.contains(&"test") {
        Some(Split::Test)
    } else {
        None
    }
}

/// The parquet files of a dataset repository (relative names and local paths): from the cache
/// when its `refs/main` snapshot holds any, otherwise listed and downloaded through the Hub API
/// (`HF_ENDPOINT` honoured).
///
/// # Errors
/// [`DataError::Hub`] when neither works.
pub fn parquet_files(repo: &str, cache: &Cache) -> Result<Vec<(String, PathBuf)>, DataError> {
    let hub_error = |message: String| DataError::Hub { repo: repo.to_string(), message };
    let cached = cached_parquet_files(repo, cache);
    if !cached.is_empty() {
        return Ok(cached);
    }
    let api = ApiBuilder::from_env()
        .with_cache_dir(cache.path().clone())
        .with_progress(true)
        .build()
        .map_err(|e| hub_error(e.to_string()))?;
    let dataset = api.repo(Repo::new(repo.to_string(), RepoType::Dataset));
    let info = dataset.info().map_err(|e| {
        hub_error(format!("{e} (the cache {} holds no copy, so the Hub was asked)", cache.path().display()))
    })?;
    let mut names: Vec<String> =
        info.siblings.into_iter().map(|s| s.rfilename).filter(|n| n.ends_with(".parquet")).collect();
    names.sort();
    if names.is_empty() {
        return Err(hub_error("the repository has no parquet files".into()));
    }
    names
        .into_iter()
        .map(|name| {
            let path = dataset.get(&name).map_err(|e| hub_error(format!("{name}: {e}")))?;
            Ok((name, path))
        })
        .collect()
}

fn cached_parquet_files(repo: &str, cache: &Cache) -> Vec<(String, PathBuf)> {
    let folder = cache.path().join(format!("datasets--{}", repo.replace('/', "--")));
    let Ok(revision) = std::fs::read_to_string(folder.join("refs").join("main")) else { return Vec::new() };
    let snapshot = folder.join("snapshots").join(revision.trim());
    let mut files = Vec::new();
    let mut stack = vec![snapshot.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let name = path.strip_prefix(&snapshot).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                files.push((name, path));
            }
        }
    }
    files.sort();
    files
}

/// Reads one parquet file: a record per caption and the image bytes by identifier. The split
/// comes from the split column, else from `file_split`.
///
/// # Errors
/// [`DataError::Parquet`] naming the file and the column or row at fault.
pub fn read_parquet_file(path: &Path, columns: &HubColumns, file_split: Option<Split>) -> Result<HubData, DataError> {
    let name = path.display().to_string();
    let fail = |message: String| DataError::Parquet { path: name.clone(), message };
    let file = std::fs::File::open(path).map_err(|source| DataError::Io { path: name.clone(), source })?;
    let frame = ParquetReader::new(file).finish().map_err(|e| fail(e.to_string()))?;
    let column = |c: &str| frame.column(c).map_err(|_| fail(format!("no column {c:?}")));
    let image_column = column(&columns.image)?.as_materialized_series().clone();
    let (bytes, paths): (Vec<Option<Vec<u8>>>, Vec<Option<String>>) = match image_column.dtype() {
        DataType::Struct(_) => {
            let fields = image_column.struct_().map_err(|e| fail(e.to_string()))?.fields_as_series();
            let field = |n: &str| fields.iter().find(|f| f.name().as_str() == n);
            let bytes =
                field("bytes").ok_or_else(|| fail(format!("column {:?} has no `bytes` field", columns.image)))?;
            let bytes = bytes.binary().map_err(|e| fail(format!("{}.bytes: {e}", columns.image)))?;
            let paths: Vec<Option<String>> = match field("path") {
                Some(p) => p.str().map_err(|e| fail(e.to_string()))?.iter().map(|v| v.map(str::to_string)).collect(),
                None => vec![None; frame.height()],
            };
            (bytes.iter().map(|b| b.map(<[u8]>::to_vec)).collect(), paths)
        }
        DataType::Binary => {
            let bytes = image_column.binary().map_err(|e| fail(e.to_string()))?;
            (bytes.iter().map(|b| b.map(<[u8]>::to_vec)).collect(), vec![None; frame.height()])
        }
        other => return Err(fail(format!("column {:?} is {other}, not an image", columns.image))),
    };
    let strings = |c: &str| -> Result<Vec<Option<String>>, DataError> {
        let series = column(c)?.as_materialized_series().clone();
        Ok(series.str().map_err(|e| fail(format!("{c}: {e}")))?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let splits = columns.split.as_deref().map(strings).transpose()?;
    let file_names = columns.file_name.as_deref().map(strings).transpose()?;
    let mut captions_per_row: Vec<Vec<String>> = vec![Vec::new(); frame.height()];
    for c in &columns.captions {
        let series = column(c)?.as_materialized_series().clone();
        match series.dtype() {
            DataType::String => {
                for (row, value) in series.str().map_err(|e| fail(e.to_string()))?.iter().enumerate() {
                    captions_per_row[row].extend(value.map(str::to_string));
                }
            }
            DataType::List(inner) if **inner == DataType::String => {
                let lists = series.list().map_err(|e| fail(e.to_string()))?;
                for (row, captions) in captions_per_row.iter_mut().enumerate() {
                    if let Some(list) = lists.get_as_series(row) {
                        let list = list.str().map_err(|e| fail(e.to_string()))?.clone();
                        captions.extend(list.iter().flatten().map(str::to_string));
                    }
                }
            }
            other => return Err(fail(format!("caption column {c:?} is {other}, not text"))),
        }
    }
    let stem = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut records = Vec::new();
    let mut images = HashMap::new();
    for row in 0..frame.height() {
        let id = file_names
            .as_ref()
            .and_then(|f| f[row].clone())
            .or_else(|| paths[row].clone().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| format!("{stem}-{row}"));
        let split = match &splits {
            Some(s) => match s[row].as_deref() {
                Some(text) => Some(text.parse().map_err(|e: String| fail(format!("row {row}: {e}")))?),
                None => None,
            },
            None => file_split,
        };
        let bytes = bytes[row].clone().unwrap_or_default();
        images.insert(id.clone(), bytes);
        for caption in &captions_per_row[row] {
            if caption.trim().is_empty() {
                continue;
            }
            records.push(CaptionRecord { image: id.clone(), caption: caption.clone(), line: row as u64 + 1, split });
        }
    }
    Ok((records, images))
}

/// The records and images of `recipe`'s dataset, ready for [`crate::prepare`], with `options`
/// describing them (its Hub address as the source, format `hub`); the name is left as `options`
/// has it.
///
/// # Errors
/// As [`read_recipe`].
pub fn source(
    recipe: &HubRecipe,
    cache: &Cache,
    options: &mut crate::PrepareOptions,
) -> Result<(Vec<CaptionRecord>, crate::ImageSource), DataError> {
    let (records, images) = read_recipe(recipe, cache)?;
    options.source = format!("https://huggingface.co/datasets/{}", recipe.repo);
    options.format = "hub".into();
    Ok((records, crate::ImageSource::Bytes(images)))
}

/// Every parquet file of a recipe: records (splits from the files' names or the split column)
/// and image bytes.
///
/// # Errors
/// [`DataError::Hub`] or [`DataError::Parquet`].
pub fn read_recipe(recipe: &HubRecipe, cache: &Cache) -> Result<HubData, DataError> {
    let mut records = Vec::new();
    let mut images = HashMap::new();
    for (name, path) in parquet_files(&recipe.repo, cache)? {
        let (r, i) = read_parquet_file(&path, &recipe.columns, split_from_path(&name))?;
        records.extend(r);
        images.extend(i);
    }
    if records.is_empty() {
        return Err(DataError::Empty { path: recipe.repo.clone() });
    }
    Ok((records, images))
}
