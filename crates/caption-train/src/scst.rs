//! Self-critical sequence training (Rennie et al., CVPR 2017): fine-tuning a cross-entropy model
//! on the metric it is judged by. Per batch of training images, [`scst_step`] samples captions
//! from the model ([`Network::sample`](caption_model::Network::sample)), rewards each with CIDEr-D against its image's references
//! — document frequencies counted once over the training split's references
//! ([`TrainingCiderD`], as self-critical.pytorch's `CiderD(df=<train idxs>)`), optionally plus a
//! weighted BLEU-4 — subtracts a baseline (the greedy caption's reward, Rennie's, or the mean
//! reward of the image's other samples, Luo 2020's "A Better Variant of SCST") and takes one
//! optimizer step on `−Σ (r − b) · log p(word) / counted words`: the teacher-forced pass over the
//! sampled captions with one weight per caption ([`Targets::weighted`]), the mean over every
//! counted word of the batch as self-critical.pytorch's `RewardCriterion` takes it. Where the
//! backend's sampling keeps its forward pass (the LSTM decoder on the CPU:
//! [`Network::sample_keeping_forward`](caption_model::Network::sample_keeping_forward)), that pass
//! runs only its backward half from it ([`Network::sampled_head_gradients`](caption_model::Network::sampled_head_gradients)),
//! as self-critical.pytorch's autograd backs through its sampling; elsewhere it runs whole.
//!
//! Captions are sampled with the model in eval mode and scored by the same model (no dropout in
//! the loss's pass): the gradient is the one of the distribution that was sampled. Rewards count
//! words only (no end token; self-critical.pytorch's `array_to_str` keeps its end token as a word).

use std::collections::HashMap;

use candle_core::Tensor;
use caption_data::{PreparedDataset, Split};
use caption_infer::Generated;
use caption_infer::evaluation::reference_words;
use caption_metrics::{Bleu, CiderD, Corpus, TrainingCiderD};
use caption_model::{Dropout, Hypothesis, Sampling, Targets};
use caption_text::Vocabulary;

use crate::TrainError;
use crate::adam::Adam;
pub use crate::config::{Baseline, Objective, ScstSettings};
use crate::model::TrainModel;
use crate::step::{gradients_step, optimizer_step};

/// The reward of a caption of a training image: CIDEr-D with the training split's document
/// frequencies, plus `bleu_weight` × BLEU-4.
pub struct Reward {
    cider: TrainingCiderD<String>,
    /// Each training image's reference words (spaCy rules, lowercased), by dataset image row.
    references: HashMap<usize, Vec<Vec<String>>>,
    bleu_weight: f64,
}

impl Reward {
    /// Counts the document frequencies over the training split's references of `dataset`
    /// (spaCy-rule words, lowercased, as evaluation tokenizes them).
    ///
    /// # Errors
    /// [`TrainError::Metrics`] when the training references hold no word.
    pub fn new(dataset: &PreparedDataset, bleu_weight: f64) -> Result<Self, TrainError> {
        let images = dataset.images_in(Split::Train);
        let words = reference_words(dataset, &images);
        Self::from_references(images.into_iter().zip(words).collect(), bleu_weight)
    }

    /// The reward over `references`: each training image's (by its row) reference captions as
    /// words, which the document frequencies are counted over.
    ///
    /// # Errors
    /// [`TrainError::Metrics`] when the references hold no word.
    pub fn from_references(references: Vec<(usize, Vec<Vec<String>>)>, bleu_weight: f64) -> Result<Self, TrainError> {
        let sets: Vec<&Vec<Vec<String>>> = references.iter().map(|(_, refs)| refs).collect();
        let cider = TrainingCiderD::new(CiderD::default(), &sets)?;
        Ok(Self { cider, references: references.into_iter().collect(), bleu_weight })
    }

    /// The CIDEr-D and the reward of `captions` (words), caption `i` of training image
    /// `images[i]`.
    ///
    /// # Errors
    /// An image that is not a training image, or a metric that cannot score.
    pub fn score(&self, images: &[usize], captions: &[Vec<String>]) -> Result<Rewards, TrainError> {
        let references: Vec<&Vec<Vec<String>>> = images
            .iter()
            .map(|image| {
                self.references
                    .get(image)
                    .ok_or_else(|| TrainError::Config(format!("image {image} is not a training image")))
            })
            .collect::<Result<_, _>>()?;
        let cider: Vec<f64> = captions
            .iter()
            .zip(&references)
            .map(|(caption, refs)| self.cider.score(caption, refs))
            .collect::<Result<_, _>>()?;
        let mut total = cider.clone();
        if self.bleu_weight > 0.0 {
            let refs: Vec<&[Vec<String>]> = references.iter().map(|r| r.as_slice()).collect();
            let bleu = Bleu::coco().sentences(&Corpus::new(captions, &refs)?)?;
            for (reward, scores) in total.iter_mut().zip(bleu) {
                *reward += self.bleu_weight * scores[3];
            }
        }
        Ok(Rewards { cider, total })
    }
}

/// Captions' CIDEr-D and rewards ([`Reward::score`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rewards {
    /// Each caption's CIDEr-D (training document frequencies).
    pub cider: Vec<f64>,
    /// Each caption's reward: its CIDEr-D plus the weighted BLEU-4.
    pub total: Vec<f64>,
}

/// What one self-critical step did, for metrics.jsonl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScstOutcome {
    /// The weighted loss the step descended.
    pub loss: f64,
    /// The samples' mean reward.
    pub reward: f64,
    /// The mean baseline.
    pub baseline: f64,
    /// The greedy captions' mean CIDEr-D (training document frequencies).
    pub greedy_cider: f64,
    /// The share of samples rewarded above their baseline.
    pub better: f64,
}

/// How a self-critical step runs: what rewards, the settings, the vocabulary, the longest caption.
pub struct ScstContext<'a> {
    /// The reward.
    pub reward: &'a Reward,
    /// The settings.
    pub settings: &'a ScstSettings,
    /// The model's vocabulary (captions become words to be rewarded).
    pub vocabulary: &'a Vocabulary,
    /// The longest caption sampled, in tokens.
    pub max_length: usize,
}

/// One self-critical step on the training images `images`, whose head input is `head_input`
/// (the pooled features or grids, one row per image): `settings.samples` captions per image
/// drawn with `seed` (image `i`'s stream from `seed` and its row, so that a resumed run draws
/// the same), rewarded, compared with the baseline, then one optimizer step (learning rate `lr`,
/// gradients clipped to `clip_grad_norm`) on the weighted teacher-forced pass.
///
/// # Errors
/// A candle error, or a metric that cannot score.
pub fn scst_step(
    context: &ScstContext,
    model: &TrainModel,
    head_input: &Tensor,
    images: &[usize],
    seed: u64,
    optimizer: &mut Adam,
    (lr, clip_grad_norm): (f64, Option<f64>),
) -> Result<ScstOutcome, TrainError> {
    let &ScstContext { reward, settings, vocabulary, max_length } = context;
    let network = &model.model;
    let encoded = network.encode_head_input(&head_input.detach())?.detach();
    let samples = settings.samples;
    let seeds: Vec<u64> =
        images.iter().map(|&image| seed ^ (image as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    let sampling = Sampling { temperature: settings.temperature as f32, top_k: None, top_p: None };
    let specials = (Vocabulary::SOS, Vocabulary::EOS);
    // The forward pass the sampling computed, kept where the backend can, so that the loss's
    // pass over the samples runs only backward.
    let (drawn, forward) =
        match network.sample_keeping_forward(&encoded, (&seeds, samples), max_length, specials.1, sampling)? {
            Some((drawn, forward)) => (drawn, Some(forward)),
            None => (network.sample(&encoded, &seeds, samples, max_length, specials, sampling)?, None),
        };
    let drawn: Vec<Hypothesis> = drawn.into_iter().flatten().collect();
    // The words a caption is rewarded for: as captioning gives them, the specials removed.
    let words = |captions: &[Hypothesis]| -> Vec<Vec<String>> {
        captions.iter().map(|caption| Generated::of(vocabulary, caption.clone()).words).collect()
    };
    let sampled_images: Vec<usize> = images.iter().flat_map(|&image| std::iter::repeat_n(image, samples)).collect();
    let rewards = reward.score(&sampled_images, &words(&drawn))?.total;
    let greedy = network.greedy(&encoded, max_length, Vocabulary::SOS, Vocabulary::EOS)?;
    let greedy_scores = reward.score(images, &words(&greedy))?;
    let baselines: Vec<f64> = match settings.baseline {
        Baseline::Greedy => (0..rewards.len()).map(|i| greedy_scores.total[i / samples]).collect(),
        Baseline::Mean => rewards
            .chunks(samples)
            .flat_map(|image| {
                let total: f64 = image.iter().sum();
                image.iter().map(move |r| (total - r) / (samples - 1) as f64)
            })
            .collect(),
    };
    let advantages: Vec<f32> = rewards.iter().zip(&baselines).map(|(r, b)| (r - b) as f32).collect();
    let sampled_ids: Vec<Vec<u32>> = drawn.iter().map(|caption| caption.ids.clone()).collect();
    let rows: Vec<u32> = (0..images.len() as u32).flat_map(|i| std::iter::repeat_n(i, samples)).collect();
    let repeated = head_input.index_select(&Tensor::new(rows.as_slice(), head_input.device())?, 0)?;
    // On policy: the samples were drawn without dropout, and their log-probabilities are taken so.
    let captions = network.teacher_forcing_captions(&sampled_ids, (Vocabulary::SOS, Vocabulary::PAD), &model.device)?;
    let targets = Targets::new(&captions, Vocabulary::PAD).weighted(&advantages);
    let kept = match &forward {
        Some(forward) => network.sampled_head_gradients(&repeated, targets, forward)?,
        None => None,
    };
    let loss = match kept {
        Some(gradients) => gradients_step(gradients, optimizer, lr, clip_grad_norm)?,
        None => optimizer_step(model, &repeated, targets, &mut Dropout::new(0.0, 0), optimizer, lr, clip_grad_norm)?,
    };
    let better = rewards.iter().zip(&baselines).filter(|(r, b)| r > b).count();
    Ok(ScstOutcome {
        loss,
        reward: mean(&rewards),
        baseline: mean(&baselines),
        greedy_cider: mean(&greedy_scores.cider),
        better: better as f64 / rewards.len().max(1) as f64,
    })
}

/// The mean of `values` (0 for none).
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    /// The reward is the training-frequency CIDEr-D, plus the weighted per-caption BLEU-4; an image
    /// outside the training references is an error, not a zero.
    #[test]
    fn the_reward_is_cider_plus_weighted_bleu() {
        let references = vec![
            (3, vec![words("a red circle on the left"), words("a red circle left of centre")]),
            (8, vec![words("two blue squares side by side"), words("a pair of blue squares")]),
            (9, vec![words("a green triangle on the right"), words("one green triangle at the right")]),
        ];
        let captions = vec![words("a red circle on the left"), words("two blue squares"), words("")];
        let plain = Reward::from_references(references.clone(), 0.0).unwrap().score(&[3, 8, 9], &captions).unwrap();
        assert_eq!(plain.cider, plain.total);
        assert!(plain.cider[0] > plain.cider[1] && plain.cider[1] > 0.0 && plain.cider[2] == 0.0, "{plain:?}");
        let weighted = Reward::from_references(references, 0.5).unwrap();
        let scored = weighted.score(&[3, 8, 9], &captions).unwrap();
        let refs: Vec<Vec<Vec<String>>> = vec![
            vec![words("a red circle on the left"), words("a red circle left of centre")],
            vec![words("two blue squares side by side"), words("a pair of blue squares")],
            vec![words("a green triangle on the right"), words("one green triangle at the right")],
        ];
        let bleu = Bleu::coco().sentences(&Corpus::new(&captions, &refs).unwrap()).unwrap();
        for (i, sentence) in bleu.iter().enumerate() {
            assert_eq!(scored.cider[i], plain.cider[i]);
            assert_eq!(scored.total[i], plain.cider[i] + 0.5 * sentence[3]);
        }
        assert!(scored.total[0] > scored.cider[0], "an exact caption has a BLEU-4 of 1");
        assert!(weighted.score(&[4], &captions[..1]).is_err());
    }
}
