//! Images as the encoder's input: one `N × 3 × S × S` tensor, from a prepared dataset's images or
//! from pictures at hand, through [`ImageTransform::apply_batch`].

use candle_core::{Device, Tensor};
use caption_data::{ImageTransform, PreparedDataset, loader};
use image::RgbImage;

use crate::InferError;

/// Dataset images (by image row), decoded and transformed, as one tensor on `device`; `seed`
/// chooses random crops (the train transform's).
///
/// # Errors
/// [`InferError::Data`] when an image has become unreadable since preparation.
pub fn dataset_images(
    dataset: &PreparedDataset,
    rows: &[usize],
    transform: &ImageTransform,
    seed: u64,
    device: &Device,
) -> Result<Tensor, InferError> {
    let pixels = loader::load_images(dataset, rows, transform, seed)?;
    batch_tensor(pixels, rows.len(), transform, device)
}

/// Decoded pictures, transformed, as one tensor on `device`.
///
/// # Errors
/// A candle error.
pub fn pictures(images: &[RgbImage], transform: &ImageTransform, device: &Device) -> Result<Tensor, InferError> {
    let pixels =
        transform.apply_batch(images, 0, Ok::<_, std::convert::Infallible>).expect("images at hand always load");
    batch_tensor(pixels, images.len(), transform, device)
}

/// `count` transformed images' pixels as an `N × 3 × S × S` tensor.
fn batch_tensor(
    pixels: Vec<f32>,
    count: usize,
    transform: &ImageTransform,
    device: &Device,
) -> Result<Tensor, InferError> {
    let side = transform.output_size() as usize;
    Ok(Tensor::from_vec(pixels, (count, 3, side, side), device)?)
}
