//! Beam search, batched over images, over any decoder that advances a batch of hypotheses one
//! word at a time: [`DecoderRNN`] here, [`DecoderWithAttention`](crate::DecoderWithAttention) in
//! [`attention`](crate::attention) (whose hypotheses also carry each word's attention weights).
//!
//! Each image keeps up to `beam_size` live hypotheses; every step runs all live hypotheses of all
//! images through the decoder at once, extends each by every word, and keeps the `beam_size` best
//! extensions per image. A hypothesis that emits `<EOS>` is finished. Search ends for an image when
//! it has `beam_size` finished hypotheses or no live one, or at `max_length`; the result is the best
//! finished hypothesis or, when none finished, the best unfinished one. Scores are summed
//! log-probabilities, compared after dividing by `length^length_penalty` (0 = no normalisation).
//! [`DecoderRNN::beam_search_n_best`] returns the ranking itself: the finished hypotheses best
//! first, then (when fewer than asked finished within `max_length`) the unfinished ones, best first.

use candle_core::{D, Result, Tensor};

use crate::{DecoderRNN, LstmState};

/// Beam search settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamConfig {
    /// Hypotheses kept per image.
    pub beam_size: usize,
    /// Longest caption, in words (the end token included).
    pub max_length: usize,
    /// Exponent of the length normalisation (0: none; 1: average log-probability).
    pub length_penalty: f32,
    /// The end-of-sentence id.
    pub eos: u32,
}

/// One hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Word ids, the end token included when finished.
    pub ids: Vec<u32>,
    /// Summed log-probability.
    pub log_prob: f32,
    /// Whether it ended with `<EOS>`.
    pub finished: bool,
    /// Per word, the attention weights the decoder chose it with (empty for a decoder without
    /// attention).
    pub alphas: Vec<Vec<f32>>,
}

impl Hypothesis {
    /// The empty hypothesis every search starts from.
    pub fn start() -> Self {
        Self { ids: Vec::new(), log_prob: 0.0, finished: false, alphas: Vec::new() }
    }

    /// The score hypotheses are ranked by.
    pub fn score(&self, length_penalty: f32) -> f32 {
        if length_penalty == 0.0 {
            self.log_prob
        } else {
            self.log_prob / (self.ids.len().max(1) as f32).powf(length_penalty)
        }
    }
}

/// What a decoder returns for one step of the search: per row of the step's batch, the
/// log-probabilities of the next word and (an attention decoder's) the weights over the grid.
pub(crate) struct BeamStep {
    /// Rows × vocabulary.
    pub log_probs: Vec<Vec<f32>>,
    /// Rows × positions, or `None`.
    pub alphas: Option<Vec<Vec<f32>>>,
}

/// The rows a step continues: for each row of the next batch, the row of the previous step it
/// extends and the word it was extended with.
pub(crate) struct Continued<'a> {
    /// Previous rows.
    pub parents: &'a [u32],
    /// Their chosen words.
    pub words: &'a [u32],
}

/// A live hypothesis and the row of its decoder state in the step's batch.
struct Live {
    hypothesis: Hypothesis,
    row: usize,
}

/// Beam search over `images` images: `step(None)` runs the first step (row `i` is image `i`),
/// `step(Some(continued))` the next ones. Up to `n` hypotheses per image, ranked as
/// [`DecoderRNN::beam_search_n_best`] says.
pub(crate) fn search(
    images: usize,
    config: BeamConfig,
    n: usize,
    mut step: impl FnMut(Option<Continued<'_>>) -> Result<BeamStep>,
) -> Result<Vec<Vec<Hypothesis>>> {
    let beam = config.beam_size.max(1);
    let mut live: Vec<Vec<Live>> =
        (0..images).map(|i| vec![Live { hypothesis: Hypothesis::start(), row: i }]).collect();
    let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); images];
    let (mut parents, mut words): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for length in 0..config.max_length {
        let continued = (length > 0).then(|| Continued { parents: &parents, words: &words });
        let BeamStep { log_probs, alphas } = step(continued)?;
        // The next step's rows: (parent row, word) for every hypothesis that stays live.
        let (mut next_parents, mut next_words) = (Vec::new(), Vec::new());
        for (image, hypotheses) in live.iter_mut().enumerate() {
            let mut candidates: Vec<(f32, usize, u32)> = Vec::new();
            for (index, entry) in hypotheses.iter().enumerate() {
                let base = entry.hypothesis.log_prob;
                candidates.extend(log_probs[entry.row].iter().enumerate().map(|(w, &lp)| (base + lp, index, w as u32)));
            }
            // All candidates have the same length, so normalisation does not change their order.
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mut next = Vec::new();
            for &(log_prob, index, word) in candidates.iter().take(beam) {
                let parent = &hypotheses[index];
                let mut ids = parent.hypothesis.ids.clone();
                ids.push(word);
                let mut weights = parent.hypothesis.alphas.clone();
                if let Some(alphas) = &alphas {
                    weights.push(alphas[parent.row].clone());
                }
                let finishes = word == config.eos;
                let hypothesis = Hypothesis { ids, log_prob, finished: finishes, alphas: weights };
                if finishes {
                    finished[image].push(hypothesis);
                } else {
                    next.push(Live { hypothesis, row: next_parents.len() });
                    next_parents.push(parent.row as u32);
                    next_words.push(word);
                }
            }
            if finished[image].len() >= beam {
                // Done: its remaining rows are carried but never extended.
                next.clear();
            }
            *hypotheses = next;
        }
        if live.iter().all(Vec::is_empty) {
            break;
        }
        (parents, words) = (next_parents, next_words);
    }
    let ranked = |mut pool: Vec<Hypothesis>| {
        // Stable: equal scores keep the order they were found in.
        pool.sort_by(|a, b| b.score(config.length_penalty).total_cmp(&a.score(config.length_penalty)));
        pool
    };
    Ok(live
        .into_iter()
        .zip(finished)
        .map(|(live, finished)| {
            let mut pool = ranked(finished);
            if pool.len() < n {
                pool.extend(ranked(live.into_iter().map(|l| l.hypothesis).collect()));
            }
            pool.truncate(n);
            pool
        })
        .collect())
}

/// The first of each image's ranking (the empty hypothesis when a search kept none).
pub fn best_of(rankings: Vec<Vec<Hypothesis>>) -> Vec<Hypothesis> {
    rankings.into_iter().map(|ranked| ranked.into_iter().next().unwrap_or_else(Hypothesis::start)).collect()
}

impl DecoderRNN {
    /// Beam search for each row of `features` (batch × embed); one best hypothesis per row.
    pub fn beam_search(&self, features: &Tensor, config: BeamConfig) -> Result<Vec<Hypothesis>> {
        Ok(best_of(self.beam_search_n_best(features, config, 1)?))
    }

    /// Beam search for each row of `features` (batch × embed): up to `n` hypotheses per row,
    /// ranked by [`Hypothesis::score`]: finished ones first, then unfinished ones when fewer than
    /// `n` finished. The first is [`beam_search`](Self::beam_search)'s. Fewer than `n` come back
    /// only when the search kept fewer (`n` above the beam size, or a tiny vocabulary).
    pub fn beam_search_n_best(&self, features: &Tensor, config: BeamConfig, n: usize) -> Result<Vec<Vec<Hypothesis>>> {
        let device = features.device();
        let mut state: Option<LstmState> = None;
        search(features.dim(0)?, config, n, |continued| {
            let input = match &continued {
                None => features.clone(),
                Some(rows) => self.embed_ids(&Tensor::new(rows.words, device)?)?,
            };
            let previous = match (&continued, state.take()) {
                (Some(rows), Some(last)) => {
                    let index = Tensor::new(rows.parents, device)?;
                    Some(LstmState { h: last.h.index_select(&index, 1)?, c: last.c.index_select(&index, 1)? })
                }
                _ => None,
            };
            let (logits, next) = self.step(&input, previous.as_ref())?;
            state = Some(next);
            let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
            Ok(BeamStep { log_probs, alphas: None })
        })
    }
}
