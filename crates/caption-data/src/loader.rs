//! Batches for training and evaluation: seeded shuffles of caption rows, padded time-major token
//! ids, and image tensors decoded in parallel.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use caption_text::Vocabulary;

use crate::{DataError, ImageTransform, PreparedDataset};

/// A batch of captions: `<SOS> ids <EOS>` padded with `<PAD>`, time-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionBatch {
    /// Caption rows of the dataset, in batch order.
    pub captions: Vec<usize>,
    /// The image row of each caption.
    pub images: Vec<usize>,
    /// Token ids, `length × batch`, row-major (time step `t` of caption `b` at `t * batch + b`).
    pub tokens: Vec<u32>,
    /// Time steps (the longest caption plus `<SOS>` and `<EOS>`).
    pub length: usize,
}

impl CaptionBatch {
    /// Number of captions.
    pub fn len(&self) -> usize {
        self.captions.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.captions.is_empty()
    }
}

/// The order of `rows` for one epoch: a shuffle seeded by `seed` and `epoch`, or `rows` as they are.
pub fn epoch_order(rows: &[usize], shuffle: Option<(u64, u64)>) -> Vec<usize> {
    let mut order = rows.to_vec();
    if let Some((seed, epoch)) = shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch);
        order.shuffle(&mut rng);
    }
    order
}

/// Cuts caption rows (in the given order) into padded batches of `batch_size` (the last one
/// may be smaller).
pub fn caption_batches(dataset: &PreparedDataset, rows: &[usize], batch_size: usize) -> Vec<CaptionBatch> {
    rows.chunks(batch_size.max(1))
        .map(|chunk| {
            let length = chunk.iter().map(|&r| dataset.captions[r].token_ids.len()).max().unwrap_or(0) + 2;
            let batch = chunk.len();
            let mut tokens = vec![Vocabulary::PAD; length * batch];
            for (b, &r) in chunk.iter().enumerate() {
                let ids = &dataset.captions[r].token_ids;
                tokens[b] = Vocabulary::SOS;
                for (t, &id) in ids.iter().enumerate() {
                    tokens[(t + 1) * batch + b] = id;
                }
                tokens[(ids.len() + 1) * batch + b] = Vocabulary::EOS;
            }
            CaptionBatch {
                captions: chunk.to_vec(),
                images: chunk.iter().map(|&r| dataset.captions[r].image).collect(),
                tokens,
                length,
            }
        })
        .collect()
}

/// Decodes and transforms images (by image row) in parallel into one `N × 3 × S × S` buffer.
/// Uses the dataset's pre-resized copies when they have the transform's resize side. Random
/// crops are drawn from a generator seeded by `seed` and the image's position in the batch, so a
/// batch is the same whatever the thread count.
///
/// # Errors
/// [`DataError::Image`] when a file has become unreadable since preparation.
pub fn load_images(
    dataset: &PreparedDataset,
    image_rows: &[usize],
    transform: &ImageTransform,
    seed: u64,
) -> Result<Vec<f32>, DataError> {
    let load = |&row: &usize| {
        let image = &dataset.images[row];
        let cached = image.resized.as_ref().filter(|_| dataset.manifest.resized == Some(transform.resize));
        let path = cached.map_or_else(|| dataset.image_path(image), |p| dataset.root.join(p));
        crate::check_image_file(&path).map_err(|problem| DataError::Image { image: image.id.clone(), problem })
    };
    transform.apply_batch(image_rows, seed, load).map_err(|errors| errors.into_iter().next().expect("an error"))
}
