//! Sampling captions from a model's distribution, batched over images, over the same decoding
//! steps beam search is written on ([`Network::decoding_steps`](crate::Network::decoding_steps)):
//! at each step every live caption's next word is drawn from `softmax(log p / temperature)`,
//! restricted to the `top_k` most probable words and then to the smallest set of most probable
//! words whose probability reaches `top_p` (nucleus sampling) when asked, until `<EOS>` or the
//! longest length. What self-critical training samples, and diverse captions for people.
//!
//! Each image's samples draw from their own ChaCha8 stream (the image's seed, one stream per
//! sample), so a caption depends on its image's seed and index only, not on the batch it is in
//! (on the LSTM decoder's CPU loop bit for bit, log-probabilities included; through candle's
//! products, as the attention decoder's steps run, a lone row's sums may round apart in the last
//! bit).

use candle_core::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::beam::{BeamStep, Continued, Hypothesis};

/// How words are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Divides the log-probabilities before the softmax: 1 samples the model's distribution,
    /// below 1 sharpens it, above 1 flattens it.
    pub temperature: f32,
    /// Draw only among the `k` most probable words (ties: the lower id first).
    pub top_k: Option<usize>,
    /// Draw only among the fewest most probable words (after `top_k` and the temperature) whose
    /// probability sums to at least `p`, in (0, 1].
    pub top_p: Option<f32>,
}

impl Default for Sampling {
    /// The model's own distribution.
    fn default() -> Self {
        Self { temperature: 1.0, top_k: None, top_p: None }
    }
}

impl Sampling {
    /// Checks the settings.
    ///
    /// # Errors
    /// A message naming the setting out of its range.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!("the temperature must be a positive number, not {}", self.temperature));
        }
        if self.top_k == Some(0) {
            return Err("top-k must keep at least one word".into());
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("top-p must be above 0 and at most 1, not {p}"));
        }
        Ok(())
    }

    /// The distribution a word is drawn from, given a row's log-probability of every word (by
    /// id): `(word, probability)` of the words that may be drawn, probabilities summing to 1.
    pub fn distribution(&self, log_probs: &[(u32, f32)]) -> Vec<(u32, f64)> {
        let temperature = f64::from(self.temperature);
        let mut words: Vec<(u32, f64)> =
            log_probs.iter().map(|&(word, log_prob)| (word, f64::from(log_prob) / temperature)).collect();
        if self.top_k.is_some() || self.top_p.is_some() {
            words.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            words.truncate(self.top_k.unwrap_or(usize::MAX).max(1));
        }
        let top = words.iter().map(|w| w.1).fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for word in &mut words {
            word.1 = (word.1 - top).exp();
            total += word.1;
        }
        for word in &mut words {
            word.1 /= total;
        }
        if let Some(p) = self.top_p {
            // Sorted above: keep words until their probability reaches p (the one that crosses
            // it included), then scale the kept ones back to a sum of 1.
            let mut reached = 0.0;
            let kept = words
                .iter()
                .position(|w| {
                    reached += w.1;
                    reached >= f64::from(p)
                })
                .map_or(words.len(), |last| last + 1);
            words.truncate(kept);
            let total: f64 = words.iter().map(|w| w.1).sum();
            for word in &mut words {
                word.1 /= total;
            }
        }
        words
    }
}

/// The random stream sample `sample` of an image with `seed` draws its words from: ChaCha8 from
/// the seed, one stream per sample.
pub(crate) fn caption_rng(seed: u64, sample: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(sample as u64);
    rng
}

/// Draws one word of `distribution` ([`Sampling::distribution`]).
fn draw(distribution: &[(u32, f64)], rng: &mut ChaCha8Rng) -> u32 {
    let target: f64 = rng.random::<f64>();
    let mut reached = 0.0;
    for &(word, probability) in distribution {
        reached += probability;
        if target < reached {
            return word;
        }
    }
    // Rounding left the sum a hair below 1: the last word that may be drawn.
    distribution.iter().rev().find(|w| w.1 > 0.0).map_or(distribution[0].0, |w| w.0)
}

/// `samples` captions for each image, image `i`'s drawn from `seeds[i]`: `step(None)` runs the
/// first decoding step (row `i` is image `i`), `step(Some(continued))` the next ones, each
/// answering every word's log-probability per row (as [`Network::decoding_steps`] does). Each
/// caption runs to its `eos` (included) or `max_length` words; its `log_prob` is the model's
/// summed log-probability of its words (temperature and truncation do not change it); with
/// attention, each word's weights.
///
/// # Errors
/// Settings out of range ([`Sampling::check`]), or the step's error.
///
/// [`Network::decoding_steps`]: crate::Network::decoding_steps
pub fn sample(
    seeds: &[u64],
    samples: usize,
    max_length: usize,
    eos: u32,
    sampling: Sampling,
    mut step: impl FnMut(Option<Continued<'_>>) -> Result<BeamStep>,
) -> Result<Vec<Vec<Hypothesis>>> {
    sampling.check().map_err(Error::msg)?;
    let mut captions: Vec<Hypothesis> = vec![Hypothesis::start(); seeds.len() * samples];
    let mut rngs: Vec<ChaCha8Rng> =
        (0..captions.len()).map(|index| caption_rng(seeds[index / samples], index % samples)).collect();
    // Per live caption, the row of the last step it continues; the first step has one row per
    // image, which each of its samples continues.
    let mut live: Vec<(usize, usize)> = (0..captions.len()).map(|index| (index, index / samples.max(1))).collect();
    let (mut parents, mut words): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for length in 0..max_length {
        if live.is_empty() {
            break;
        }
        let continued = (length > 0).then(|| Continued { parents: &parents, words: &words });
        let BeamStep { next_words: offered_words, alphas } = step(continued)?;
        let (mut next_parents, mut next_words, mut still_live) = (Vec::new(), Vec::new(), Vec::new());
        for &(index, row) in &live {
            let offered = &offered_words[row];
            let word = draw(&sampling.distribution(offered), &mut rngs[index]);
            let log_prob = offered.iter().find(|w| w.0 == word).map_or(f32::NEG_INFINITY, |w| w.1);
            let caption = &mut captions[index];
            caption.ids.push(word);
            caption.log_prob += log_prob;
            if let Some(alphas) = &alphas {
                caption.alphas.push(alphas[row].clone());
            }
            if word == eos {
                caption.finished = true;
            } else {
                still_live.push((index, next_parents.len()));
                next_parents.push(row as u32);
                next_words.push(word);
            }
        }
        (live, parents, words) = (still_live, next_parents, next_words);
    }
    let mut captions = captions.into_iter();
    Ok(seeds.iter().map(|_| captions.by_ref().take(samples).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder whose next-word distribution depends on the caption so far: per row, the
    /// log-probabilities of `vocab` words from a hash of the prefix.
    struct Toy {
        vocab: usize,
        prefixes: Vec<Vec<u32>>,
    }

    impl Toy {
        fn log_probs(prefix: &[u32], vocab: usize) -> Vec<f32> {
            let key = prefix.iter().fold(17u64, |k, &w| k.wrapping_mul(31).wrapping_add(u64::from(w) + 1));
            let logits: Vec<f64> = (0..vocab as u64).map(|w| ((key.wrapping_mul(w + 7) % 13) as f64) / 4.0).collect();
            let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
            logits.iter().map(|l| (l - top - total.ln()) as f32).collect()
        }

        fn step(&mut self, images: usize, continued: Option<Continued<'_>>) -> BeamStep {
            self.prefixes = match continued {
                None => vec![Vec::new(); images],
                Some(rows) => rows
                    .parents
                    .iter()
                    .zip(rows.words)
                    .map(|(&p, &w)| {
                        let mut prefix = self.prefixes[p as usize].clone();
                        prefix.push(w);
                        prefix
                    })
                    .collect(),
            };
            BeamStep::every_word(self.prefixes.iter().map(|p| Self::log_probs(p, self.vocab)).collect(), None)
        }
    }

    fn draw_captions(seeds: &[u64], samples: usize, sampling: Sampling) -> Vec<Vec<Hypothesis>> {
        let mut toy = Toy { vocab: 6, prefixes: Vec::new() };
        sample(seeds, samples, 3, 0, sampling, |continued| Ok(toy.step(seeds.len(), continued))).unwrap()
    }

    /// The chi-square statistic of `counts` against `probabilities` (n draws).
    fn chi_square(counts: &[usize], probabilities: &[f64], n: usize) -> f64 {
        counts.iter().zip(probabilities).map(|(&c, &p)| (c as f64 - n as f64 * p).powi(2) / (n as f64 * p)).sum()
    }

    /// 100,000 whole captions (three words at most, `<EOS>` = 0) drawn from the toy decoder: the
    /// frequency of every caption matches the product of its words' probabilities (chi-square
    /// below its 0.999 quantile), and each caption's `log_prob` is that product's logarithm.
    #[test]
    fn caption_frequencies_match_the_model() {
        let n = 100_000;
        let drawn = draw_captions(&[42], n, Sampling::default()).remove(0);
        let mut counts: std::collections::BTreeMap<Vec<u32>, usize> = Default::default();
        for caption in &drawn {
            *counts.entry(caption.ids.clone()).or_default() += 1;
            let expected: f32 =
                (0..caption.ids.len()).map(|t| Toy::log_probs(&caption.ids[..t], 6)[caption.ids[t] as usize]).sum();
            assert!((caption.log_prob - expected).abs() < 1e-5);
            assert_eq!(caption.finished, caption.ids.last() == Some(&0));
        }
        // Every possible caption: finished at 1, 2 or 3 words, or cut at 3.
        let mut all: Vec<Vec<u32>> = vec![vec![0]];
        for a in 1..6 {
            all.push(vec![a, 0]);
            for b in 1..6 {
                all.extend((0..6).map(|c| vec![a, b, c]));
            }
        }
        let probability = |ids: &[u32]| {
            (0..ids.len()).map(|t| f64::from(Toy::log_probs(&ids[..t], 6)[ids[t] as usize]).exp()).product::<f64>()
        };
        let probabilities: Vec<f64> = all.iter().map(|ids| probability(ids)).collect();
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        let observed: Vec<usize> = all.iter().map(|ids| counts.get(ids).copied().unwrap_or(0)).collect();
        assert_eq!(observed.iter().sum::<usize>(), n, "a caption outside the possible ones");
        // 186 captions, 185 degrees of freedom: the 0.999 quantile is 254.4.
        let statistic = chi_square(&observed, &probabilities, n);
        assert!(statistic < 254.4, "chi-square {statistic}");
    }

    /// The temperature reshapes the distribution as softmax(log p / T): first words at T = 0.5.
    #[test]
    fn temperature_samples_the_reshaped_distribution() {
        let n = 100_000;
        let sampling = Sampling { temperature: 0.5, ..Sampling::default() };
        let drawn = draw_captions(&[7], n, sampling).remove(0);
        let mut counts = [0; 6];
        for caption in &drawn {
            counts[caption.ids[0] as usize] += 1;
        }
        let reshaped: Vec<f64> = Toy::log_probs(&[], 6).iter().map(|&lp| (2.0 * f64::from(lp)).exp()).collect();
        let total: f64 = reshaped.iter().sum();
        let probabilities: Vec<f64> = reshaped.iter().map(|p| p / total).collect();
        // 5 degrees of freedom: the 0.999 quantile is 20.52.
        assert!(chi_square(&counts, &probabilities, n) < 20.52, "{counts:?} vs {probabilities:?}");
    }

    #[test]
    fn top_k_and_top_p_never_draw_an_excluded_word() {
        let log_probs: Vec<(u32, f32)> =
            [0.05f32, 0.4, 0.1, 0.3, 0.15].iter().enumerate().map(|(w, p)| (w as u32, p.ln())).collect();
        let allowed = |sampling: Sampling| -> Vec<u32> {
            let mut words: Vec<u32> = sampling.distribution(&log_probs).iter().map(|w| w.0).collect();
            words.sort_unstable();
            words
        };
        assert_eq!(allowed(Sampling { top_k: Some(2), ..Sampling::default() }), [1, 3]);
        // 0.4 + 0.3 = 0.7 < 0.75: the third most probable (0.15) crosses it.
        assert_eq!(allowed(Sampling { top_p: Some(0.75), ..Sampling::default() }), [1, 3, 4]);
        assert_eq!(allowed(Sampling { top_k: Some(1), top_p: Some(1.0), ..Sampling::default() }), [1]);
        let kept = Sampling { top_p: Some(0.75), ..Sampling::default() }.distribution(&log_probs);
        assert!((kept.iter().map(|w| w.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((kept[0].1 - 0.4 / 0.85).abs() < 1e-6);
        // Drawn many times, an excluded word never comes.
        let sampling = Sampling { top_k: Some(3), top_p: Some(0.6), temperature: 1.5 };
        let allowed_words = allowed(sampling);
        for caption in draw_captions(&[1, 2, 3], 2_000, sampling).iter().flatten() {
            let mut prefix = Vec::new();
            for &word in &caption.ids {
                let offered: Vec<(u32, f32)> =
                    Toy::log_probs(&prefix, 6).into_iter().enumerate().map(|(w, lp)| (w as u32, lp)).collect();
                assert!(sampling.distribution(&offered).iter().any(|w| w.0 == word), "{word} after {prefix:?}");
                prefix.push(word);
            }
        }
        assert!(!allowed_words.is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_captions_whatever_the_batch() {
        let alone = draw_captions(&[5], 4, Sampling::default());
        let batched = draw_captions(&[9, 5, 11], 4, Sampling::default());
        assert_eq!(alone[0], batched[1]);
        assert_eq!(draw_captions(&[9, 5, 11], 4, Sampling::default()), batched);
        assert_ne!(batched[0], batched[1], "other seeds, other captions");
        // The samples of one image differ from each other (one stream each).
        assert!(batched[1].iter().any(|c| c.ids != batched[1][0].ids));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        for sampling in [
            Sampling { temperature: 0.0, ..Sampling::default() },
            Sampling { temperature: f32::NAN, ..Sampling::default() },
            Sampling { top_k: Some(0), ..Sampling::default() },
            Sampling { top_p: Some(0.0), ..Sampling::default() },
            Sampling { top_p: Some(1.5), ..Sampling::default() },
        ] {
            assert!(sampling.check().is_err(), "{sampling:?}");
        }
    }
}
