//! Scoring a model on a split: teacher-forced loss, greedy captions, BLEU-1..4 and CIDEr-D with
//! pycocoevalcap's arithmetic.

use candle_core::{DType, Device, Tensor};
use caption_data::{ImageTransform, PreparedDataset, loader};
use caption_infer::Decoding;
use caption_infer::captioner::decode;
pub use caption_infer::evaluation::reference_words;
use caption_infer::images::dataset_images;
use caption_metrics::{Bleu, CiderD, Corpus};
use caption_text::Vocabulary;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::features::FrozenFeatures;
use crate::model::TrainModel;

/// A validation result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Mean cross-entropy per non-PAD token.
    pub loss: f64,
    /// BLEU-1..4 of greedy captions (pycocoevalcap), when asked for.
    pub bleu: Option<[f64; 4]>,
    /// CIDEr-D of greedy captions (pycocoevalcap's, document frequencies of the split's
    /// references), when asked for (self-critical training).
    #[serde(default)]
    pub cider: Option<f64>,
}

impl Validation {
    /// The number to maximise: CIDEr-D when measured (self-critical training optimises it), else
    /// BLEU-4, else the negated loss.
    pub fn score(&self) -> f64 {
        self.cider.or(self.bleu.map(|b| b[3])).unwrap_or(-self.loss)
    }
}

/// Which scores of greedy captions a validation computes besides the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scores {
    /// BLEU-1..4.
    pub bleu: bool,
    /// CIDEr-D.
    pub cider: bool,
}

/// Runs a model in eval mode over dataset images.
pub struct Evaluator<'a> {
    /// The model.
    pub model: &'a TrainModel,
    /// The dataset.
    pub dataset: &'a PreparedDataset,
    /// The frozen encoder's cache of every dataset image (frozen mode), else images are encoded.
    pub frozen: Option<&'a FrozenFeatures>,
    /// The eval transform.
    pub transform: ImageTransform,
    /// Images or captions per forward.
    pub batch_size: usize,
    /// Longest caption generated.
    pub max_length: usize,
}

impl Evaluator<'_> {
    /// Encoder outputs of dataset images, in eval mode: image embeddings (rows × embed) for the
    /// original's model, grids (rows × positions × 2048) for the attention model.
    ///
    /// # Errors
    /// A data or candle error.
    pub fn features(&self, image_rows: &[usize]) -> Result<Tensor, TrainError> {
        let device = &self.model.device;
        let network = &self.model.model;
        let features = match self.frozen {
            Some(frozen) => network.encode_head_input(&frozen.rows(image_rows, device)?)?,
            None => network.encode(&dataset_images(self.dataset, image_rows, &self.transform, 0, device)?)?,
        };
        Ok(features.detach())
    }

    /// Mean teacher-forced loss per non-PAD token over caption rows.
    ///
    /// # Errors
    /// A data or candle error.
    pub fn loss(&self, caption_rows: &[usize]) -> Result<f64, TrainError> {
        let (mut total, mut count) = (0.0, 0usize);
        for batch in loader::caption_batches(self.dataset, caption_rows, self.batch_size) {
            let features = self.features(&batch.images)?;
            let captions = Tensor::from_vec(batch.tokens.clone(), (batch.length, batch.len()), &self.model.device)?;
            // The cross-entropy alone (the attention model's term left out), comparable across networks.
            let (loss, tokens) = self.model.model.teacher_forced_loss(&features, &captions, Vocabulary::PAD)?;
            total += f64::from(loss.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_scalar::<f32>()?) * tokens as f64;
            count += tokens;
        }
        Ok(total / count.max(1) as f64)
    }

    /// Greedy captions (words, specials removed) of dataset images, as caption-infer decodes them.
    ///
    /// # Errors
    /// A data or candle error.
    pub fn greedy(&self, image_rows: &[usize]) -> Result<Vec<Vec<String>>, TrainError> {
        let mut captions = Vec::with_capacity(image_rows.len());
        for chunk in image_rows.chunks(self.batch_size.max(1)) {
            let features = self.features(chunk)?;
            let model = &self.model.model;
            let generated = decode(model, &self.dataset.vocabulary, &features, Decoding::Greedy, self.max_length)?;
            captions.extend(generated.into_iter().map(|caption| caption.words));
        }
        Ok(captions)
    }
}

/// BLEU-1..4 (pycocoevalcap) of hypotheses (words) against references (words).
///
/// # Errors
/// [`TrainError::Metrics`].
pub fn bleu(hypotheses: &[Vec<String>], references: &[Vec<Vec<String>>]) -> Result<[f64; 4], TrainError> {
    corpus_bleu(&Corpus::new(hypotheses, references)?)
}

/// BLEU-1..4 (pycocoevalcap) of a corpus.
fn corpus_bleu(corpus: &Corpus) -> Result<[f64; 4], TrainError> {
    let score = Bleu::coco().corpus(corpus)?;
    Ok([score.bleu[0], score.bleu[1], score.bleu[2], score.bleu[3]])
}

/// Loss over the captions of `image_rows` and, as `scores` asks, BLEU-1..4 and CIDEr-D of greedy
/// captions.
///
/// # Errors
/// A data, candle or metrics error.
pub fn validate(
    evaluator: &Evaluator<'_>,
    dataset: &PreparedDataset,
    image_rows: &[usize],
    scores: Scores,
) -> Result<Validation, TrainError> {
    let wanted: std::collections::HashSet<usize> = image_rows.iter().copied().collect();
    let caption_rows: Vec<usize> =
        (0..dataset.captions.len()).filter(|&r| wanted.contains(&dataset.captions[r].image)).collect();
    let loss = evaluator.loss(&caption_rows)?;
    let (mut bleu_scores, mut cider) = (None, None);
    if scores.bleu || scores.cider {
        let corpus = Corpus::new(&evaluator.greedy(image_rows)?, &reference_words(dataset, image_rows))?;
        if scores.bleu {
            bleu_scores = Some(corpus_bleu(&corpus)?);
        }
        if scores.cider {
            cider = Some(CiderD::default().score(&corpus)?.score);
        }
    }
    Ok(Validation { loss, bleu: bleu_scores, cider })
}
