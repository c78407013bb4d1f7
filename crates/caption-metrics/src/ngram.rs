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
            let first = stats.matches.len();
            stats.matches.resize(first + max_order, 0);
            let vocabulary_size = corpus.vocabulary_size() as usize;
            segment_matches(hyp, refs, max_order, vocabulary_size, &mut scratch, &mut stats.matches[first..]);
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

/// Reusable buffers for [`segment_matches`].
#[derive(Default)]
pub(crate) struct Scratch {
    /// Per token id: the first hypothesis position holding it, valid where `stamp` is current.
    head: Vec<u32>,
    stamp: Vec<u32>,
    current_stamp: u32,
    /// Per hypothesis position: the next position holding the same token (`u32::MAX` at the end).
    next: Vec<u32>,
    /// `canonical[i * orders + n - 1]`: first position of the n-gram starting at `i`.
    canonical: Vec<u32>,
    /// Occurrences in the hypothesis of the n-gram first seen at `i` (0 for other positions).
    hyp_count: Vec<u32>,
    /// Occurrences in the current reference, and the largest over references so far.
    ref_count: Vec<u32>,
    best: Vec<u32>,
}

const END: u32 = u32::MAX;

/// Clipped matches of orders `1..=orders` (written to `matches`): each distinct hypothesis n-gram
/// counts `min(count in hypothesis, largest count in any one reference)`.
///
/// No hashing and no sorting. A distinct n-gram is named by its first position `i` in the
/// hypothesis; it occurs at reference position `j` exactly when hypothesis and reference agree on
/// at least `n` tokens from `(i, j)`. Only cells where the tokens are equal are visited: for each
/// reference token, the hypothesis positions holding it come from a per-token list.
/// `vocabulary_size` bounds the token ids.
pub(crate) fn segment_matches<'a>(
    hyp: &[u32],
    refs: impl Iterator<Item = &'a [u32]>,
    orders: usize,
    vocabulary_size: usize,
    scratch: &mut Scratch,
    matches: &mut [u32],
) {
    let h = hyp.len();
    matches.fill(0);
    if h == 0 || orders == 0 {
        return;
    }
    let Scratch { head, stamp, current_stamp, next, canonical, hyp_count, ref_count, best } = scratch;
    if head.len() < vocabulary_size {
        head.resize(vocabulary_size, END);
        stamp.resize(vocabulary_size, 0);
    }
    *current_stamp = current_stamp.wrapping_add(1);
    if *current_stamp == 0 {
        stamp.fill(0);
        *current_stamp = 1;
    }
    let now = *current_stamp;
    // Positions of each token, ascending.
    next.clear();
    next.resize(h, END);
    for i in (0..h).rev() {
        let token = hyp[i] as usize;
        next[i] = if stamp[token] == now { head[token] } else { END };
        stamp[token] = now;
        head[token] = i as u32;
    }
    let (head, stamp, next) = (&head[..], &stamp[..], &next[..]);
    let positions = |token: u32| {
        let token = token as usize;
        let first = if token < stamp.len() && stamp[token] == now { head[token] } else { END };
        let valid = |p: u32| (p != END).then_some(p as usize);
        std::iter::successors(valid(first), move |&p| valid(next[p]))
    };
    let common_run = |a: &[u32], b: &[u32], cap: usize| a.iter().zip(b).take(cap).take_while(|(x, y)| x == y).count();

    // Each n-gram's first position, and how often each distinct n-gram occurs.
    canonical.clear();
    canonical.resize(h * orders, END);
    hyp_count.clear();
    hyp_count.resize(h * orders, 0);
    for i in 0..h {
        let longest = orders.min(h - i);
        for a in positions(hyp[i]).take_while(|&a| a < i) {
            let run = common_run(&hyp[a..], &hyp[i..], longest);
            for slot in &mut canonical[i * orders..i * orders + run] {
                if *slot == END {
                    *slot = a as u32;
                }
            }
        }
        for n in 1..=longest {
            let slot = &mut canonical[i * orders + n - 1];
            if *slot == END {
                *slot = i as u32;
            }
            hyp_count[*slot as usize * orders + n - 1] += 1;
        }
    }

    best.clear();
    best.resize(h * orders, 0);
    ref_count.resize(h * orders, 0);
    for reference in refs {
        ref_count.fill(0);
        for (j, &token) in reference.iter().enumerate() {
            for i in positions(token) {
                let run = common_run(&hyp[i..], &reference[j..], orders);
                for n in 1..=run {
                    let k = i * orders + n - 1;
                    if canonical[k] as usize == i {
                        ref_count[k] += 1;
                    }
                }
            }
        }
        for (b, &c) in best.iter_mut().zip(ref_count.iter()) {
            *b = (*b).max(c);
        }
    }
    for i in 0..h {
        for n in 1..=orders.min(h - i) {
            let k = i * orders + n - 1;
            if canonical[k] as usize == i {
                matches[n - 1] += hyp_count[k].min(best[k]);
            }
        }
    }
}

/// Clipped matches of order `n` alone.
pub(crate) fn clipped_matches<'a>(
    hyp: &[u32],
    refs: impl Iterator<Item = &'a [u32]>,
    n: usize,
    vocabulary_size: usize,
) -> u32 {
    let mut matches = vec![0; n];
    segment_matches(hyp, refs, n, vocabulary_size, &mut Scratch::default(), &mut matches);
    matches[n - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(hyp: &[u32], refs: &[&[u32]], n: usize) -> u32 {
        let vocabulary = hyp.iter().chain(refs.iter().copied().flatten()).max().map_or(0, |&m| m as usize + 1);
        clipped_matches(hyp, refs.iter().copied(), n, vocabulary)
    }

    /// The plain definition: count n-grams in a map.
    fn reference_matches(hyp: &[u32], refs: &[&[u32]], n: usize) -> u32 {
        use std::collections::HashMap;
        let count = |s: &[u32]| {
            let mut map: HashMap<Vec<u32>, u32> = HashMap::new();
            for w in s.windows(n) {
                *map.entry(w.to_vec()).or_default() += 1;
            }
            map
        };
        let ref_counts: Vec<_> = refs.iter().map(|r| count(r)).collect();
        count(hyp)
            .into_iter()
            .map(|(g, c)| c.min(ref_counts.iter().map(|m| m.get(&g).copied().unwrap_or(0)).max().unwrap_or(0)))
            .sum()
    }

    #[test]
    fn agrees_with_counting_in_maps() {
        let mut state = 12345u64;
        let mut next = |m: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) % m) as u32
        };
        for _ in 0..500 {
            let hyp: Vec<u32> = (0..next(14)).map(|_| next(3)).collect();
            let refs: Vec<Vec<u32>> = (0..1 + next(4)).map(|_| (0..next(14)).map(|_| next(3)).collect()).collect();
            let refs: Vec<&[u32]> = refs.iter().map(Vec::as_slice).collect();
            for n in 1..=6 {
                assert_eq!(matches(&hyp, &refs, n), reference_matches(&hyp, &refs, n), "{hyp:?} {refs:?} n={n}");
            }
        }
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
