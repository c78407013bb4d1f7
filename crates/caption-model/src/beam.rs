//! Beam search over a [`DecoderRNN`], batched over images.
//!
//! Each image keeps up to `beam_size` live hypotheses; every step runs all live hypotheses of all
//! images through the LSTM at once, extends each by every word, and keeps the `beam_size` best
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
}

impl Hypothesis {
    /// The score hypotheses are ranked by.
    pub fn score(&self, length_penalty: f32) -> f32 {
        if length_penalty == 0.0 {
            self.log_prob
        } else {
            self.log_prob / (self.ids.len().max(1) as f32).powf(length_penalty)
        }
    }
}

/// A live hypothesis and the row of its LSTM state in the step's batch.
struct Live {
    hypothesis: Hypothesis,
    row: usize,
}

impl DecoderRNN {
    /// Beam search for each row of `features` (batch × embed); one best hypothesis per row.
    pub fn beam_search(&self, features: &Tensor, config: BeamConfig) -> Result<Vec<Hypothesis>> {
        let start = Hypothesis { ids: Vec::new(), log_prob: 0.0, finished: false };
        Ok(self
            .beam_search_n_best(features, config, 1)?
            .into_iter()
            .map(|ranked| ranked.into_iter().next().unwrap_or(start.clone()))
            .collect())
    }

    /// Beam search for each row of `features` (batch × embed): up to `n` hypotheses per row,
    /// ranked by [`Hypothesis::score`]: finished ones first, then unfinished ones when fewer than
    /// `n` finished. The first is [`beam_search`](Self::beam_search)'s. Fewer than `n` come back
    /// only when the search kept fewer (`n` above the beam size, or a tiny vocabulary).
    pub fn beam_search_n_best(&self, features: &Tensor, config: BeamConfig, n: usize) -> Result<Vec<Vec<Hypothesis>>> {
        let images = features.dim(0)?;
        let beam = config.beam_size.max(1);
        let start = Hypothesis { ids: Vec::new(), log_prob: 0.0, finished: false };
        let mut live: Vec<Vec<Live>> = (0..images).map(|i| vec![Live { hypothesis: start.clone(), row: i }]).collect();
        let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); images];
        let mut input = features.clone();
        let mut state = None;
        for _ in 0..config.max_length {
            let (logits, next_state) = self.step(&input, state.as_ref())?;
            let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
            // The next step's rows: (parent row, word) for every hypothesis that stays live.
            let mut parents: Vec<u32> = Vec::new();
            let mut words: Vec<u32> = Vec::new();
            for (image, hypotheses) in live.iter_mut().enumerate() {
                let mut candidates: Vec<(f32, usize, u32)> = Vec::new();
                for (index, entry) in hypotheses.iter().enumerate() {
                    let base = entry.hypothesis.log_prob;
                    candidates
                        .extend(log_probs[entry.row].iter().enumerate().map(|(w, &lp)| (base + lp, index, w as u32)));
                }
                // All candidates have the same length, so normalisation does not change their order.
                candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
                let mut next = Vec::new();
                for &(log_prob, index, word) in candidates.iter().take(beam) {
                    let mut ids = hypotheses[index].hypothesis.ids.clone();
                    ids.push(word);
                    if word == config.eos {
                        finished[image].push(Hypothesis { ids, log_prob, finished: true });
                    } else {
                        next.push(Live {
                            hypothesis: Hypothesis { ids, log_prob, finished: false },
                            row: parents.len(),
                        });
                        parents.push(hypotheses[index].row as u32);
                        words.push(word);
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
            let index = Tensor::new(parents.as_slice(), features.device())?;
            state =
                Some(LstmState { h: next_state.h.index_select(&index, 1)?, c: next_state.c.index_select(&index, 1)? });
            input = self.embed_ids(&Tensor::new(words.as_slice(), features.device())?)?;
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
}
