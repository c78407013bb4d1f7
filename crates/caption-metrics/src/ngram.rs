//! Clipped n-gram counts: the statistics every BLEU variant is built from.
//!
//! For each segment and order `n`, the *matches* are the hypothesis n-grams clipped by the largest
//! count of that n-gram in any single reference (nltk's `modified_precision`, pycocoevalcap's
//! `cook_test`, sacrebleu's `_compute_segment_statistics` all agree on this), and the *total* is the
//! number of hypothesis n-grams, `max(0, len - n + 1)`.

use crate::Corpus;

/// An n-gram of up to four tokens packed into one integer: `id + 1` in each 32-bit lane, so n-grams
/// of different lengths never share a key.
pub(crate) type PackedNgram = u128;

/// Longest n-gram that [`pack`] represents exactly.
pub(crate) const MAX_PACKED_ORDER: usize = 4;

/// Packs an n-gram of at most [`MAX_PACKED_ORDER`] tokens.
#[inline]
pub(crate) fn pack(ngram: &[u32]) -> PackedNgram {
    debug_assert!(ngram.len() <= MAX_PACKED_ORDER);
    ngram.iter().fold(0, |key, &id| (key << 32) | (u128::from(id) + 1))
}

/// Per-segment statistics for orders `1..=max_order`.
#[derive(Debug, Clone)]
pub(crate) struct CorpusStats {
    pub max_order: usize,
    /// Hypothesis length of each segment.
    pub hyp_len: Vec<u32>,
    /// Length of each segment's reference closest to the hypothesis length (the shorter one on a
    /// tie, as all three libraries choose).
    pub ref_len: Vec<u32>,
    /// Clipped matches, `max_order` per segment.
    matches: Vec<u32>,
}

impl CorpusStats {
    /// Counts every segment of `corpus`.
    pub fn compute(corpus: &Corpus, max_order: usize) -> Self {
        let mut stats = Self {
            max_order,
            hyp_len: Vec::with_capacity(corpus.len()),
            ref_len: Vec::with_capacity(corpus.len()),
            matches: Vec::with_capacity(corpus.len() * max_order),
        };
        let mut scratch = Scratch::default();
        for segment in 0..corpus.len() {
            let hyp = corpus.hypothesis(segment);
            let refs = corpus.references(segment);
            stats.hyp_len.push(hyp.len() as u32);
            stats.ref_len.push(closest_ref_len(hyp.len(), refs.clone().map(<[u32]>::len)) as u32);
            for n in 1..=max_order {
                stats.matches.push(clipped_matches(hyp, refs.clone(), n, &mut scratch));
            }
        }
        stats
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.hyp_len.len()
    }

    /// Clipped matches of `segment` for orders `1..=max_order`.
    pub fn matches(&self, segment: usize) -> &[u32] {
        &self.matches[segment * self.max_order..(segment + 1) * self.max_order]
    }

    /// Number of hypothesis n-grams of order `n` in `segment`.
    pub fn total(&self, segment: usize, n: usize) -> u32 {
        ngram_count(self.hyp_len[segment] as usize, n) as u32
    }
}

/// Number of n-grams of order `n` in a sentence of `len` tokens.
#[inline]
pub(crate) fn ngram_count(len: usize, n: usize) -> usize {
    (len + 1).saturating_sub(n)
}

/// The reference length closest to `hyp_len`, the shorter one on a tie.
pub(crate) fn closest_ref_len(hyp_len: usize, ref_lens: impl Iterator<Item = usize>) -> usize {
    ref_lens.min_by_key(|&len| (len.abs_diff(hyp_len), len)).unwrap_or(0)
}

/// Reusable buffers for [`clipped_matches`].
pub(crate) type Scratch = Buffers<PackedNgram>;

/// Buffers of [`clipped_matches_by`] for n-gram keys of type `K`.
#[derive(Default)]
pub(crate) struct Buffers<K> {
    /// The hypothesis n-grams, sorted.
    keys: Vec<K>,
    /// Distinct hypothesis n-grams and their counts.
    distinct: Vec<K>,
    count: Vec<u32>,
    /// Largest count in one reference so far, and the count in the current reference.
    best: Vec<u32>,
    current: Vec<u32>,
}

/// Hypothesis n-grams of order `n` clipped by their largest count in any one reference.
pub(crate) fn clipped_matches<'a>(
    hyp: &'a [u32],
    refs: impl Iterator<Item = &'a [u32]>,
    n: usize,
    scratch: &mut Scratch,
) -> u32 {
    if hyp.len() < n {
        return 0;
    }
    if n <= MAX_PACKED_ORDER {
        clipped_matches_by(hyp, refs, n, pack, scratch)
    } else {
        // Longer n-grams are compared as slices.
        clipped_matches_by(hyp, refs, n, |ngram| ngram, &mut Buffers::default())
    }
}

/// Sorts the hypothesis n-grams once, then looks every reference n-gram up by binary search: for
/// caption-length sentences this beats hashing by a wide margin.
fn clipped_matches_by<'a, K: Ord + Copy>(
    hyp: &'a [u32],
    refs: impl Iterator<Item = &'a [u32]>,
    n: usize,
    key: impl Fn(&'a [u32]) -> K,
    buffers: &mut Buffers<K>,
) -> u32 {
    let Buffers { keys, distinct, count, best, current } = buffers;
    keys.clear();
    keys.extend(hyp.windows(n).map(&key));
    keys.sort_unstable();
    distinct.clear();
    count.clear();
    for &k in keys.iter() {
        if distinct.last() == Some(&k) {
            *count.last_mut().expect("count follows distinct") += 1;
        } else {
            distinct.push(k);
            count.push(1);
        }
    }
    best.clear();
    best.resize(distinct.len(), 0);
    current.resize(distinct.len(), 0);
    for reference in refs {
        if reference.len() < n {
            continue;
        }
        current.fill(0);
        for ngram in reference.windows(n) {
            if let Ok(j) = distinct.binary_search(&key(ngram)) {
                current[j] += 1;
            }
        }
        for (b, &c) in best.iter_mut().zip(current.iter()) {
            *b = (*b).max(c);
        }
    }
    count.iter().zip(best.iter()).map(|(&c, &b)| c.min(b)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(hyp: &[u32], refs: &[&[u32]], n: usize) -> u32 {
        clipped_matches(hyp, refs.iter().copied(), n, &mut Scratch::default())
    }

    #[test]
    fn clipping_uses_the_largest_count_in_one_reference() {
        // "the the the the" against "the cat the" and "the": at most two "the" in one reference.
        assert_eq!(matches(&[0, 0, 0, 0], &[&[0, 1, 0], &[0]], 1), 2);
    }

    #[test]
    fn long_orders_compare_slices() {
        let hyp = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6];
        assert_eq!(matches(&hyp, &[&[1, 2, 3, 4, 5, 6]], 6), 1);
        assert_eq!(matches(&hyp, &[&[1, 2, 3, 4, 5, 6]], 5), 2);
        assert_eq!(matches(&hyp, &[&[1, 2, 3, 4, 5, 7]], 6), 0);
    }

    #[test]
    fn packed_keys_distinguish_orders_and_ids() {
        assert_ne!(pack(&[0, 1]), pack(&[1]));
        assert_ne!(pack(&[0, 0]), pack(&[0]));
        assert_ne!(pack(&[u32::MAX - 1, 0]), pack(&[0, u32::MAX - 1]));
    }

    #[test]
    fn closest_reference_prefers_the_shorter_on_a_tie() {
        assert_eq!(closest_ref_len(12, [13, 11].into_iter()), 11);
        assert_eq!(closest_ref_len(12, [11, 13].into_iter()), 11);
        assert_eq!(closest_ref_len(7, [11, 8, 6, 7].into_iter()), 7);
    }
}
