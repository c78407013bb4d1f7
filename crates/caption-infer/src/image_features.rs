//! Inception v3 features of image files or of a preprocessed tensor, as `cargo xtask features`
//! writes them: the 2048-d pooled features and, for weights with an ImageNet `fc`, the logits,
//! one row per image in input order.
//!
//! # Example
//!
//! ```no_run
//! use std::path::PathBuf;
//! use caption_infer::image_features::{Features, FeatureSource, extract_features};
//!
//! let files = vec![PathBuf::from("photo.jpg")];
//! let source = FeatureSource::Files { files: &files, size: 299 };
//! let Features { pooled, logits } = extract_features(
//!     std::path::Path::new("model.safetensors"), false, &candle_core::Device::Cpu, source, 32,
//!     &caption_data::NoProgress,
//! )?;
//! println!("{:?} {:?}", pooled.dims(), logits.map(|l| l.dims().to_vec()));
//! # Ok::<(), caption_infer::InferError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use caption_data::{ImageTransform, Progress};
use caption_model::FeatureExtractor;

use crate::InferError;

/// Inception v3's smallest input side.
pub const MIN_SIDE: u32 = 75;

/// Where the images come from.
#[derive(Debug, Clone, Copy)]
pub enum FeatureSource<'a> {
    /// Image files, decoded a chunk at a time and preprocessed as the original's eval transform
    /// does (Resize((size, size)) with Pillow's bilinear filter, ToTensor, Normalize(0.5, 0.5)).
    Files {
        /// The files, in output order.
        files: &'a [PathBuf],
        /// The side they are resized to.
        size: u32,
    },
    /// Images already preprocessed: N × 3 × H × W ([`preprocessed_images`]).
    Tensor(&'a Tensor),
}

/// What [`extract_features`] computes.
#[derive(Debug, Clone)]
pub struct Features {
    /// Images × 2048.
    pub pooled: Tensor,
    /// Images × 1000, for weights with an ImageNet `fc`.
    pub logits: Option<Tensor>,
}

impl Features {
    /// The tensors by the names the features file holds them under (`pooled`, `logits`).
    pub fn into_named(self) -> HashMap<String, Tensor> {
        let mut named = HashMap::from([("pooled".to_string(), self.pooled)]);
        if let Some(logits) = self.logits {
            named.insert("logits".to_string(), logits);
        }
        named
    }
}

/// The features of `source`, with Inception v3's weights from `weights` (torchvision/timm names,
/// the original's `encoderCNN.inception.*`, or a checkpoint's model file, whose frozen weights
/// come with it), `batch` images per forward pass on `device`.
///
/// # Errors
/// [`InferError::Weights`] for weights that cannot be read or used; [`InferError::Evaluation`]
/// naming every image file that cannot be read (nothing is computed past the chunk that holds
/// one).
pub fn extract_features(
    weights: &Path,
    transform_input: bool,
    device: &Device,
    source: FeatureSource<'_>,
    batch: usize,
    progress: &dyn Progress,
) -> Result<Features, InferError> {
    let weights_error = |e: &dyn std::fmt::Display| InferError::Weights(format!("{}: {e}", weights.display()));
    let tensors = crate::checkpoint_files::read_model_file(weights).map_err(|e| weights_error(&e))?.tensors;
    let extractor = FeatureExtractor::new(tensors, transform_input, device).map_err(|e| weights_error(&e))?;
    let run = |images: &Tensor| extractor.extract(images, batch).map_err(|e| weights_error(&e));
    let (pooled, logits) = match source {
        FeatureSource::Tensor(images) => run(images)?,
        FeatureSource::Files { files, size } => {
            let transform = ImageTransform::eval(size);
            progress.start_counting("encoding images", files.len() as u64, "images");
            let (mut pooled, mut logits) = (Vec::new(), Vec::new());
            // Decoded a chunk at a time so that memory stays bounded on large folders.
            for chunk in files.chunks(batch.max(1) * 8) {
                let side = size as usize;
                let images =
                    Tensor::from_vec(preprocess(chunk, &transform)?, (chunk.len(), 3, side, side), &Device::Cpu)?;
                let (p, l) = run(&images)?;
                pooled.push(p);
                logits.extend(l);
                progress.advance(chunk.len() as u64);
            }
            progress.finish();
            let logits = if logits.is_empty() { None } else { Some(Tensor::cat(&logits, 0)?) };
            (Tensor::cat(&pooled, 0)?, logits)
        }
    };
    Ok(Features { pooled, logits })
}

/// The `images` tensor of a preprocessed input file's tensors (read from `path`), checked:
/// N × 3 × H × W, at least Inception's smallest side, finite floating-point pixels.
///
/// # Errors
/// [`InferError::Evaluation`] naming `path` and what is wrong.
pub fn preprocessed_images(input: &HashMap<String, Tensor>, path: &Path) -> Result<Tensor, InferError> {
    let wrong = |problem: String| InferError::Evaluation(format!("{}: {problem}", path.display()));
    let images = input.get("images").ok_or_else(|| wrong("no tensor named \"images\"".into()))?;
    let dims = images.dims();
    if dims.len() != 4 || dims[1] != 3 {
        return Err(wrong(format!("\"images\" must be N×3×H×W, got {dims:?}")));
    }
    if dims[2].min(dims[3]) < MIN_SIDE as usize {
        return Err(wrong(format!(
            "\"images\" are {}×{} pixels; Inception v3 needs at least {MIN_SIDE}×{MIN_SIDE}",
            dims[2], dims[3]
        )));
    }
    // Integers (raw 0–255 values would give features hundreds of times off) and non-finite
    // values are not preprocessed pixels.
    if !matches!(images.dtype(), DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
        return Err(wrong(format!(
            "\"images\" is {:?}; expected floating-point pixels already resized and normalised as the eval \
             transform does (ToTensor then Normalize(0.5, 0.5): values in [-1, 1]), or give the image files with \
             --images",
            images.dtype()
        )));
    }
    let values = images.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if let Some(position) = values.iter().position(|v| !v.is_finite()) {
        return Err(wrong(format!(
            "\"images\" holds a non-finite value ({}) at flat index {position}; expected finite pixels in [-1, 1]",
            values[position]
        )));
    }
    Ok(images.clone())
}

/// Decodes, checks and transforms `files` in parallel into one N×3×S×S buffer; names every file
/// that cannot be read.
fn preprocess(files: &[PathBuf], transform: &ImageTransform) -> Result<Vec<f32>, InferError> {
    let load = |path: &PathBuf| {
        caption_data::check_image_file(path).map_err(|problem| format!("{}: {problem}", path.display()))
    };
    // The eval transform does not crop: the seed is never drawn from.
    transform.apply_batch(files, 0, load).map_err(|problems| {
        InferError::Evaluation(format!(
            "{} of {} images cannot be read; nothing written:\n  {}",
            problems.len(),
            files.len(),
            problems.join("\n  ")
        ))
    })
}
