//! CIDEr-D as pycocoevalcap 1.2's `Cider` computes it.
//!
//! Per segment, the hypothesis and each reference become tf-idf vectors of their 1..4-grams, with
//! document frequencies counted over the references of the evaluated corpus (each segment's
//! references count once per n-gram) and `log(number of segments)` as the reference length. The
//! score is the mean over orders and references of the clipped cosine similarity (`min(hyp, ref) ·
//! ref`), damped by a Gaussian of the length difference (sigma 6), times 10.
//!
//! Kept as pycocoevalcap has it: the "length" in the Gaussian is the number of *bigrams*, and sums
//! run in the order Python's dicts and numpy's pairwise summation give them.

use foldhash::HashMap;
use rayon::prelude::*;
use serde::Serialize;

use crate::ngram::{MAX_PACKED_ORDER, PackedNgram, pack};
use crate::python_numbers::{numpy_mean, python_pow};
use crate::{Corpus, MetricsError};

/// CIDEr-D settings (pycocoevalcap's defaults: n = 4, sigma = 6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CiderD {
    /// Largest n-gram order, 1 to 4.
    pub max_order: usize,
    /// Width of the Gaussian length penalty.
    pub sigma: f64,
}

impl Default for CiderD {
    fn default() -> Self {
        Self { max_order: 4, sigma: 6.0 }
    }
}

/// A corpus CIDEr-D score and the score of each segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiderScore {
    /// Mean of the segment scores (pycocoevalcap's first return value).
    pub score: f64,
    /// One score per segment, in corpus order.
    pub segments: Vec<f64>,
}

/// An n-gram's term frequency, in first-occurrence order as Python's dict keeps it.
pub(crate) type Counts = Vec<(PackedNgram, u32)>;

/// Segments per parallel task: small enough to share a few hundred segments between cores.
const PARALLEL_GRAIN: usize = 64;

impl CiderD {
    /// Scores every segment of `corpus`.
    ///
    /// # Errors
    /// [`MetricsError::InvalidConfig`] for an order outside 1..=4 or a non-positive sigma;
    /// [`MetricsError::Undefined`] when no reference has a single token (pycocoevalcap raises).
    pub fn score(&self, corpus: &Corpus) -> Result<CiderScore, MetricsError> {
        self.check()?;
        let segments: Vec<(Counts, Vec<Counts>)> = (0..corpus.len())
            .into_par_iter()
            .with_min_len(PARALLEL_GRAIN)
            .map_init(HashMap::default, |index, s| {
                let hyp = precook(corpus.hypothesis(s), self.max_order, index);
                let refs = corpus.references(s).map(|r| precook(r, self.max_order, index)).collect();
                (hyp, refs)
            })
            .collect();

        let log_document_frequency = document_frequencies(segments.iter().map(|(_, refs)| refs.as_slice()));

        if log_document_frequency.is_empty() {
            return Err(MetricsError::Undefined {
                library: "pycocoevalcap",
                reason: "CIDEr-D needs at least one reference n-gram (ValueError: max() arg is an empty sequence)"
                    .into(),
            });
        }
        let ref_len = (corpus.len() as f64).ln();
        let vectorizer =
            Vectorizer { log_document_frequency: &log_document_frequency, ref_len, max_order: self.max_order };
        let scores: Vec<f64> = segments
            .par_iter()
            .with_min_len(PARALLEL_GRAIN)
            .map(|(hyp, refs)| self.segment(&vectorizer, hyp, refs))
            .collect();
        Ok(CiderScore { score: numpy_mean(&scores), segments: scores })
    }

    /// Checks the settings.
    pub(crate) fn check(&self) -> Result<(), MetricsError> {
        if !(1..=MAX_PACKED_ORDER).contains(&self.max_order) {
            return Err(MetricsError::InvalidConfig(format!("CIDEr-D orders run from 1 to 4, not {}", self.max_order)));
        }
        if !(self.sigma > 0.0 && self.sigma.is_finite()) {
            return Err(MetricsError::InvalidConfig(format!("CIDEr-D sigma must be positive, not {}", self.sigma)));
        }
        Ok(())
    }

    /// One segment's score: the mean over its references of the orders' mean similarity, × 10
    /// (`compute_cider`'s loop body).
    pub(crate) fn segment(&self, vectorizer: &Vectorizer<'_>, hyp: &Counts, refs: &[Counts]) -> f64 {
        let hyp = vectorizer.vector(hyp, Role::Hypothesis);
        let mut sum = vec![0.0; self.max_order];
        for reference in refs {
            let reference = vectorizer.vector(reference, Role::Reference);
            for (total, value) in sum.iter_mut().zip(self.similarity(&hyp, &reference)) {
                *total += value;
            }
        }
        numpy_mean(&sum) / refs.len() as f64 * 10.0
    }

    /// pycocoevalcap's `sim`: clipped cosine similarity per order, damped by the length difference.
    fn similarity(&self, hyp: &TfIdf, reference: &TfIdf) -> Vec<f64> {
        let delta = hyp.length as f64 - reference.length as f64;
        let exponent = -python_pow(delta, 2.0) / (2.0 * python_pow(self.sigma, 2.0));
        let damping = python_pow(std::f64::consts::E, exponent);
        (0..self.max_order)
            .map(|n| {
                let mut value = 0.0;
                for &(ngram, weight) in &hyp.entries[n] {
                    let other = reference.weight(n, ngram);
                    value += weight.min(other) * other;
                }
                if hyp.norms[n] != 0.0 && reference.norms[n] != 0.0 {
                    value /= hyp.norms[n] * reference.norms[n];
                }
                value * damping
            })
            .collect()
    }
}

/// `compute_doc_freq`: per n-gram, the log of the number of segments whose references hold it
/// (`np.log(max(1., df))`, taken once here rather than at each occurrence).
pub(crate) fn document_frequencies<'a>(segments: impl Iterator<Item = &'a [Counts]>) -> HashMap<PackedNgram, f64> {
    let mut document_frequency: HashMap<PackedNgram, f64> = HashMap::default();
    let mut seen: Vec<PackedNgram> = Vec::new();
    for refs in segments {
        seen.clear();
        seen.extend(refs.iter().flatten().map(|&(ngram, _)| ngram));
        seen.sort_unstable();
        seen.dedup();
        for &ngram in &seen {
            *document_frequency.entry(ngram).or_insert(0.0) += 1.0;
        }
    }
    for df in document_frequency.values_mut() {
        *df = df.max(1.0).ln();
    }
    document_frequency
}

/// `precook`: n-gram counts of orders 1..=n in first-occurrence order.
pub(crate) fn precook(tokens: &[u32], max_order: usize, index: &mut HashMap<PackedNgram, usize>) -> Counts {
    let mut counts: Counts = Vec::new();
    index.clear();
    for n in 1..=max_order {
        for ngram in tokens.windows(n) {
            let key = pack(ngram);
            let position = *index.entry(key).or_insert_with(|| {
                counts.push((key, 0));
                counts.len() - 1
            });
            counts[position].1 += 1;
        }
    }
    counts
}

/// Turns counts into tf-idf vectors (`counts2vec`).
pub(crate) struct Vectorizer<'a> {
    /// The log of the number of segments whose references hold each n-gram
    /// ([`document_frequencies`]).
    pub log_document_frequency: &'a HashMap<PackedNgram, f64>,
    /// `log(number of segments)` the frequencies were counted over.
    pub ref_len: f64,
    /// Largest order.
    pub max_order: usize,
}

/// What a tf-idf vector is built for: a hypothesis is walked in its n-grams' first-occurrence
/// order (the order pycocoevalcap sums in), a reference is looked up in (sorted by n-gram).
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Hypothesis,
    Reference,
}

/// One sentence's tf-idf vectors, per order.
struct TfIdf {
    /// (n-gram, weight) per order: in first-occurrence order for a hypothesis, sorted by n-gram
    /// for a reference.
    entries: Vec<Vec<(PackedNgram, f64)>>,
    norms: Vec<f64>,
    /// pycocoevalcap's "length": the number of bigrams.
    length: u32,
}

impl TfIdf {
    /// A reference's weight of `ngram` (0 where it has none).
    fn weight(&self, order: usize, ngram: PackedNgram) -> f64 {
        let entries = &self.entries[order];
        entries.binary_search_by_key(&ngram, |&(k, _)| k).map_or(0.0, |i| entries[i].1)
    }
}

impl Vectorizer<'_> {
    fn vector(&self, counts: &Counts, role: Role) -> TfIdf {
        let mut entries = vec![Vec::new(); self.max_order];
        let mut norms = vec![0.0; self.max_order];
        let mut length = 0;
        // The norms are summed in first-occurrence order, as pycocoevalcap sums them.
        for &(ngram, term_frequency) in counts {
            let log_df = self.log_document_frequency.get(&ngram).copied().unwrap_or(0.0);
            let n = order_of(ngram) - 1;
            let weight = f64::from(term_frequency) * (self.ref_len - log_df);
            entries[n].push((ngram, weight));
            norms[n] += python_pow(weight, 2.0);
            if n == 1 {
                length += term_frequency;
            }
        }
        if role == Role::Reference {
            for order in &mut entries {
                order.sort_unstable_by_key(|&(k, _)| k);
            }
        }
        TfIdf { entries, norms: norms.into_iter().map(f64::sqrt).collect(), length }
    }
}

/// The number of tokens in a packed n-gram (each occupies one non-zero 32-bit lane).
fn order_of(ngram: PackedNgram) -> usize {
    (128 - ngram.leading_zeros() as usize).div_ceil(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_counts_lanes() {
        assert_eq!(order_of(pack(&[0])), 1);
        assert_eq!(order_of(pack(&[0, 0, 0])), 3);
        assert_eq!(order_of(pack(&[7, 0, 9, 1_000_000])), 4);
    }

    #[test]
    fn a_single_segment_scores_zero() {
        // log(1 segment) = 0: every tf-idf weight vanishes, as in pycocoevalcap.
        let corpus = Corpus::new(&[["a", "b"]], &[[["a", "b"]]]).unwrap();
        assert_eq!(CiderD::default().score(&corpus).unwrap().score, 0.0);
    }

    #[test]
    fn rejects_orders_beyond_four() {
        let corpus = Corpus::new(&[["a"]], &[[["a"]]]).unwrap();
        assert!(CiderD { max_order: 5, sigma: 6.0 }.score(&corpus).is_err());
    }
}
