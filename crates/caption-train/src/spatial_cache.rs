//! The frozen attention model's cache of encoder grids: every dataset image's Inception v3
//! Mixed_7c output as the decoder reads it (positions × 2048, 64 × 2048 at 299 px), computed once
//! and read batch by batch from a memory-mapped file, so training memory does not grow with the
//! dataset (Flickr8k: 8,091 images, 4.2 GB in float32, 2.1 GB in float16).
//!
//! The file is a safetensors file (PyTorch's `safe_open` reads it) with one tensor, `grid`
//! (images × positions × 2048, `F32` or `F16`), written as the images are encoded, and in its
//! metadata under [`CACHE_METADATA_KEY`] the [`GridOrigin`] it was computed from. A cache whose
//! origin is not the run's (another encoder, image size, input transform or dataset) is refused
//! rather than reused. Under [`CHECKSUM_METADATA_KEY`] the metadata holds each image's CRC-32 (8
//! hex digits an image, in row order) over its stored bytes: a cache whose bytes changed (a disk
//! error, a stray write) fails [`GridCache::open`]'s check and is rebuilt, never trained on.

use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The metadata key of the cache's [`GridOrigin`].
pub const CACHE_METADATA_KEY: &str = "caption.feature_cache";
/// The metadata key of the per-image CRC-32s.
pub const CHECKSUM_METADATA_KEY: &str = "caption.grid_crc32";
/// The tensor's name.
pub const GRID_TENSOR: &str = "grid";

/// What a cache's grids were computed from: a cache is only read by a run whose origin is equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridOrigin {
    /// The encoder's weights (and for random ones, the seed and calibration).
    pub encoder: String,
    /// The side images were resized to.
    pub image_size: u32,
    /// Inception's `transform_input`.
    pub transform_input: bool,
    /// The image resampler.
    pub resampler: String,
    /// The prepared dataset's content hash.
    pub dataset: String,
}

impl std::fmt::Display for GridOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "encoder {}, image size {}, transform_input {}, resampler {}, dataset {}",
            self.encoder, self.image_size, self.transform_input, self.resampler, self.dataset
        )
    }
}

/// How the grids are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// 4 bytes a value.
    Float32,
    /// 2 bytes a value (rounded to nearest).
    Float16,
}

impl Storage {
    fn name(self) -> &'static str {
        match self {
            Self::Float32 => "F32",
            Self::Float16 => "F16",
        }
    }

    fn bytes(self) -> usize {
        match self {
            Self::Float32 => 4,
            Self::Float16 => 2,
        }
    }
}

/// What [`GridCache::open`] found.
pub enum Opened {
    /// A complete cache whose every image matches its checksum.
    Ready(GridCache),
    /// No file.
    Absent,
    /// A file that is no usable cache, and why (it is rebuilt).
    Unusable(String),
}

/// A cache file open for reading.
pub struct GridCache {
    map: memmap2::Mmap,
    /// Where the tensor's bytes start in the file.
    start: usize,
    images: usize,
    positions: usize,
    channels: usize,
    storage: Storage,
    path: PathBuf,
}

impl GridCache {
    /// Opens the cache at `path` for `images` images computed from `origin`, reading every byte
    /// once to check each image's checksum: [`Opened::Absent`] when there is none,
    /// [`Opened::Unusable`] when the file is not a complete cache (not a cache of `images` grids,
    /// shorter than its header says, without checksums, or an image whose bytes changed: it is
    /// then rebuilt).
    ///
    /// # Errors
    /// [`TrainError::Config`] when it holds grids of another origin (naming both), or I/O.
    pub fn open(path: &Path, origin: &GridOrigin, images: usize) -> Result<Opened, TrainError> {
        let unusable = |why: &str| Ok(Opened::Unusable(why.to_string()));
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Absent),
            Err(source) => return Err(TrainError::Io { path: path.display().to_string(), source }),
        };
        // SAFETY: the run folder is locked by this process; the file is replaced only by renaming
        // a new one over it (never written in place), so the mapped bytes do not change.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|source| TrainError::Io { path: path.display().to_string(), source })?;
        let Ok((header_length, header)) = safetensors::SafeTensors::read_metadata(&map) else {
            return unusable("not a complete safetensors file");
        };
        let metadata = header.metadata().clone().unwrap_or_default();
        let saved: Option<GridOrigin> =
            metadata.get(CACHE_METADATA_KEY).and_then(|text| serde_json::from_str(text).ok());
        let Some(saved) = saved else { return unusable("no grid cache's origin in its metadata") };
        if saved != *origin {
            return Err(TrainError::Config(format!(
                "{} holds encoder grids computed from {saved}; this run needs {origin}: refused, not reused (move \
                 the file away and the run computes its own)",
                path.display()
            )));
        }
        let Some(info) = header.tensors().get(GRID_TENSOR).cloned() else { return unusable("no `grid` tensor") };
        let storage = match info.dtype {
            safetensors::Dtype::F32 => Storage::Float32,
            safetensors::Dtype::F16 => Storage::Float16,
            _ => return unusable("grids neither F32 nor F16"),
        };
        let &[rows, positions, channels] = info.shape.as_slice() else { return unusable("grids not 3-dimensional") };
        if rows != images {
            return Ok(Opened::Unusable(format!("{rows} images cached, the dataset has {images}")));
        }
        let Some(checksums) = metadata.get(CHECKSUM_METADATA_KEY).filter(|c| c.len() == 8 * images) else {
            return unusable("no checksums (written by an earlier version)");
        };
        // `read_metadata` has checked that the file holds every byte the header describes, and
        // that each tensor's bytes fit its shape and dtype.
        let start = 8 + header_length + info.data_offsets.0;
        let cache = Self { map, start, images, positions, channels, storage, path: path.to_path_buf() };
        if let Some(row) = cache.first_changed_row(checksums) {
            return Ok(Opened::Unusable(format!("image row {row}'s grid does not match its checksum")));
        }
        Ok(Opened::Ready(cache))
    }

    /// The stored bytes of an image's grid.
    fn row_bytes(&self, row: usize) -> &[u8] {
        let size = self.positions * self.channels * self.storage.bytes();
        &self.map[self.start + row * size..self.start + (row + 1) * size]
    }

    /// The first row whose bytes do not match its checksum (`checksums`: 8 hex digits a row).
    fn first_changed_row(&self, checksums: &str) -> Option<usize> {
        use rayon::prelude::*;
        (0..self.images).into_par_iter().find_first(|&row| {
            let expected = u32::from_str_radix(&checksums[8 * row..8 * row + 8], 16).ok();
            expected != Some(crc32fast::hash(self.row_bytes(row)))
        })
    }

    /// Grids of `rows` (batch × positions × channels, float32 on `device`).
    ///
    /// # Errors
    /// A row out of range, or a candle error.
    pub fn rows(&self, rows: &[usize], device: &Device) -> Result<Tensor, TrainError> {
        let per_image = self.positions * self.channels;
        let mut values = vec![0f32; rows.len() * per_image];
        for (out, &row) in values.chunks_exact_mut(per_image).zip(rows) {
            if row >= self.images {
                return Err(TrainError::Config(format!(
                    "{}: image row {row} asked of a cache of {} images",
                    self.path.display(),
                    self.images
                )));
            }
            let bytes = self.row_bytes(row);
            match self.storage {
                Storage::Float32 => {
                    for (value, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                        *value = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                }
                Storage::Float16 => {
                    let halves: Vec<f16> = bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect();
                    halves.convert_to_f32_slice(out);
                }
            }
        }
        Ok(Tensor::from_vec(values, (rows.len(), self.positions, self.channels), device)?)
    }

    /// Images × positions × channels.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.images, self.positions, self.channels)
    }
}

/// Writes the cache atomically: the grids of `images` images from `encode`, called with
/// successive chunks of image rows (in order) and returning their grids (chunk × positions ×
/// channels, the same for every chunk).
///
/// # Errors
/// The first error of `encode`, or I/O.
pub fn write_cache(
    path: &Path,
    origin: &GridOrigin,
    images: usize,
    storage: Storage,
    chunk: usize,
    mut encode: impl FnMut(&[usize]) -> Result<Tensor, TrainError>,
) -> Result<(), TrainError> {
    let all: Vec<usize> = (0..images).collect();
    let mut chunks = all.chunks(chunk.max(1));
    let mut grids = |rows: &[usize]| -> Result<(Vec<f32>, (usize, usize)), TrainError> {
        let grid = encode(rows)?;
        let (_, positions, channels) = grid.dims3()?;
        Ok((grid.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?, (positions, channels)))
    };
    let Some(first) = chunks.next() else {
        return Err(TrainError::Config("no images to encode".into()));
    };
    let (first, (positions, channels)) = grids(first)?;
    let bytes = images * positions * channels * storage.bytes();
    let header = |checksums: &str| {
        let metadata = serde_json::json!({
            CACHE_METADATA_KEY: serde_json::to_string(origin).expect("serialises"),
            CHECKSUM_METADATA_KEY: checksums,
        });
        let header = serde_json::json!({
            GRID_TENSOR: {"dtype": storage.name(), "shape": [images, positions, channels], "data_offsets": [0, bytes]},
            "__metadata__": metadata,
        });
        let mut header = serde_json::to_string(&header).expect("JSON serialises").into_bytes();
        // The format allows padding the header with spaces; 8-byte alignment lets readers map the data.
        header.resize(header.len().next_multiple_of(8), b' ');
        header
    };
    // The checksums are known once every grid is written: the header is written with zeros in
    // their place, then again with them (the same length: 8 hex digits an image).
    let mut checksums = String::with_capacity(8 * images);
    let placeholder = header(&"0".repeat(8 * images));
    let row_bytes = positions * channels * storage.bytes();
    let mut failure = None;
    let written = caption_io::write_atomically(path, |file| {
        file.write_all(&(placeholder.len() as u64).to_le_bytes())?;
        file.write_all(&placeholder)?;
        let mut write_rows = |file: &mut std::io::BufWriter<File>, values: &[f32]| -> std::io::Result<()> {
            let stored = stored_bytes(values, storage);
            for row in stored.chunks(row_bytes) {
                checksums.push_str(&format!("{:08x}", crc32fast::hash(row)));
            }
            file.write_all(&stored)
        };
        write_rows(file, &first)?;
        for rows in chunks {
            match grids(rows) {
                Ok((values, shape)) if shape == (positions, channels) => write_rows(file, &values)?,
                Ok((_, (p, c))) => {
                    failure = Some(TrainError::Config(format!(
                        "the encoder gave grids of {p} × {c} after {positions} × {channels}"
                    )));
                    return Err(std::io::Error::other("encoding failed"));
                }
                Err(e) => {
                    failure = Some(e);
                    return Err(std::io::Error::other("encoding failed"));
                }
            }
        }
        let final_header = header(&checksums);
        if final_header.len() != placeholder.len() {
            return Err(std::io::Error::other("the checksums changed the header's length"));
        }
        file.seek(std::io::SeekFrom::Start(8))?;
        file.write_all(&final_header)
    });
    if let Some(failure) = failure {
        return Err(failure);
    }
    written.map_err(|source| TrainError::Io { path: path.display().to_string(), source })
}

/// Float32 `values` as `storage`'s little-endian bytes.
fn stored_bytes(values: &[f32], storage: Storage) -> Vec<u8> {
    match storage {
        Storage::Float32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Storage::Float16 => {
            let mut halves = vec![f16::ZERO; values.len()];
            halves.convert_from_f32_slice(values);
            halves.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    }
}
