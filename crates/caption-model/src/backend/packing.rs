//! What the CPU and CUDA training passes share: which targets count, the captions' ids checked
//! against the batch and the vocabulary, and how a batch of captions is packed step by step for
//! the LSTM (each caption's steps up to its last counted target). Both backends import this; it
//! imports neither.

use std::ops::Range;

use candle_core::{DType, Result, Tensor};

/// The positions of `targets` that count towards the loss: those that are not `pad`. Only their
/// rows need the output layer: a PAD target adds nothing to the loss or to any gradient.
pub fn counted_positions(targets: &[u32], pad: u32) -> Vec<usize> {
    (0..targets.len()).filter(|&position| targets[position] != pad).collect()
}

/// The captions' ids (time-major) and their length, checked against the batch and the vocabulary.
pub(crate) fn caption_ids(captions: &Tensor, batch: usize, vocab_size: usize) -> Result<(Vec<u32>, usize)> {
    let (steps, caption_batch) = captions.dims2()?;
    if steps == 0 {
        candle_core::bail!("empty captions: a training step needs at least one token per caption");
    }
    if caption_batch != batch {
        candle_core::bail!("{batch} feature rows for {caption_batch} captions");
    }
    let ids: Vec<u32> = captions.flatten_all()?.to_dtype(DType::U32)?.to_vec1()?;
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab_size) {
        candle_core::bail!("token id {bad} outside a vocabulary of {vocab_size}");
    }
    Ok((ids, steps))
}

/// Per-caption loss weights, checked to be one per caption of a batch of `batch` and finite
/// (`None`: every caption weighs 1).
///
/// # Errors
/// Another number of weights, or one that is not finite.
pub fn caption_weights(weights: Option<&[f32]>, batch: usize) -> Result<Option<&[f32]>> {
    if let Some(weights) = weights {
        if weights.len() != batch {
            candle_core::bail!("{} caption weights for {batch} captions", weights.len());
        }
        if let Some(bad) = weights.iter().find(|w| !w.is_finite()) {
            candle_core::bail!("a caption weight is {bad}: weights must be finite");
        }
    }
    Ok(weights)
}

/// The captions `ids` (steps × batch, time-major) packed for the LSTM of `hidden` units: each
/// caption's steps up to its last counted (not PAD) target, the only ones the LSTM runs. The CPU
/// and CUDA training passes pack alike.
pub(crate) fn packed_captions(ids: &[u32], batch: usize, steps: usize, pad: u32, hidden: usize) -> SequenceShape {
    let lengths: Vec<usize> =
        (0..batch).map(|b| (0..steps).rev().find(|&t| ids[t * batch + b] != pad).map_or(0, |t| t + 1)).collect();
    SequenceShape::packed(&lengths, hidden)
}

/// A batch of sequences packed step by step: sequence `order[k]` of the batch is packed as the
/// `k`-th, and step `t` holds the first [`step(t).len()`](Self::step) of them, those longer than
/// `t` (so a step never holds more rows than the one before).
#[derive(Debug, Clone)]
pub(crate) struct SequenceShape {
    /// The batch's sequences, longest first (ties in batch order).
    pub order: Vec<usize>,
    /// Where each of the batch's sequences is packed: `position[order[k]] = k`.
    position: Vec<usize>,
    /// The first packed row of each step, and the number of rows after the last step.
    starts: Vec<usize>,
    /// The hidden size.
    pub hidden: usize,
}

impl SequenceShape {
    /// Sequences of `lengths` steps (one per batch row; a length may be 0), `hidden` units.
    pub(crate) fn packed(lengths: &[usize], hidden: usize) -> Self {
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&b| std::cmp::Reverse(lengths[b]));
        let mut position = vec![0; lengths.len()];
        for (k, &b) in order.iter().enumerate() {
            position[b] = k;
        }
        let steps = lengths.iter().copied().max().unwrap_or(0);
        let mut starts = vec![0];
        for t in 0..steps {
            let active = lengths.iter().filter(|&&length| length > t).count();
            starts.push(starts[t] + active);
        }
        Self { order, position, starts, hidden }
    }

    /// How many steps the longest sequence has.
    pub(crate) fn steps(&self) -> usize {
        self.starts.len() - 1
    }

    /// The packed rows of step `t`.
    pub(crate) fn step(&self, t: usize) -> Range<usize> {
        self.starts[t]..self.starts[t + 1]
    }

    /// All packed rows.
    pub(crate) fn rows(&self) -> usize {
        self.starts[self.steps()]
    }

    /// The packed row of step `t` of the batch's sequence `b`, when that sequence reaches it.
    pub(crate) fn row(&self, t: usize, b: usize) -> Option<usize> {
        let step = self.step_or_empty(t);
        let row = step.start + self.position[b];
        (row < step.end).then_some(row)
    }

    /// The packed rows of step `t`, none past the last step.
    pub(crate) fn step_or_empty(&self, t: usize) -> Range<usize> {
        if t < self.steps() { self.step(t) } else { 0..0 }
    }

    /// Whether every sequence runs every step (nothing is packed away).
    pub(crate) fn is_full(&self) -> bool {
        self.rows() == self.steps() * self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_the_longest_first_and_drops_finished_sequences() {
        // Lengths by batch row; row 1 has no step at all.
        let shape = SequenceShape::packed(&[3, 0, 5, 3], 8);
        assert_eq!(shape.order, vec![2, 0, 3, 1], "longest first, ties in batch order");
        assert_eq!(shape.steps(), 5);
        let steps: Vec<Range<usize>> = (0..5).map(|t| shape.step(t)).collect();
        assert_eq!(steps, vec![0..3, 3..6, 6..9, 9..10, 10..11]);
        assert_eq!(shape.rows(), 11);
        assert_eq!(shape.row(0, 2), Some(0));
        assert_eq!(shape.row(2, 3), Some(8));
        assert_eq!(shape.row(3, 2), Some(9));
        assert_eq!(shape.row(3, 0), None, "row 0 ends after step 2");
        assert_eq!(shape.row(0, 1), None, "row 1 never runs");
        assert_eq!(shape.row(7, 2), None, "past the last step");
        assert!(!shape.is_full());
        assert!(SequenceShape::packed(&[4, 4], 8).is_full());
        assert_eq!(SequenceShape::packed(&[0, 0], 8).rows(), 0);
    }
}
