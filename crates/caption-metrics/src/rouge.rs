//! ROUGE-L as pycocoevalcap 1.2's `Rouge` computes it: the F-measure (beta 1.2) of the longest
//! common subsequence, taking the best precision and the best recall over the references
//! separately, averaged over segments with numpy.
//!
//! pycocoevalcap splits on single spaces, so an empty sentence is one empty token there; this is
//! reproduced (an empty hypothesis against an empty reference scores 1).

use serde::Serialize;

use crate::Corpus;
use crate::python_numbers::{numpy_mean, python_pow};

/// ROUGE-L settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RougeL {
    /// Weight of recall against precision (pycocoevalcap: 1.2).
    pub beta: f64,
}

impl Default for RougeL {
    fn default() -> Self {
        Self { beta: 1.2 }
    }
}

/// A corpus ROUGE-L score and the score of each segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RougeScore {
    /// Mean of the segment scores.
    pub score: f64,
    /// One score per segment, in corpus order.
    pub segments: Vec<f64>,
}

impl RougeL {
    /// Scores every segment of `corpus`.
    pub fn score(&self, corpus: &Corpus) -> RougeScore {
        let mut row = Vec::new();
        let segments: Vec<f64> = (0..corpus.len())
            .map(|s| {
                let candidate = corpus.hypothesis(s);
                let (mut best_precision, mut best_recall) = (f64::MIN, f64::MIN);
                for reference in corpus.references(s) {
                    let lcs = lcs_of_split(reference, candidate, &mut row) as f64;
                    best_precision = best_precision.max(lcs / split_len(candidate));
                    best_recall = best_recall.max(lcs / split_len(reference));
                }
                self.f_measure(best_precision, best_recall)
            })
            .collect();
        RougeScore { score: numpy_mean(&segments), segments }
    }

    fn f_measure(&self, precision: f64, recall: f64) -> f64 {
        if precision == 0.0 || recall == 0.0 {
            return 0.0;
        }
        let beta2 = python_pow(self.beta, 2.0);
        ((1.0 + beta2) * precision * recall) / (recall + beta2 * precision)
    }
}

/// Length of `sentence.split(" ")`: an empty sentence is one empty token.
fn split_len(tokens: &[u32]) -> f64 {
    tokens.len().max(1) as f64
}

/// LCS length of two sentences as split by `str.split(" ")`.
fn lcs_of_split(a: &[u32], b: &[u32], row: &mut Vec<u32>) -> usize {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => 1,
        (true, false) | (false, true) => 0,
        (false, false) => lcs(a, b, row),
    }
}

/// Longest common subsequence length, with one row of the dynamic programme.
fn lcs(a: &[u32], b: &[u32], row: &mut Vec<u32>) -> usize {
    row.clear();
    row.resize(b.len() + 1, 0);
    for &x in a {
        let mut diagonal = 0;
        for (j, &y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal + 1 } else { above.max(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()] as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_finds_subsequences() {
        let mut row = Vec::new();
        assert_eq!(lcs(&[1, 2, 3, 4, 5], &[2, 9, 4, 5], &mut row), 3);
        assert_eq!(lcs(&[1, 2], &[3, 4], &mut row), 0);
    }

    #[test]
    fn empty_sentences_follow_split_on_space() {
        let corpus = Corpus::new(&[Vec::<&str>::new()], &[[Vec::<&str>::new()]]).unwrap();
        assert_eq!(RougeL::default().score(&corpus).score, 1.0);
    }
}
