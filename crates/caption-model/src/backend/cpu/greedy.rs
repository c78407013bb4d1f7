//! Greedy decoding on the CPU without tensor operations: the same loop as
//! [`DecoderRNN::greedy_with_tensors`], reading the decoder's weights in place and running each step
//! as a few matrix-vector products ([`kernels`](super::kernels)) and the LSTM cell the training
//! pass uses ([`cell_forward`]).
//!
//! A step for one image is ~1.3 million multiply-adds over ~5 MB of weights, split into a dozen
//! tensor operations; through candle each operation allocates, dispatches and packs its operands,
//! which costs more than the arithmetic. Here a few threads (one per core) each own a fixed share of
//! the LSTM's hidden units and of the vocabulary for the whole decoding, so each core reads the
//! same weight rows every step, and they meet at a [`SpinBarrier`] after every layer and after the
//! output layer (a few microseconds per step). Finished rows leave the batch.
//!
//! Results equal the tensor path up to float rounding (sums run in another order) and do not depend
//! on the number of threads: the log-probability's sum runs over fixed blocks of the vocabulary.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use candle_core::{Result, Tensor};

use super::decoder_weights::{DecoderWeights, with_decoder_weights};
use super::kernels::{Term, affine, exp_in_place};
use super::lstm::cell_forward;
use super::spin_barrier::{PoisonOnPanic, SpinBarrier};
use crate::backend::views::LstmDecoderTensors;

/// Words per block of the log-probability's sum.
const SCORE_BLOCK: usize = 256;

/// Each row's word ids and summed log-probability.
type Captions = Vec<(Vec<u32>, f32)>;

/// Greedy decoding of `features` (batch × embed, float32 in CPU memory) as
/// [`DecoderRNN::greedy`].
pub(crate) fn greedy(decoder: &LstmDecoderTensors, features: &Tensor, max_length: usize, eos: u32) -> Result<Captions> {
    let (batch, embed_size) = features.dims2()?;
    let features = features.flatten_all()?.to_vec1::<f32>()?;
    with_decoder_weights(decoder, &[], |_, weights| {
        if embed_size != weights.embed_size {
            candle_core::bail!(
                "greedy decoding: the features have {embed_size} columns, the decoder takes {}",
                weights.embed_size
            );
        }
        Ok(decode(&weights, &features, batch, max_length, eos))
    })
}

/// The best word of one block of the vocabulary, for one row.
#[derive(Debug, Clone, Copy)]
struct BlockBest {
    /// The largest logit.
    max: f32,
    /// Its word (the first of equal maxima).
    word: u32,
    /// Σ exp(logit − max) over the block.
    sum: f32,
}

/// What the threads exchange; each part is written by its owner between two barriers and read by
/// all after the second.
struct Shared {
    barrier: SpinBarrier,
    /// `hidden[step % 2][layer][thread]`: the thread's hidden units of that layer's output, rows ×
    /// units. Two copies, so that a step writes one while the previous step's is still read.
    hidden: [Vec<Vec<RwLock<Vec<f32>>>>; 2],
    /// Per thread: for each row, the [`BlockBest`] of each of the thread's vocabulary blocks.
    best: Vec<Mutex<Vec<BlockBest>>>,
}

/// Decodes with one thread per core (the calling thread and scoped helpers), or on the calling
/// thread alone inside a rayon task (whose pool already has the cores busy) and for a while after
/// a call whose threads kept waiting for each other.
fn decode(w: &DecoderWeights, features: &[f32], batch: usize, max_length: usize, eos: u32) -> Captions {
    let alone = ALONE_FOR.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |calls| calls.checked_sub(1)).is_ok();
    let threads = if alone || rayon::current_thread_index().is_some() {
        1
    } else {
        rayon::current_num_threads().min(w.hidden_size / 32).max(1)
    };
    let parts = || (0..threads).map(|_| RwLock::new(Vec::new())).collect();
    let shared = Shared {
        barrier: SpinBarrier::new(threads),
        hidden: [(0..w.layers.len()).map(|_| parts()).collect(), (0..w.layers.len()).map(|_| parts()).collect()],
        best: (0..threads).map(|_| Mutex::new(Vec::new())).collect(),
    };
    let run = |thread| Worker::new(w, &shared, thread, threads).decode(features, batch, max_length, eos);
    let results = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|thread| scope.spawn(move || run(thread))).collect();
        let results = run(0);
        for helper in helpers {
            // A helper that panicked has poisoned the barrier, so `run(0)` panicked too.
            let _ = helper.join();
        }
        results
    });
    // Threads that kept waiting for each other mean other work has the cores: the next calls
    // decode on one thread (results are the same either way), then try again.
    if threads > 1 && shared.barrier.slow_waits() * 10 > max_length {
        ALONE_FOR.store(ALONE_CALLS, Ordering::Relaxed);
    }
    results
}

/// Calls that decode on the calling thread alone after one whose threads kept waiting.
const ALONE_CALLS: usize = 16;

/// How many of the next calls decode on one thread.
static ALONE_FOR: AtomicUsize = AtomicUsize::new(0);

/// `total` items split into `parts` contiguous ranges; the `part`-th.
fn share(total: usize, parts: usize, part: usize) -> Range<usize> {
    total * part / parts..total * (part + 1) / parts
}

/// One thread's view: its hidden units and vocabulary blocks, and its scratch buffers.
struct Worker<'a> {
    w: &'a DecoderWeights<'a>,
    shared: &'a Shared,
    thread: usize,
    threads: usize,
    /// The hidden units this thread computes (of every layer).
    units: Range<usize>,
    /// The vocabulary blocks this thread scores.
    blocks: Range<usize>,
}

impl<'a> Worker<'a> {
    fn new(w: &'a DecoderWeights, shared: &'a Shared, thread: usize, threads: usize) -> Self {
        let units = share(w.hidden_size, threads, thread);
        let blocks = share(w.vocab_size.div_ceil(SCORE_BLOCK), threads, thread);
        Self { w, shared, thread, threads, units, blocks }
    }

    /// The decoding loop; every thread runs it in step and computes the same results.
    fn decode(&self, features: &[f32], batch: usize, max_length: usize, eos: u32) -> Captions {
        let _guard = PoisonOnPanic(&self.shared.barrier);
        let (w, hidden, n) = (self.w, self.w.hidden_size, self.units.len());
        let mut results: Vec<(Vec<u32>, f32)> = vec![(Vec::new(), 0.0); batch];
        // Rows still decoding, and which rows of the previous step they were.
        let mut active: Vec<usize> = (0..batch).collect();
        let mut kept: Vec<usize> = (0..batch).collect();
        let mut input = features.to_vec();
        // This thread's units of every layer's cell state, rows × units.
        let mut cells = vec![vec![0.0f32; batch * n]; w.layers.len()];
        let (mut previous, mut below, mut gates, mut row_gates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut cell_tanh = vec![0.0f32; n];
        for step in 0..max_length {
            let rows = active.len();
            if rows == 0 {
                break;
            }
            let (now, before) = (&self.shared.hidden[step % 2], &self.shared.hidden[1 - step % 2]);
            let all_rows: Vec<usize> = (0..rows).collect();
            for (k, layer) in w.layers.iter().enumerate() {
                // This layer's output at the previous step (zeros at the first), rows that go on.
                if step == 0 {
                    previous.clear();
                    previous.resize(rows * hidden, 0.0);
                } else {
                    self.gather(&before[k], &kept, &mut previous);
                }
                let (x, width) = if k == 0 {
                    (&input[..], w.embed_size)
                } else {
                    self.gather(&now[k - 1], &all_rows, &mut below);
                    (&below[..], hidden)
                };
                let terms = [
                    Term { weights: layer.w_ih, inputs: x, width },
                    Term { weights: layer.w_hh, inputs: &previous, width: hidden },
                ];
                // Gates input, forget, cell, output; each block units × rows.
                let block = n * rows;
                gates.resize(4 * block, 0.0);
                let mut order: Vec<_> = gates.chunks_mut(block).enumerate().collect();
                if step % 2 == 1 {
                    // Every other step backwards: the weights read last are read first again,
                    // while they are still in this core's cache.
                    order.reverse();
                }
                for (gate, out) in order {
                    let range = gate * hidden + self.units.start..gate * hidden + self.units.end;
                    affine(&terms, &[layer.b_ih, layer.b_hh], range, rows, out);
                }
                let cell = &mut cells[k];
                let mut mine = now[k][self.thread].write().unwrap_or_else(PoisonError::into_inner);
                mine.resize(block, 0.0);
                for r in 0..rows {
                    // This row's units of the four gates, one after another.
                    row_gates.clear();
                    for gate in gates.chunks_exact(block) {
                        row_gates.extend(gate[r..].iter().step_by(rows).take(n));
                    }
                    let units = r * n..(r + 1) * n;
                    cell_forward(&mut row_gates, &mut cell[units.clone()], &mut cell_tanh, &mut mine[units]);
                }
                drop(mine);
                self.shared.barrier.wait();
            }
            self.gather(&now[w.layers.len() - 1], &all_rows, &mut below);
            let best = self.score_blocks(&below, rows, step % 2 == 1);
            *self.shared.best[self.thread].lock().unwrap_or_else(PoisonError::into_inner) = best;
            self.shared.barrier.wait();

            // Every thread combines the blocks the same way, in vocabulary order.
            let blocks = self.all_blocks(rows);
            let per_row = blocks.len() / rows;
            kept.clear();
            for (r, row_blocks) in blocks.chunks(per_row).enumerate() {
                let mut best = row_blocks[0];
                for block in &row_blocks[1..] {
                    if block.max > best.max {
                        best = *block;
                    }
                }
                let sum: f32 = row_blocks.iter().map(|b| b.sum * (b.max - best.max).exp()).sum();
                let result = &mut results[active[r]];
                result.0.push(best.word);
                result.1 -= sum.ln();
                if best.word != eos {
                    kept.push(r);
                }
            }
            for cell in &mut cells {
                *cell = kept.iter().flat_map(|&r| cell[r * n..][..n].iter().copied()).collect();
            }
            input.clear();
            for &r in &kept {
                let word = *results[active[r]].0.last().expect("a word was just pushed") as usize;
                input.extend_from_slice(&w.embed[word * w.embed_size..][..w.embed_size]);
            }
            active = kept.iter().map(|&r| active[r]).collect();
        }
        results
    }

    /// Assembles a layer's output (rows × hidden) from every thread's part, taking row `rows[r]`
    /// of the parts as row `r`.
    fn gather(&self, parts: &[RwLock<Vec<f32>>], rows: &[usize], out: &mut Vec<f32>) {
        let hidden = self.w.hidden_size;
        out.resize(rows.len() * hidden, 0.0);
        for (thread, part) in parts.iter().enumerate() {
            let units = share(hidden, self.threads, thread);
            let part = part.read().unwrap_or_else(PoisonError::into_inner);
            for (r, &from) in rows.iter().enumerate() {
                out[r * hidden + units.start..r * hidden + units.end]
                    .copy_from_slice(&part[from * units.len()..][..units.len()]);
            }
        }
    }

    /// The output layer on this thread's vocabulary blocks: each row's [`BlockBest`] per block.
    /// `backwards` computes the blocks' logits last to first (see the LSTM's gates).
    fn score_blocks(&self, hiddens: &[f32], rows: usize, backwards: bool) -> Vec<BlockBest> {
        let w = self.w;
        let words = self.blocks.start * SCORE_BLOCK..(self.blocks.end * SCORE_BLOCK).min(w.vocab_size);
        let mut logits = vec![0.0f32; words.len() * rows];
        let terms = [Term { weights: w.linear_weight, inputs: hiddens, width: w.hidden_size }];
        let biases = [w.linear_bias];
        let mut order: Vec<_> = logits.chunks_mut(SCORE_BLOCK * rows).enumerate().collect();
        if backwards {
            order.reverse();
        }
        for (at, out) in order {
            let first = words.start + at * SCORE_BLOCK;
            affine(&terms, &biases, first..first + out.len() / rows, rows, out);
        }
        let mut best = Vec::with_capacity(rows * self.blocks.len());
        let mut values = Vec::with_capacity(SCORE_BLOCK);
        for r in 0..rows {
            for block in self.blocks.clone() {
                let first = block * SCORE_BLOCK;
                let block_words = first..(first + SCORE_BLOCK).min(w.vocab_size);
                values.clear();
                values.extend(block_words.clone().map(|word| logits[(word - words.start) * rows + r]));
                let (mut word, mut max) = (first, f32::NEG_INFINITY);
                for (at, &value) in values.iter().enumerate() {
                    if value > max {
                        (word, max) = (first + at, value);
                    }
                }
                values.iter_mut().for_each(|value| *value -= max);
                exp_in_place(&mut values);
                best.push(BlockBest { max, word: word as u32, sum: values.iter().sum() });
            }
        }
        best
    }

    /// Every thread's [`BlockBest`]s, per row in vocabulary order.
    fn all_blocks(&self, rows: usize) -> Vec<BlockBest> {
        let parts: Vec<Vec<BlockBest>> =
            self.shared.best.iter().map(|b| b.lock().unwrap_or_else(PoisonError::into_inner).clone()).collect();
        let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for r in 0..rows {
            for part in &parts {
                let per_row = part.len() / rows;
                all.extend_from_slice(&part[r * per_row..][..per_row]);
            }
        }
        all
    }
}
