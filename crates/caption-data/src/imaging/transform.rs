//! The image → tensor transforms of the original: train (Resize 356 → RandomCrop 299 → normalize)
//! and eval (Resize 299 → normalize), with PIL's antialiased bilinear resampling bit for bit
//! ([`resize_bilinear`]).

use std::borrow::Borrow;

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::pillow_resize::resize_bilinear;

/// Mean and standard deviation 0.5 for every channel: `Normalize(0.5, 0.5)`, inputs in [-1, 1].
pub const MEAN_STD_HALF: ([f32; 3], [f32; 3]) = ([0.5; 3], [0.5; 3]);

/// Resize to a fixed square, optionally crop a random square, scale to [0, 1], normalise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageTransform {
    /// Side the image is resized to (both dimensions, as `Resize((s, s))`).
    pub resize: u32,
    /// Side of the random crop taken after resizing (`None`: no crop).
    pub crop: Option<u32>,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl ImageTransform {
    /// The original's inference transform: `Resize((size, size))`, `Normalize(0.5, 0.5)`.
    pub fn eval(size: u32) -> Self {
        Self { resize: size, crop: None, mean: MEAN_STD_HALF.0, std: MEAN_STD_HALF.1 }
    }

    /// The original's training transform: `Resize((resize, resize))`, `RandomCrop(crop)`,
    /// `Normalize(0.5, 0.5)` (the original uses 356 and 299).
    pub fn train(resize: u32, crop: u32) -> Self {
        Self { resize, crop: Some(crop.min(resize)), mean: MEAN_STD_HALF.0, std: MEAN_STD_HALF.1 }
    }

    /// Side of the square the transform produces.
    pub fn output_size(&self) -> u32 {
        self.crop.unwrap_or(self.resize)
    }

    /// Number of `f32` values one image becomes (3 × side × side).
    pub fn output_len(&self) -> usize {
        let side = self.output_size() as usize;
        3 * side * side
    }

    /// Resizes `image` to `resize` × `resize` with antialiased bilinear filtering, as Pillow
    /// does it (what torchvision runs on PIL images), bit for bit.
    pub fn resized(&self, image: &RgbImage) -> RgbImage {
        resize_bilinear(image, self.resize, self.resize)
    }

    /// Transforms one image into a channel-first `3 × side × side` buffer, appended to `out`.
    /// `rng` chooses the crop (as torchvision: top in `0..=h-side`, then left in `0..=w-side`).
    pub fn apply_into(&self, image: &RgbImage, rng: &mut impl Rng, out: &mut Vec<f32>) {
        let resized;
        let source = if image.width() == self.resize && image.height() == self.resize {
            image
        } else {
            resized = self.resized(image);
            &resized
        };
        let side = self.output_size();
        let (top, left) = match self.crop {
            Some(crop) if crop < self.resize => {
                let top = rng.random_range(0..=self.resize - crop);
                let left = rng.random_range(0..=self.resize - crop);
                (top, left)
            }
            _ => (0, 0),
        };
        let raw = source.as_raw();
        let width = source.width() as usize;
        let side = side as usize;
        // Each channel's 256 possible values, `v / 255 · 1/std − mean/std` (the same arithmetic per
        // value as computing it per pixel); one pass over the pixels fills the three planes.
        let tables: [[f32; 256]; 3] = std::array::from_fn(|c| {
            let (scale, shift) = (1.0 / (255.0 * self.std[c]), self.mean[c] / self.std[c]);
            std::array::from_fn(|v| f32::from(v as u8) * scale - shift)
        });
        let start = out.len();
        out.resize(start + 3 * side * side, 0.0);
        let (red, rest) = out[start..].split_at_mut(side * side);
        let (green, blue) = rest.split_at_mut(side * side);
        let planes = red.chunks_exact_mut(side).zip(green.chunks_exact_mut(side)).zip(blue.chunks_exact_mut(side));
        for (y, ((red, green), blue)) in planes.enumerate() {
            let first = (top as usize + y) * width + left as usize;
            let pixels = raw[first * 3..(first + side) * 3].chunks_exact(3);
            for (((pixel, r), g), b) in pixels.zip(red).zip(green.iter_mut()).zip(blue.iter_mut()) {
                *r = tables[0][usize::from(pixel[0])];
                *g = tables[1][usize::from(pixel[1])];
                *b = tables[2][usize::from(pixel[2])];
            }
        }
    }

    /// [`apply_into`](Self::apply_into) into a fresh buffer.
    pub fn apply(&self, image: &RgbImage, rng: &mut impl Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.output_len());
        self.apply_into(image, rng, &mut out);
        out
    }

    /// A batch: each item loaded (`load`: decoded from a file, or an image at hand) and
    /// transformed, in parallel, into one `N × 3 × S × S` buffer in the items' order: what a
    /// model's `N × 3 × S × S` input tensor is made of. Random crops come from a generator seeded
    /// by `seed` and the item's position, so a batch is the same whatever the thread count.
    ///
    /// # Errors
    /// Every item's error, in order, when one or more fails to load.
    pub fn apply_batch<'a, T, R, E>(
        &self,
        items: &'a [T],
        seed: u64,
        load: impl Fn(&'a T) -> Result<R, E> + Sync,
    ) -> Result<Vec<f32>, Vec<E>>
    where
        T: Sync,
        R: Borrow<RgbImage>,
        E: Send,
    {
        let per_item: Vec<Result<Vec<f32>, E>> = items
            .par_iter()
            .enumerate()
            .map(|(position, item)| {
                let image = load(item)?;
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(position as u64);
                Ok(self.apply(image.borrow(), &mut rng))
            })
            .collect();
        let mut out = Vec::with_capacity(items.len() * self.output_len());
        let mut errors = Vec::new();
        for item in per_item {
            match item {
                Ok(pixels) => out.extend(pixels),
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn eval_transform_normalises_to_minus_one_one() {
        let image = RgbImage::from_fn(50, 30, |x, _| image::Rgb([if x < 25 { 0 } else { 255 }, 255, 0]));
        let out = ImageTransform::eval(20).apply(&image, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(out.len(), 3 * 20 * 20);
        assert_eq!(out[0], -1.0); // red, left
        assert_eq!(out[19], 1.0); // red, right
        assert!(out[400..800].iter().all(|&v| v == 1.0)); // green everywhere
        assert!(out[800..].iter().all(|&v| v == -1.0)); // no blue
    }

    #[test]
    fn random_crops_are_windows_of_the_resized_image() {
        let image = RgbImage::from_fn(40, 40, |x, y| image::Rgb([x as u8 * 5, y as u8 * 5, 7]));
        let transform = ImageTransform::train(40, 32);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut corners = std::collections::HashSet::new();
        for _ in 0..20 {
            let out = transform.apply(&image, &mut rng);
            let (left, top) = ((out[0] + 1.0) / 2.0 * 255.0 / 5.0, (out[1024] + 1.0) / 2.0 * 255.0 / 5.0);
            assert!(left.round() <= 8.0 && top.round() <= 8.0);
            corners.insert((left.round() as u32, top.round() as u32));
        }
        assert!(corners.len() > 5, "crops should vary: {corners:?}");
    }
}
