//! Beam search, batched over images, over any decoder that advances a batch of hypotheses one
//! word at a time: [`DecoderRNN`](crate::DecoderRNN) in [`decoder`](crate::decoder), [`DecoderWithAttention`](crate::DecoderWithAttention) in
//! [`attention`](crate::attention) (whose hypotheses also carry each word's attention weights).
//!
//! Each image keeps up to `beam_size` live hypotheses; every step runs all live hypotheses of all
//! images through the decoder at once, extends each by every word, and keeps the `beam_size` best
//! extensions per image. A hypothesis that emits `<EOS>` is finished. Search ends for an image when
//! it has `beam_size` finished hypotheses or no live one, or at `max_length`; the result is the best
//! finished hypothesis or, when none finished, the best unfinished one. Scores are summed
//! log-probabilities, compared after dividing by `length^length_penalty` (0 = no normalisation).
//! [`DecoderRNN::beam_search_n_best`](crate::DecoderRNN::beam_search_n_best) returns the ranking itself: the finished hypotheses best
//! first, then (when fewer than asked finished within `max_length`) the unfinished ones, best first.

use candle_core::Result;

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

/// What a decoder returns for one step of the search: per row of the step's batch, the words
/// that may come next with their log-probabilities and (an attention decoder's) the weights over
/// the grid.
pub struct BeamStep {
    /// Per row, `(word, log-probability)`: every word of the vocabulary, or the row's
    /// `beam_size` most probable words, equal ones the lower id first (an image keeps no more
    /// extensions than that, and the search ranks them in that order, so the others cannot be
    /// kept).
    pub next_words: Vec<Vec<(u32, f32)>>,
    /// Rows × positions, or `None`.
    pub alphas: Option<Vec<Vec<f32>>>,
}

impl BeamStep {
    /// A step that offers every word: `log_probs` is rows × vocabulary.
    pub fn every_word(log_probs: Vec<Vec<f32>>, alphas: Option<Vec<Vec<f32>>>) -> Self {
        let next_words = log_probs
            .into_iter()
            .map(|row| row.into_iter().enumerate().map(|(w, lp)| (w as u32, lp)).collect())
            .collect();
        Self { next_words, alphas }
    }
}

/// The rows a step continues: for each row of the next batch, the row of the previous step it
/// extends and the word it was extended with.
pub struct Continued<'a> {
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
/// [`DecoderRNN::beam_search_n_best`](crate::DecoderRNN::beam_search_n_best) says.
pub fn search(
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
        let BeamStep { next_words: offered, alphas } = step(continued)?;
        // The next step's rows: (parent row, word) for every hypothesis that stays live.
        let (mut next_parents, mut next_words) = (Vec::new(), Vec::new());
        for (image, hypotheses) in live.iter_mut().enumerate() {
            let mut candidates: Vec<(f32, usize, u32)> = Vec::new();
            for (index, entry) in hypotheses.iter().enumerate() {
                let base = entry.hypothesis.log_prob;
                candidates.extend(offered[entry.row].iter().map(|&(word, lp)| (base + lp, index, word)));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up decoder step: every hypothesis's next-word log-probabilities follow from its
    /// words so far (the same in any run), rounded to quarters so that equal scores occur.
    struct MadeUp {
        vocab: usize,
        /// Per row of the last step, a key of its hypothesis's words.
        keys: Vec<u64>,
    }

    impl MadeUp {
        fn log_probs(key: u64, vocab: usize) -> Vec<f32> {
            let mut state = key.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let logits: Vec<f32> = (0..vocab)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) % 12) as f32 * 0.25
                })
                .collect();
            let log_sum = logits.iter().map(|x| x.exp()).sum::<f32>().ln();
            logits.iter().map(|x| x - log_sum).collect()
        }

        fn step(&mut self, images: usize, continued: Option<Continued<'_>>, top: Option<usize>) -> BeamStep {
            self.keys = match continued {
                None => (0..images as u64).collect(),
                Some(rows) => rows
                    .parents
                    .iter()
                    .zip(rows.words)
                    .map(|(&p, &w)| self.keys[p as usize].wrapping_mul(31).wrapping_add(u64::from(w) + 7))
                    .collect(),
            };
            let rows: Vec<Vec<f32>> = self.keys.iter().map(|&key| Self::log_probs(key, self.vocab)).collect();
            let mut step = BeamStep::every_word(rows, None);
            if let Some(count) = top {
                // What the CUDA backend's top_words returns: best first, equal ones lower id first.
                for row in &mut step.next_words {
                    row.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    row.truncate(count);
                }
            }
            step
        }
    }

    #[test]
    fn offering_each_rows_best_words_finds_what_offering_every_word_finds() {
        for (beam_size, vocab, penalty) in [(1, 9, 0.0), (3, 9, 0.7), (4, 5, 1.0), (7, 5, 0.0)] {
            let config = BeamConfig { beam_size, max_length: 6, length_penalty: penalty, eos: 2 };
            let search_with = |top| {
                let mut decoder = MadeUp { vocab, keys: Vec::new() };
                search(3, config, beam_size + 1, |continued| Ok(decoder.step(3, continued, top))).unwrap()
            };
            let every = search_with(None);
            let best = search_with(Some(beam_size.min(vocab)));
            assert!(every.iter().flatten().any(|h| h.finished), "some hypothesis ends");
            assert_eq!(best, every, "beam {beam_size}, vocabulary {vocab}");
        }
    }
}
