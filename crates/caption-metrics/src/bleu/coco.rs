//! pycocoevalcap 1.2's `BleuScorer.compute_score(option="closest")`.
//!
//! Every precision is `(correct + tiny) / (guess + small)` with tiny = 1e-15 and small = 1e-9, so no
//! order is ever exactly zero and a perfect match scores 0.9999999996 (the 1e-9 in each
//! denominator). BLEU-k is the k-th root of the running product of precisions.

use crate::ngram::CorpusStats;

use super::Totals;

/// pycocoevalcap's `tiny`: added to match counts and lengths.
const TINY: f64 = 1e-15;
/// pycocoevalcap's `small`: added to n-gram counts and reference lengths.
const SMALL: f64 = 1e-9;

/// BLEU-1..N from summed statistics, and the brevity penalty applied.
pub(super) fn corpus_scores(totals: &Totals) -> (Vec<f64>, f64) {
    let correct: Vec<f64> = totals.matches.iter().map(|&m| m as f64).collect();
    let guess: Vec<f64> = totals.totals.iter().map(|&t| t as f64).collect();
    scores(&correct, &guess, totals.hyp_len as f64, totals.ref_len as f64)
}

/// BLEU-1..N of every segment, as the list `compute_score` returns beside the corpus score.
pub(super) fn sentence_scores(stats: &CorpusStats) -> Vec<Vec<f64>> {
    (0..stats.len())
        .map(|segment| {
            let correct: Vec<f64> = stats.matches(segment).iter().map(|&m| f64::from(m)).collect();
            let guess: Vec<f64> = (1..=stats.max_order).map(|n| f64::from(stats.total(segment, n))).collect();
            scores(&correct, &guess, f64::from(stats.hyp_len[segment]), f64::from(stats.ref_len[segment])).0
        })
        .collect()
}

fn scores(correct: &[f64], guess: &[f64], test_len: f64, ref_len: f64) -> (Vec<f64>, f64) {
    let mut product = 1.0;
    let mut bleus: Vec<f64> = correct
        .iter()
        .zip(guess)
        .enumerate()
        .map(|(k, (&c, &g))| {
            product *= (c + TINY) / (g + SMALL);
            product.powf(1.0 / (k + 1) as f64)
        })
        .collect();
    let ratio = (test_len + TINY) / (ref_len + SMALL);
    let mut brevity_penalty = 1.0;
    if ratio < 1.0 {
        brevity_penalty = (1.0 - 1.0 / ratio).exp();
        for bleu in &mut bleus {
            *bleu *= brevity_penalty;
        }
    }
    (bleus, brevity_penalty)
}
