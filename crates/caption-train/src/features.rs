//! The frozen encoder's work, done once: recalibrating BatchNorm statistics of random weights on
//! training images, and the cache every epoch trains on: 2048-d pooled features for the original's
//! model, the memory-mapped grids ([`crate::spatial_cache`]) for the attention model.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use caption_data::{ImageTransform, PreparedDataset, Progress};
use caption_model::init::is_running_statistic;

use caption_infer::images::dataset_images;

use crate::TrainError;
use crate::model::TrainModel;
use crate::spatial_cache::{GridCache, GridOrigin, Opened, Storage, write_cache};

/// Images per encoder forward.
const ENCODER_BATCH: usize = 32;

/// Sets every BatchNorm running mean and variance of the encoder to the statistics of
/// `image_rows` (in train mode, batch by batch, averaged over batches: PyTorch's
/// `momentum=None`). Random Inception weights give features around 1e9 with the default 0/1
/// statistics; recalibrated, every layer is normalised and the features carry the picture.
///
/// # Errors
/// A data or candle error.
pub fn recalibrate_batch_norm(
    model: &TrainModel,
    dataset: &PreparedDataset,
    image_rows: &[usize],
    transform: &ImageTransform,
    progress: &dyn Progress,
) -> Result<(), TrainError> {
    let prefix = model.kind().inception_prefix();
    let vars: Vec<(String, candle_core::Var)> = {
        let data = model.varmap.data().lock().expect("no panics while holding the varmap lock");
        let mut vars: Vec<_> = data
            .iter()
            .filter(|(n, _)| n.starts_with(prefix) && is_running_statistic(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    };
    let mut sums: Vec<Tensor> = vars.iter().map(|(_, v)| v.as_tensor().zeros_like()).collect::<Result<_, _>>()?;
    let chunks: Vec<&[usize]> = image_rows.chunks(ENCODER_BATCH).collect();
    progress.start_counting("recalibrating BatchNorm", image_rows.len() as u64, "images");
    for chunk in &chunks {
        // Zero statistics: after one train-mode forward (momentum 0.1) each holds 0.1 × the batch's.
        for (_, var) in &vars {
            var.set(&var.as_tensor().zeros_like()?)?;
        }
        let images = dataset_images(dataset, chunk, transform, 0, &model.device)?;
        model.model.inception().forward_batch_statistics(&images)?;
        for (sum, (_, var)) in sums.iter_mut().zip(&vars) {
            *sum = (&*sum + (var.as_tensor() * 10.0)?)?;
        }
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    for (sum, (_, var)) in sums.iter().zip(&vars) {
        var.set(&(sum / chunks.len().max(1) as f64)?)?;
    }
    Ok(())
}

/// Pooled features (rows × 2048, on the CPU) of `image_rows` with the encoder in eval mode.
///
/// # Errors
/// A data or candle error.
pub fn pooled_features(
    model: &TrainModel,
    dataset: &PreparedDataset,
    image_rows: &[usize],
    transform: &ImageTransform,
    progress: &dyn Progress,
) -> Result<Tensor, TrainError> {
    progress.start_counting("encoding images", image_rows.len() as u64, "images");
    let mut rows = Vec::new();
    for chunk in image_rows.chunks(ENCODER_BATCH) {
        let images = dataset_images(dataset, chunk, transform, 0, &model.device)?;
        // Detached: the variables would otherwise keep every batch's graph alive.
        let pooled = model.model.inception().forward_t(&images, false)?.pooled.detach();
        rows.push(pooled.to_device(&Device::Cpu)?);
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(Tensor::cat(&rows, 0)?)
}

/// What a frozen encoder's cache holds, for every dataset image.
pub enum FrozenFeatures {
    /// The original's model: pooled features (images × 2048), on the training device.
    Pooled(Tensor),
    /// The attention model: grids, read from the memory-mapped file batch by batch.
    Grids(GridCache),
}

impl FrozenFeatures {
    /// The head inputs ([`Network::head_input`](caption_model::Network::head_input)) of
    /// `image_rows`, on `device`.
    ///
    /// # Errors
    /// A candle error, or a cache that cannot be read.
    pub fn rows(&self, image_rows: &[usize], device: &candle_core::Device) -> Result<Tensor, TrainError> {
        match self {
            Self::Pooled(all) => select_rows(all, image_rows),
            Self::Grids(cache) => cache.rows(image_rows, device),
        }
    }
}

/// Rows `rows` of a feature table (`all`: one row per dataset image).
pub(crate) fn select_rows(all: &Tensor, rows: &[usize]) -> Result<Tensor, TrainError> {
    let index = Tensor::from_vec(rows.iter().map(|&i| i as u32).collect::<Vec<_>>(), rows.len(), all.device())?;
    Ok(all.index_select(&index, 0)?)
}

/// The image resampler the cached features were computed with.
const RESAMPLER: &str = "pillow-bilinear-exact";

/// The encoder weights a cache's features come from, for its key and its origin: the weights'
/// source, and for random ones the seed and the calibration.
fn encoder_description(config: &crate::TrainConfig) -> String {
    match &config.encoder {
        crate::EncoderWeights::Random => {
            format!("random seed {} calibration {}", config.seed, config.calibration_images)
        }
        other => format!("{other:?}"),
    }
}

/// Names what a feature cache depends on: the dataset, the encoder weights (and, for random
/// ones, the seed and calibration), the image size, `transform_input`, and the resampler
/// (caches made before it was Pillow's bit for bit are not reused).
pub fn cache_key(config: &crate::TrainConfig, dataset_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    let encoder = encoder_description(config);
    let text = format!("{dataset_hash}|{encoder}|{}|{}|{RESAMPLER}", config.image_size, config.transform_input);
    Sha256::digest(text.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// What the attention model's grid cache is computed from ([`cache_key`]'s parts, spelled out so
/// that a cache of another origin is refused by name).
pub fn grid_origin(config: &crate::TrainConfig, dataset_hash: &str) -> GridOrigin {
    GridOrigin {
        encoder: encoder_description(config),
        image_size: config.image_size,
        transform_input: config.transform_input,
        resampler: RESAMPLER.into(),
        dataset: dataset_hash.into(),
    }
}

/// The grid cache's key: [`cache_key`] and the storage (float32 and float16 caches are apart).
pub fn grid_cache_key(config: &crate::TrainConfig, dataset_hash: &str) -> String {
    let storage = if config.attention.cache_float16 { "f16" } else { "f32" };
    format!("{}-grid-{storage}", cache_key(config, dataset_hash))
}

/// The attention model's grids (rows × positions × 2048) of `image_rows`, the encoder in eval
/// mode ([`Network::head_input`](caption_model::Network::head_input)).
///
/// # Errors
/// A data or candle error, or the original's model.
pub fn grids(
    model: &TrainModel,
    dataset: &PreparedDataset,
    image_rows: &[usize],
    transform: &ImageTransform,
) -> Result<Tensor, TrainError> {
    if model.kind().head_input() != caption_model::HeadInput::Grid {
        return Err(TrainError::Config(format!(
            "grids are the attention model's features; this is a {} model",
            model.kind().architecture()
        )));
    }
    let images = dataset_images(dataset, image_rows, transform, 0, &model.device)?;
    let output = model.model.inception().forward_t(&images, false)?;
    Ok(model.model.head_input(&output)?.detach())
}

/// The grid cache at `path` for every dataset image: opened when it is there and whole, else
/// computed (eval mode, with progress) and written first; with the reason a cache that was there
/// had to be computed again.
///
/// # Errors
/// A cache of another origin ([`GridCache::open`]), a data, candle or I/O error.
pub fn grid_cache(
    path: &Path,
    origin: &GridOrigin,
    model: &TrainModel,
    dataset: &PreparedDataset,
    transform: &ImageTransform,
    storage: Storage,
    progress: &dyn Progress,
) -> Result<(GridCache, Option<String>), TrainError> {
    let images = dataset.images.len();
    let rebuilt = match GridCache::open(path, origin, images)? {
        Opened::Ready(cache) => return Ok((cache, None)),
        Opened::Absent => None,
        Opened::Unusable(why) => Some(why),
    };
    progress.start_counting("encoding image grids", images as u64, "images");
    write_cache(path, origin, images, storage, ENCODER_BATCH, |rows| {
        let grids = grids(model, dataset, rows, transform)?;
        progress.advance(rows.len() as u64);
        Ok(grids)
    })?;
    progress.finish();
    match GridCache::open(path, origin, images)? {
        Opened::Ready(cache) => Ok((cache, rebuilt)),
        _ => Err(TrainError::Config(format!("{} was written but does not read back as a grid cache", path.display()))),
    }
}

/// The metadata key of the pooled feature cache's CRC-32 (8 hex digits) over its tensor's bytes.
pub const POOLED_CHECKSUM_KEY: &str = "caption.pooled_crc32";

/// Reads a feature cache written by [`save_cache`]: `Ok(None)` when there is none, `Err(why)`
/// when the file is not one of `rows` rows whose bytes match its checksum (it is then rebuilt).
pub fn load_cache(path: &Path, rows: usize) -> Result<Option<Tensor>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
    let expected = header.metadata().as_ref().and_then(|m| m.get(POOLED_CHECKSUM_KEY).cloned());
    let view = file.tensor("pooled").map_err(|_| "no `pooled` tensor".to_string())?;
    if view.shape() != [rows, 2048] || view.dtype() != safetensors::Dtype::F32 {
        return Err(format!("`pooled` is {:?} {:?}; {rows} × 2048 F32 expected", view.shape(), view.dtype()));
    }
    let Some(expected) = expected else { return Err("no checksum (written by an earlier version)".into()) };
    if format!("{:08x}", crc32fast::hash(view.data())) != expected {
        return Err("its features do not match their checksum".into());
    }
    let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(Some(Tensor::from_vec(values, (rows, 2048), &Device::Cpu).map_err(|e| e.to_string())?))
}

/// Writes the feature cache atomically, with the CRC-32 of its features in the metadata.
///
/// # Errors
/// [`TrainError::Weights`] when it cannot be written.
pub fn save_cache(path: &Path, pooled: &Tensor) -> Result<(), TrainError> {
    let pooled = pooled.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.contiguous()?;
    let values = pooled.flatten_all()?.to_vec1::<f32>()?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let metadata = std::collections::HashMap::from([(
        POOLED_CHECKSUM_KEY.to_string(),
        format!("{:08x}", crc32fast::hash(&bytes)),
    )]);
    let serialized = safetensors::serialize([("pooled", &pooled)], Some(metadata))
        .map_err(|e| TrainError::Weights(e.to_string()))?;
    crate::run_folder::write_atomically(path, &serialized)
}
