//! Greedy decoding and sampling on the CPU without tensor operations: the same loop as
//! [`DecoderRNN::greedy_with_tensors`] (and, drawing each word, as [`sampling::sample`] over the
//! decoder's steps), reading the decoder's weights in place and running each step as a few
//! matrix-vector products ([`kernels`](super::kernels)) and the LSTM cell the training pass uses
//! ([`cell_forward`]).
//!
//! A step for one image is ~1.3 million multiply-adds over ~5 MB of weights, split into a dozen
//! tensor operations; through candle each operation allocates, dispatches and packs its operands,
//! which costs more than the arithmetic. Here a few threads (one per core) each own a fixed share of
//! the LSTM's hidden units and of the vocabulary for the whole decoding, so each core reads the
//! same weight rows every step, and they meet at a [`SpinBarrier`] after every layer and after the
//! output layer (a few microseconds per step). Finished rows leave the batch.
//!
//! Each thread sums its vocabulary blocks' exponentials; every thread then combines the blocks of
//! each row the same way: the best word (greedy), or a draw that picks a block by its share of
//! the probability and then a word inside it (sampling), so a draw reads one block's logits, not
//! the whole vocabulary's. Every thread draws the same words from its own copy of the rows' random
//! streams (`sampling::caption_rng`'s), so no thread waits for another's draws.
//!
//! A step's products are dot products over the weights in place for a few rows, matrix products
//! (the `gemm` crate, each thread on its own share) for many ([`MANY_ROWS`], and every sampling).
//!
//! Results equal the tensor path up to float rounding (sums run in another order) and do not depend
//! on the number of threads: the log-probability's sum runs over fixed blocks of the vocabulary.
//!
//! [`DecoderRNN::greedy_with_tensors`]: crate::DecoderRNN::greedy_with_tensors
//! [`sampling::sample`]: crate::sampling::sample

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use candle_core::{Result, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::decoder_weights::{DecoderWeights, with_decoder_weights};
use super::gemm::{View, matmul_on_this_thread, transpose_into};
use super::kernels::{Term, affine, exp_in_place};
use super::lstm::cell_forward;
use super::spin_barrier::{PoisonOnPanic, SpinBarrier};
use crate::backend::views::LstmDecoderTensors;
use crate::sampling::caption_rng;

/// Words per block of the log-probability's sum.
pub(crate) const SCORE_BLOCK: usize = 256;

/// Each row's word ids and summed log-probability.
type Captions = Vec<(Vec<u32>, f32)>;

/// How each step's word is chosen.
#[derive(Debug, Clone, Copy)]
enum Choice<'a> {
    /// The most probable word (the first of equal ones).
    Greedy,
    /// A word drawn from `softmax(logits / temperature)`; row `r` of the `seeds.len() · samples`
    /// rows (each image's samples one after another) draws from image `r / samples`'s seed,
    /// stream `r % samples`.
    Sample { temperature: f32, seeds: &'a [u64], samples: usize },
}

/// Greedy decoding of `features` (batch × embed, float32 in CPU memory) as
/// [`DecoderRNN::greedy`].
///
/// [`DecoderRNN::greedy`]: crate::DecoderRNN::greedy
pub(crate) fn greedy(decoder: &LstmDecoderTensors, features: &Tensor, max_length: usize, eos: u32) -> Result<Captions> {
    Ok(decode_features(decoder, features, max_length, eos, Choice::Greedy, false)?.0)
}

/// `samples` captions for each row of `features` (images × embed, float32 in CPU memory), each
/// word drawn from `softmax(logits / temperature)`, image `i`'s from `seeds[i]`, as
/// [`sampling::sample`](crate::sampling::sample) draws them (without top-k or top-p): every
/// image's captions one after another, each up to its `eos` or `max_length` words. With
/// `keep_forward`, also what the loop computed forward (the LSTM's states and the logits of every
/// row at every step): what a teacher-forced pass over the sampled captions would compute again,
/// for the training step's backward pass
/// ([`training_pass::sampled_head_gradients`](super::training_pass::sampled_head_gradients)).
pub(crate) fn sample(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    (seeds, samples): (&[u64], usize),
    (max_length, eos): (usize, u32),
    temperature: f32,
    keep_forward: bool,
) -> Result<(Captions, Option<ForwardRecord>)> {
    let images = features.dim(0)?;
    if seeds.len() != images {
        candle_core::bail!("sampling: {} seeds for {images} images", seeds.len());
    }
    let choice = Choice::Sample { temperature, seeds, samples };
    decode_features(decoder, features, max_length, eos, choice, keep_forward)
}

/// What the decoding loop computed forward, kept for a training pass's backward.
pub(crate) struct ForwardRecord {
    /// Each batch row's caption as drawn (what the record holds the forward pass of).
    pub captions: Vec<Vec<u32>>,
    /// Per step: the batch rows that ran it, in the order the step's records hold them.
    pub rows: Vec<Vec<usize>>,
    /// Per step: the first layer's input (the features, then the previous words' embeddings),
    /// rows × embed.
    pub inputs: Vec<Vec<f32>>,
    /// Each thread's part, in thread order.
    pub threads: Vec<ThreadRecord>,
}

/// One decoding thread's part of a [`ForwardRecord`].
pub(crate) struct ThreadRecord {
    /// The hidden units it computed (of every layer).
    pub units: Range<usize>,
    /// The words its vocabulary blocks cover.
    pub words: Range<usize>,
    /// Per step, per layer: for each row, its activated gates `i, f, g, o` (the thread's units
    /// of each), its cell state, that state's `tanh` and its hidden state: 7 × units floats.
    pub states: Vec<Vec<Vec<f32>>>,
    /// Per step: the logits of the thread's blocks, biases added (block after block, each rows ×
    /// the block's words).
    pub logits: Vec<Vec<f32>>,
    /// Per step (the first thread only): the rows that ran it and the first layer's input.
    steps: Vec<(Vec<usize>, Vec<f32>)>,
}

impl ThreadRecord {
    /// Opens a step's records: the rows that run it and the first layer's input when `first`
    /// (the first thread), and an empty list of states per layer.
    fn start_step(&mut self, first: bool, rows: &[usize], input: &[f32], layers: usize) {
        if first {
            self.steps.push((rows.to_vec(), input.to_vec()));
        }
        let capacity = rows.len() * 7 * self.units.len();
        self.states.push((0..layers).map(|_| Vec::with_capacity(capacity)).collect());
    }

    /// Keeps a row's states of layer `k` at the current step: activated gates, cell state, its
    /// `tanh`, hidden state.
    fn keep_row(&mut self, k: usize, parts: [&[f32]; 4]) {
        let states = &mut self.states.last_mut().expect("a step was started")[k];
        parts.iter().for_each(|part| states.extend_from_slice(part));
    }
}

/// Decodes every row of `features`, each repeated once per sample when sampling, keeping the
/// forward pass when asked (`record`).
fn decode_features(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    max_length: usize,
    eos: u32,
    choice: Choice,
    record: bool,
) -> Result<(Captions, Option<ForwardRecord>)> {
    let (batch, embed_size) = features.dims2()?;
    let features = features.flatten_all()?.to_vec1::<f32>()?;
    with_decoder_weights(decoder, &[], |_, weights| {
        if embed_size != weights.embed_size {
            candle_core::bail!(
                "decoding: the features have {embed_size} columns, the decoder takes {}",
                weights.embed_size
            );
        }
        let (features, rows) = match choice {
            Choice::Greedy => (features, batch),
            Choice::Sample { samples, .. } => (
                features
                    .chunks(embed_size)
                    .flat_map(|row| std::iter::repeat_n(row, samples))
                    .flatten()
                    .copied()
                    .collect(),
                batch * samples,
            ),
        };
        Ok(decode(&weights, &features, (rows, max_length, eos), choice, record))
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
    /// Σ exp((logit − max) / temperature) over the block when sampling (`sum` at temperature 1).
    tempered: f32,
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
    /// Per thread: the logits of its vocabulary blocks at this step, block after block, each
    /// rows × the block's words (what a draw reads inside the block it picked).
    logits: Vec<RwLock<Vec<f32>>>,
}

/// Decodes with one thread per core (the calling thread and scoped helpers), or on the calling
/// thread alone inside a rayon task (whose pool already has the cores busy) and for a while after
/// a call whose threads kept waiting for each other.
fn decode(
    w: &DecoderWeights,
    features: &[f32],
    (batch, max_length, eos): (usize, usize, u32),
    choice: Choice,
    record: bool,
) -> (Captions, Option<ForwardRecord>) {
    let alone = ALONE_FOR.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |calls| calls.checked_sub(1)).is_ok();
    let threads = if alone || rayon::current_thread_index().is_some() {
        1
    } else {
        rayon::current_num_threads().min(w.hidden_size / 32).max(1)
    };
    // Decided once per call, so that a row's products do not change as other rows finish.
    let many_rows = batch >= MANY_ROWS || matches!(choice, Choice::Sample { .. });
    let parts = || (0..threads).map(|_| RwLock::new(Vec::new())).collect();
    let shared = Shared {
        barrier: SpinBarrier::new(threads),
        hidden: [(0..w.layers.len()).map(|_| parts()).collect(), (0..w.layers.len()).map(|_| parts()).collect()],
        best: (0..threads).map(|_| Mutex::new(Vec::new())).collect(),
        logits: parts(),
    };
    let run = |thread| {
        Worker::new(w, &shared, (thread, threads), many_rows).decode(features, (batch, max_length, eos), choice, record)
    };
    let (results, record) = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|thread| scope.spawn(move || run(thread))).collect();
        let (results, first) = run(0);
        let mut records = vec![first];
        for helper in helpers {
            // A helper that panicked has poisoned the barrier, so `run(0)` panicked too.
            records.push(helper.join().ok().and_then(|(_, record)| record));
        }
        let record = records.into_iter().collect::<Option<Vec<ThreadRecord>>>().map(|mut threads| {
            let (rows, inputs) = std::mem::take(&mut threads[0].steps).into_iter().unzip();
            let captions = results.iter().map(|(ids, _)| ids.clone()).collect();
            ForwardRecord { captions, rows, inputs, threads }
        });
        (results, record)
    });
    // Threads that kept waiting for each other mean other work has the cores: the next calls
    // decode on one thread (results are the same either way), then try again.
    // (Not for matrix products: their phases take milliseconds, and a wait of a fraction of one
    // says nothing about the cores.)
    if threads > 1 && !many_rows && shared.barrier.slow_waits() * 10 > max_length {
        ALONE_FOR.store(ALONE_CALLS, Ordering::Relaxed);
    }
    (results, record)
}

/// Rows from which greedy decoding runs its products as matrix products (sampling always does):
/// below, dot products over the weights in place are faster.
const MANY_ROWS: usize = 16;

/// The fewest input rows a matrix product of `units` output units runs on in [`Worker::affine`]:
/// below, the `gemm` crate (0.19) takes other paths that sum in another order (a matrix-vector
/// product for one row; dot products when outputs × rows ≤ 256), so a row's values would depend
/// on how many rows are beside it.
fn fewest_rows(units: usize) -> usize {
    (256 / units.max(1) + 1).max(2)
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
    /// Whether products run as matrix products over all rows ([`MANY_ROWS`]).
    many_rows: bool,
    /// With many rows: each layer's weights and biases for this thread's units of the four
    /// gates, gate after gate (one matrix product per term instead of one per gate).
    gate_weights: Vec<[Vec<f32>; 4]>,
}

impl<'a> Worker<'a> {
    fn new(w: &'a DecoderWeights, shared: &'a Shared, (thread, threads): (usize, usize), many_rows: bool) -> Self {
        let units = share(w.hidden_size, threads, thread);
        let blocks = share(w.vocab_size.div_ceil(SCORE_BLOCK), threads, thread);
        let gate_weights = if many_rows {
            let rows_of = |values: &[f32], width: usize| -> Vec<f32> {
                (0..4)
                    .flat_map(|gate| {
                        values[(gate * w.hidden_size + units.start) * width..][..units.len() * width].iter()
                    })
                    .copied()
                    .collect()
            };
            let (input_width, hidden) = (w.embed_size, w.hidden_size);
            w.layers
                .iter()
                .enumerate()
                .map(|(k, layer)| {
                    let width = if k == 0 { input_width } else { hidden };
                    [
                        rows_of(layer.w_ih, width),
                        rows_of(layer.w_hh, hidden),
                        rows_of(layer.b_ih, 1),
                        rows_of(layer.b_hh, 1),
                    ]
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { w, shared, thread, threads, units, blocks, many_rows, gate_weights }
    }

    /// The decoding loop; every thread runs it in step and computes the same results (and keeps
    /// its part of the forward pass when asked: `record`).
    fn decode(
        &self,
        features: &[f32],
        (batch, max_length, eos): (usize, usize, u32),
        choice: Choice,
        record: bool,
    ) -> (Captions, Option<ThreadRecord>) {
        let _guard = PoisonOnPanic(&self.shared.barrier);
        // Each row's random stream when sampling (each thread its own copy, drawing alike).
        let (mut rngs, temperature): (Vec<ChaCha8Rng>, Option<f32>) = match choice {
            Choice::Greedy => (Vec::new(), None),
            Choice::Sample { temperature, seeds, samples } => {
                ((0..batch).map(|r| caption_rng(seeds[r / samples], r % samples)).collect(), Some(temperature))
            }
        };
        let (w, hidden, n) = (self.w, self.w.hidden_size, self.units.len());
        let mut results: Vec<(Vec<u32>, f32)> = vec![(Vec::new(), 0.0); batch];
        // Rows still decoding, and which rows of the previous step they were.
        let mut active: Vec<usize> = (0..batch).collect();
        let mut kept: Vec<usize> = (0..batch).collect();
        let mut input = features.to_vec();
        // This thread's units of every layer's cell state, rows × units.
        let mut cells = vec![vec![0.0f32; batch * n]; w.layers.len()];
        let (mut previous, mut below, mut gates, mut row_gates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut gates_by_rows = Vec::new();
        let mut cell_tanh = vec![0.0f32; n];
        let mut record = record.then(|| ThreadRecord {
            units: self.units.clone(),
            words: self.words(),
            states: Vec::new(),
            logits: Vec::new(),
            steps: Vec::new(),
        });
        for step in 0..max_length {
            let rows = active.len();
            if rows == 0 {
                break;
            }
            if let Some(record) = &mut record {
                record.start_step(self.thread == 0, &active, &input, w.layers.len());
            }
            let (now, before) = (&self.shared.hidden[step % 2], &self.shared.hidden[1 - step % 2]);
            let all_rows: Vec<usize> = (0..rows).collect();
            for k in 0..w.layers.len() {
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
                // Gates input, forget, cell, output; each block units × rows.
                let block = n * rows;
                gates.resize(4 * block, 0.0);
                self.gate_products(k, (x, width), &previous, (rows, step % 2 == 1), &mut gates);
                let cell = &mut cells[k];
                let mut mine = now[k][self.thread].write().unwrap_or_else(PoisonError::into_inner);
                mine.resize(block, 0.0);
                // Each gate rows × units, so that a row's units lie in a line.
                gates_by_rows.resize(4 * block, 0.0);
                for (gate, out) in gates.chunks_exact(block).zip(gates_by_rows.chunks_exact_mut(block)) {
                    transpose_into(gate, n, rows, out);
                }
                for r in 0..rows {
                    // This row's units of the four gates, one after another.
                    row_gates.clear();
                    for gate in gates_by_rows.chunks_exact(block) {
                        row_gates.extend_from_slice(&gate[r * n..][..n]);
                    }
                    let units = r * n..(r + 1) * n;
                    cell_forward(&mut row_gates, &mut cell[units.clone()], &mut cell_tanh, &mut mine[units.clone()]);
                    if let Some(record) = &mut record {
                        record.keep_row(k, [&row_gates, &cell[units.clone()], &cell_tanh, &mine[units]]);
                    }
                }
                drop(mine);
                self.shared.barrier.wait();
            }
            self.gather(&now[w.layers.len() - 1], &all_rows, &mut below);
            if let Some(record) = &mut record
                && step > 0
            {
                // The previous step's logits, which every thread has drawn from by now.
                record.logits.push(self.take_logits());
            }
            let best = self.score_blocks(&below, rows, step % 2 == 1, temperature);
            *self.shared.best[self.thread].lock().unwrap_or_else(PoisonError::into_inner) = best;
            self.shared.barrier.wait();

            // Every thread combines the blocks the same way, in vocabulary order.
            let blocks = self.all_blocks(rows);
            let per_row = blocks.len() / rows;
            let logits: Vec<_> =
                self.shared.logits.iter().map(|part| part.read().unwrap_or_else(PoisonError::into_inner)).collect();
            kept.clear();
            for (r, row_blocks) in blocks.chunks(per_row).enumerate() {
                let (word, log_prob) = match temperature {
                    None => greatest(row_blocks),
                    Some(temperature) => {
                        let logit = |word: usize| self.logit(&logits, word, r, rows);
                        draw(row_blocks, (w.vocab_size, temperature), logit, &mut rngs[active[r]])
                    }
                };
                let result = &mut results[active[r]];
                result.0.push(word);
                result.1 += log_prob;
                if word != eos {
                    kept.push(r);
                }
            }
            drop(logits);
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
        if let Some(record) = &mut record {
            // The last step's, once every thread has drawn from them (every thread records).
            self.shared.barrier.wait();
            if record.logits.len() < record.states.len() {
                record.logits.push(self.take_logits());
            }
        }
        (results, record)
    }

    /// This thread's logits of the last step scored, leaving their place empty.
    fn take_logits(&self) -> Vec<f32> {
        std::mem::take(&mut *self.shared.logits[self.thread].write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Layer `k`'s gate pre-activations for this thread's units over `rows` rows of input `x`
    /// (`width` wide) and `previous` hidden states: `gates` receives the four gates one after
    /// another, each units × rows. With many rows one matrix product per term over the units of
    /// all four gates (the same bits per row as gate by gate: see [`fewest_rows`]); otherwise
    /// gate by gate, every other step (`backwards`) last gate first.
    fn gate_products(
        &self,
        k: usize,
        (x, width): (&[f32], usize),
        previous: &[f32],
        (rows, backwards): (usize, bool),
        gates: &mut [f32],
    ) {
        let (layer, hidden, n) = (&self.w.layers[k], self.w.hidden_size, self.units.len());
        if let Some([w_ih, w_hh, b_ih, b_hh]) = self.gate_weights.get(k) {
            let terms =
                [Term { weights: w_ih, inputs: x, width }, Term { weights: w_hh, inputs: previous, width: hidden }];
            return self.affine(&terms, &[b_ih, b_hh], 0..4 * n, rows, gates);
        }
        let terms = [
            Term { weights: layer.w_ih, inputs: x, width },
            Term { weights: layer.w_hh, inputs: previous, width: hidden },
        ];
        let mut order: Vec<_> = gates.chunks_mut(n * rows).enumerate().collect();
        if backwards {
            // The weights read last are read first again, while they are still in this core's
            // cache.
            order.reverse();
        }
        for (gate, out) in order {
            let range = gate * hidden + self.units.start..gate * hidden + self.units.end;
            self.affine(&terms, &[layer.b_ih, layer.b_hh], range, rows, out);
        }
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
    /// With a `temperature`, also each block's tempered sum, and the logits stay in
    /// [`Shared::logits`] for the draws.
    fn score_blocks(&self, hiddens: &[f32], rows: usize, backwards: bool, temperature: Option<f32>) -> Vec<BlockBest> {
        let w = self.w;
        let words = self.words();
        let mut logits = self.shared.logits[self.thread].write().unwrap_or_else(PoisonError::into_inner);
        logits.clear();
        logits.resize(words.len() * rows, 0.0);
        let terms = [Term { weights: w.linear_weight, inputs: hiddens, width: w.hidden_size }];
        let biases = [w.linear_bias];
        let mut words_by_rows = vec![0.0; words.len() * rows];
        if self.many_rows {
            // One matrix product over all of the thread's words (a row's values are the same
            // bits as block by block: see `fewest_rows`).
            self.affine(&terms, &biases, words.clone(), rows, &mut words_by_rows);
        } else {
            let mut order: Vec<_> = words_by_rows.chunks_mut(SCORE_BLOCK * rows).enumerate().collect();
            if backwards {
                order.reverse();
            }
            for (at, out) in order {
                let first = words.start + at * SCORE_BLOCK;
                self.affine(&terms, &biases, first..first + out.len() / rows, rows, out);
            }
        }
        // Block by block, row by row, so that each row's scan below reads its logits in a line.
        for (block, out) in words_by_rows.chunks(SCORE_BLOCK * rows).zip(logits.chunks_mut(SCORE_BLOCK * rows)) {
            transpose_into(block, block.len() / rows, rows, out);
        }
        let mut best = Vec::with_capacity(rows * self.blocks.len());
        let (mut values, mut tempered_values) = (Vec::with_capacity(SCORE_BLOCK), Vec::new());
        for r in 0..rows {
            for block in self.blocks.clone() {
                let first = block * SCORE_BLOCK;
                let block_words = first..(first + SCORE_BLOCK).min(w.vocab_size);
                let start = (first - words.start) * rows + r * block_words.len();
                values.clear();
                values.extend_from_slice(&logits[start..][..block_words.len()]);
                let (mut word, mut max) = (first, f32::NEG_INFINITY);
                for (at, &value) in values.iter().enumerate() {
                    if value > max {
                        (word, max) = (first + at, value);
                    }
                }
                values.iter_mut().for_each(|value| *value -= max);
                let tempered = match temperature {
                    Some(temperature) if temperature != 1.0 => {
                        tempered_values.clear();
                        tempered_values.extend(values.iter().map(|value| value / temperature));
                        exp_in_place(&mut tempered_values);
                        Some(tempered_values.iter().sum())
                    }
                    _ => None,
                };
                exp_in_place(&mut values);
                let sum = values.iter().sum();
                best.push(BlockBest { max, word: word as u32, sum, tempered: tempered.unwrap_or(sum) });
            }
        }
        best
    }

    /// [`affine`]: dot products, each weight row read once per input row (best for a few rows);
    /// for many rows ([`MANY_ROWS`], and always when sampling: every image's samples), matrix
    /// products that pack each weight panel once for all rows. Either way a row gets the same
    /// bits whatever rows are beside it (matrix products on [`fewest_rows`] rows at least), so
    /// an image's samples do not depend on the batch they are drawn in; greedy decoding of a
    /// batch of [`MANY_ROWS`] or more may round apart from a smaller batch's.
    fn affine(&self, terms: &[Term], biases: &[&[f32]], units: Range<usize>, rows: usize, out: &mut [f32]) {
        if !self.many_rows {
            return affine(terms, biases, units, rows, out);
        }
        let fewest = fewest_rows(units.len());
        if rows < fewest {
            // Zero rows below the real ones, their outputs dropped.
            let padded: Vec<Vec<f32>> = terms
                .iter()
                .map(|term| {
                    let mut inputs = term.inputs[..rows * term.width].to_vec();
                    inputs.resize(fewest * term.width, 0.0);
                    inputs
                })
                .collect();
            let terms: Vec<Term> = terms.iter().zip(&padded).map(|(term, inputs)| Term { inputs, ..*term }).collect();
            let mut wide = vec![0.0; units.len() * fewest];
            self.affine(&terms, biases, units, fewest, &mut wide);
            for (out, wide) in out.chunks_exact_mut(rows).zip(wide.chunks_exact(fewest)) {
                out.copy_from_slice(&wide[..rows]);
            }
            return;
        }
        for (unit, out) in units.clone().zip(out.chunks_exact_mut(rows)) {
            out.fill(biases.iter().fold(0.0, |sum, bias| sum + bias[unit]));
        }
        for term in terms {
            let weights =
                View::rows(term.weights, term.weights.len() / term.width, term.width).row_range(units.clone());
            matmul_on_this_thread(out, true, weights, View::rows(term.inputs, rows, term.width).t());
        }
    }

    /// The words of this thread's vocabulary blocks.
    fn words(&self) -> Range<usize> {
        self.blocks.start * SCORE_BLOCK..(self.blocks.end * SCORE_BLOCK).min(self.w.vocab_size)
    }

    /// Row `r`'s logit of `word` at this step, from the logits of the thread whose block holds it.
    fn logit(&self, logits: &[impl std::ops::Deref<Target = Vec<f32>>], word: usize, r: usize, rows: usize) -> f32 {
        let blocks = self.w.vocab_size.div_ceil(SCORE_BLOCK);
        let block = word / SCORE_BLOCK;
        let owner = (0..self.threads).find(|&t| share(blocks, self.threads, t).contains(&block)).unwrap_or(0);
        let first = share(blocks, self.threads, owner).start * SCORE_BLOCK;
        let block_first = block * SCORE_BLOCK;
        let block_words = SCORE_BLOCK.min(self.w.vocab_size - block_first);
        logits[owner][(block_first - first) * rows + r * block_words + (word - block_first)]
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

/// The most probable word of a row (the first of equal ones) and its log-probability, from the
/// row's blocks in vocabulary order.
fn greatest(row_blocks: &[BlockBest]) -> (u32, f32) {
    let mut best = row_blocks[0];
    for block in &row_blocks[1..] {
        if block.max > best.max {
            best = *block;
        }
    }
    let sum: f32 = row_blocks.iter().map(|b| b.sum * (b.max - best.max).exp()).sum();
    (best.word, -sum.ln())
}

/// A word of a row drawn from `softmax(logits / temperature)`, and its log-probability (at
/// temperature 1): a block by its share of the tempered probability, then a word inside it by
/// its own, both against one uniform number (the draw [`sampling::sample`] makes over the whole
/// row in vocabulary order). `logit(word)` reads the row's logit.
///
/// [`sampling::sample`]: crate::sampling::sample
fn draw(
    row_blocks: &[BlockBest],
    (vocab_size, temperature): (usize, f32),
    logit: impl Fn(usize) -> f32,
    rng: &mut ChaCha8Rng,
) -> (u32, f32) {
    let top = row_blocks.iter().map(|b| b.max).fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row_blocks.iter().map(|b| b.sum * (b.max - top).exp()).sum();
    let inverse = 1.0 / f64::from(temperature);
    // Each block's tempered probability, relative to the row's most probable word's.
    let masses: Vec<f64> =
        row_blocks.iter().map(|b| f64::from(b.tempered) * (f64::from(b.max - top) * inverse).exp()).collect();
    let target = rng.random::<f64>() * masses.iter().sum::<f64>();
    let mut reached = 0.0;
    let mut block = masses.iter().rposition(|&mass| mass > 0.0).unwrap_or(0);
    for (at, &mass) in masses.iter().enumerate() {
        if target < reached + mass {
            block = at;
            break;
        }
        reached += mass;
    }
    // Rounding can leave the block's words a hair short of its mass: then its last possible word.
    let (mut word, mut last_possible) = (None, block * SCORE_BLOCK);
    for candidate in block * SCORE_BLOCK..(block * SCORE_BLOCK + SCORE_BLOCK).min(vocab_size) {
        let probability = (f64::from(logit(candidate) - top) * inverse).exp();
        if probability > 0.0 {
            last_possible = candidate;
        }
        reached += probability;
        if target < reached {
            word = Some(candidate);
            break;
        }
    }
    let word = word.unwrap_or(last_possible);
    (word as u32, logit(word) - top - sum.ln())
}
