//! The attention decoder's training pass on the CPU, written out by hand instead of through
//! candle's autograd: [`DecoderWithAttention::loss_gradients`], the teacher-forced forward pass,
//! the tutorial's loss (cross-entropy over each caption's own length + α_c · the doubly stochastic
//! term) and every parameter's gradient, when no gradient flows into the encoder's grid (frozen and
//! original-setup training).
//!
//! The captions are sorted longest first (as the tutorial sorts them) so that step `t` holds the
//! first `n_t` rows; every quantity is kept packed step after step. What does not depend on the
//! recurrence is one matrix product for all steps: the grid's projection `encoder_att(a)`, the
//! embeddings' share of the LSTM gates, the output layer and its gradients. Per step, one product
//! computes `decoder_att(h)`, `f_beta(h)` and `h·W_hhᵀ` together (their weights stacked) and one
//! the context's share of the gates; backward, one product gives the context's gradient and one
//! the state's. The weight gradients are products over all steps at the end. The dropout mask
//! before the output layer is drawn from the same [`Dropout`] stream in the same order and shape
//! as [`DecoderWithAttention::forward`] draws it (batch × decoder_dim per step, in batch order), so
//! both paths train alike.

use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;

use super::gemm::{View, column_sums, matmul, transposed};
use super::kernels::{sigmoid_in_place, softmax_cross_entropy_row};
use super::lstm::{cell_backward, cell_forward};
use super::with_host_slices;
use crate::Dropout;
use crate::backend::gradients::AttentionGradients;
use crate::backend::packing::{self, SequenceShape};
use crate::backend::views::{AttentionDecoderTensors, AttentionTargets};

/// The attention decoder's training loss and gradients on the CPU
/// ([`DecoderWithAttention::loss_gradients`](crate::DecoderWithAttention::loss_gradients)), the
/// gradients named as `decoder` names its parameters.
pub(crate) fn attention_gradients(
    decoder: &AttentionDecoderTensors,
    encoder_out: &Tensor,
    targets: AttentionTargets,
    dropout: &mut Dropout,
    alpha_c: f64,
) -> Result<AttentionGradients> {
    let AttentionTargets { ids: captions, lengths, weights: caption_weights } = targets;
    let parameters = &decoder.parameters;
    let mut tensors = vec![encoder_out];
    tensors.extend(parameters.iter().map(|(_, tensor)| tensor));
    let config = decoder.sizes;
    let (batch, positions, channels) = encoder_out.dims3()?;
    let (caption_batch, tokens) = captions.dims2()?;
    if channels != config.encoder || caption_batch != batch || lengths.len() != batch {
        candle_core::bail!(
            "{batch} grids of {positions} × {channels} for {caption_batch} captions and {} lengths (the decoder \
                 attends over {} channels)",
            lengths.len(),
            config.encoder
        );
    }
    if let Some(bad) = lengths.iter().find(|&&l| l < 2 || l > tokens) {
        candle_core::bail!("a caption length of {bad} with {tokens} tokens per caption");
    }
    let caption_weights = packing::caption_weights(caption_weights, batch)?;
    let ids: Vec<u32> = captions.to_dtype(DType::U32)?.flatten_all()?.to_vec1()?;
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= config.vocab) {
        candle_core::bail!("token id {bad} outside a vocabulary of {}", config.vocab);
    }
    let steps = lengths.iter().max().map_or(0, |l| l - 1);
    let mask = dropout.mask(steps * batch * config.decoder);
    let shape = Shape {
        batch,
        positions,
        channels,
        attention: config.attention,
        decoder: config.decoder,
        embed: config.embed,
        vocab: config.vocab,
    };
    let pass = with_host_slices(&tensors, |slices| {
        let weights = Weights::new(&slices[1..]);
        let captions = Captions { ids: &ids, tokens, lengths, weights: caption_weights };
        Ok(attention_pass(&shape, &weights, slices[0], &captions, mask.as_deref(), alpha_c as f32))
    })?;
    let gradients = parameters
        .iter()
        .zip(pass.gradients)
        .map(|((name, tensor), values)| Ok((name.clone(), Tensor::from_vec(values, tensor.shape(), &Device::Cpu)?)))
        .collect::<Result<_>>()?;
    Ok(AttentionGradients { loss: pass.loss, counted: pass.counted, gradients })
}

/// The sizes of a pass.
struct Shape {
    batch: usize,
    positions: usize,
    channels: usize,
    attention: usize,
    decoder: usize,
    embed: usize,
    vocab: usize,
}

/// The decoder's parameters as slices, in [`AttentionDecoderTensors`] order.
struct Weights<'a> {
    encoder_att: (&'a [f32], &'a [f32]),
    decoder_att: (&'a [f32], &'a [f32]),
    full_att: (&'a [f32], f32),
    embedding: &'a [f32],
    weight_ih: &'a [f32],
    weight_hh: &'a [f32],
    bias_ih: &'a [f32],
    bias_hh: &'a [f32],
    init_h: (&'a [f32], &'a [f32]),
    init_c: (&'a [f32], &'a [f32]),
    f_beta: (&'a [f32], &'a [f32]),
    fc: (&'a [f32], &'a [f32]),
}

impl Shape {
    /// Columns of decoder_att, f_beta and W_hh stacked.
    fn stacked(&self) -> usize {
        self.attention + self.channels + 4 * self.decoder
    }
}

impl<'a> Weights<'a> {
    fn new(s: &[&'a [f32]]) -> Self {
        Self {
            encoder_att: (s[0], s[1]),
            decoder_att: (s[2], s[3]),
            full_att: (s[4], s[5][0]),
            embedding: s[6],
            weight_ih: s[7],
            weight_hh: s[8],
            bias_ih: s[9],
            bias_hh: s[10],
            init_h: (s[11], s[12]),
            init_c: (s[13], s[14]),
            f_beta: (s[15], s[16]),
            fc: (s[17], s[18]),
        }
    }
}

/// What [`attention_pass`] computes.
struct Pass {
    loss: f32,
    counted: usize,
    /// In [`DecoderWithAttention::named_parameters`] order.
    gradients: Vec<Vec<f32>>,
}

/// `out[r] = x[r] · Wᵀ + bias` for the rows of `x` (`rows × width`), `w` being `out × width`
/// transposed already (`width × out`, row-major).
fn linear(out: &mut [f32], x: &[f32], rows: usize, w_t: &[f32], width: usize, bias: &[f32]) {
    let outputs = bias.len();
    matmul(out, false, View::rows(x, rows, width), View::rows(w_t, width, outputs));
    for row in out.chunks_exact_mut(outputs) {
        row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
    }
}

/// `dst ← aᵀ · b` (`a`: rows × m, `b`: rows × n, row-major): a weight's gradient over packed rows.
fn weight_gradient(a: &[f32], m: usize, b: &[f32], n: usize) -> Vec<f32> {
    let rows = a.len() / m.max(1);
    let mut dst = vec![0.0; m * n];
    matmul(&mut dst, false, View::rows(a, rows, m).t(), View::rows(b, rows, n));
    dst
}

/// Captions as the pass reads them: batch × `tokens` ids, row by row, `lengths[b]` of row `b`
/// counting, and each caption's weight.
struct Captions<'a> {
    ids: &'a [u32],
    tokens: usize,
    lengths: &'a [usize],
    weights: Option<&'a [f32]>,
}

/// The forward and backward pass ([`DecoderWithAttention::loss_gradients`]) on plain slices:
/// what does not depend on the recurrence ([`Setup`]), the steps forward ([`forward`]), the
/// output layer and the cross-entropy ([`output_layer`]), the doubly stochastic term
/// ([`coverage_term`]), the steps backward ([`backward`]), then every weight's gradient
/// ([`weight_gradients`]).
fn attention_pass(
    shape: &Shape,
    w: &Weights,
    grid_in: &[f32],
    captions: &Captions,
    mask: Option<&[f32]>,
    alpha_c: f32,
) -> Pass {
    let setup = Setup::new(shape, w, grid_in, captions);
    let forward = forward(shape, w, &setup, mask);
    let output = output_layer(shape, w, &setup, &forward);
    let coverage = coverage_term(shape, &setup, &forward, alpha_c);
    let backward = backward(shape, w, &setup, &forward, &output.d_outputs, &coverage.d_coverage, mask);
    let loss = output.loss + coverage.penalty;
    let gradients = weight_gradients(shape, &setup, &forward, backward, output.d_fc_weight, output.d_fc_bias);
    Pass { loss, counted: setup.packed.rows(), gradients }
}

/// What the pass computes before the first step: the captions packed longest first (as the
/// LSTM's training pass packs them: step t holds the first `packed.step(t).len()` of them, sorted
/// row k being the batch's `order[k]`), the grids in that order and everything that does not
/// depend on the recurrence.
struct Setup {
    packed: SequenceShape,
    /// The grids, sorted.
    grid: Vec<f32>,
    /// `encoder_att(grid)`: batch × positions × attention.
    projected: Vec<f32>,
    /// Each grid's mean feature.
    mean: Vec<f32>,
    /// `init_h(mean)`, `init_c(mean)`.
    h0: Vec<f32>,
    c0: Vec<f32>,
    /// Each packed row's input word, its embedding and its target.
    input_words: Vec<usize>,
    inputs: Vec<f32>,
    targets: Vec<usize>,
    /// Each packed row's weight (its caption's), when the captions are weighed.
    target_weights: Option<Vec<f32>>,
    /// The LSTM input weights' embedding columns and context columns (4·decoder × embed, × channels).
    w_ie: Vec<f32>,
    w_iz: Vec<f32>,
    /// The context columns transposed.
    w_iz_t: Vec<f32>,
    /// The embeddings' share of the gates, biases included.
    embedded_gates: Vec<f32>,
    /// decoder_att, f_beta and W_hh stacked (one product of the state per step, each way), and
    /// transposed.
    stacked: Vec<f32>,
    stacked_t: Vec<f32>,
}

impl Setup {
    fn new(shape: &Shape, w: &Weights, grid_in: &[f32], captions: &Captions) -> Self {
        let &Captions { ids, tokens, lengths, weights } = captions;
        let &Shape {
            batch, positions: p_count, channels: c_dim, attention: a_dim, decoder: d_dim, embed: e_dim, ..
        } = shape;
        let (gates_dim, input_dim) = (4 * d_dim, e_dim + c_dim);
        let decode: Vec<usize> = lengths.iter().map(|l| l - 1).collect();
        let packed = SequenceShape::packed(&decode, d_dim);
        let order = &packed.order;
        let (steps, rows_total) = (packed.steps(), packed.rows());
        let grid_size = p_count * c_dim;
        let mut grid = vec![0.0f32; batch * grid_size];
        grid.par_chunks_mut(grid_size)
            .zip(order)
            .for_each(|(g, &b)| g.copy_from_slice(&grid_in[b * grid_size..][..grid_size]));

        let mut projected = vec![0.0; batch * p_count * a_dim];
        let encoder_att_t = transposed(w.encoder_att.0, a_dim, c_dim);
        linear(&mut projected, &grid, batch * p_count, &encoder_att_t, c_dim, w.encoder_att.1);
        let mut mean = vec![0.0; batch * c_dim];
        for (m, g) in mean.chunks_exact_mut(c_dim).zip(grid.chunks_exact(grid_size)) {
            for position in g.chunks_exact(c_dim) {
                m.iter_mut().zip(position).for_each(|(m, x)| *m += x);
            }
            m.iter_mut().for_each(|m| *m /= p_count as f32);
        }
        let mut h0 = vec![0.0; batch * d_dim];
        let mut c0 = vec![0.0; batch * d_dim];
        linear(&mut h0, &mean, batch, &transposed(w.init_h.0, d_dim, c_dim), c_dim, w.init_h.1);
        linear(&mut c0, &mean, batch, &transposed(w.init_c.0, d_dim, c_dim), c_dim, w.init_c.1);
        let word = |t: usize, k: usize| ids[order[k] * tokens + t] as usize;
        let mut input_words = vec![0usize; rows_total];
        let mut inputs = vec![0.0; rows_total * e_dim];
        let mut targets = vec![0usize; rows_total];
        let mut target_weights = weights.map(|_| vec![0.0f32; rows_total]);
        for t in 0..steps {
            for (k, row) in packed.step(t).enumerate() {
                input_words[row] = word(t, k);
                inputs[row * e_dim..][..e_dim].copy_from_slice(&w.embedding[word(t, k) * e_dim..][..e_dim]);
                targets[row] = word(t + 1, k);
                if let (Some(rows), Some(weights)) = (&mut target_weights, weights) {
                    rows[row] = weights[order[k]];
                }
            }
        }
        let (mut w_ie, mut w_iz) = (vec![0.0; gates_dim * e_dim], vec![0.0; gates_dim * c_dim]);
        for (g, row) in w.weight_ih.chunks_exact(input_dim).enumerate() {
            w_ie[g * e_dim..][..e_dim].copy_from_slice(&row[..e_dim]);
            w_iz[g * c_dim..][..c_dim].copy_from_slice(&row[e_dim..]);
        }
        let (w_ie_t, w_iz_t) = (transposed(&w_ie, gates_dim, e_dim), transposed(&w_iz, gates_dim, c_dim));
        let gate_bias: Vec<f32> = w.bias_ih.iter().zip(w.bias_hh).map(|(a, b)| a + b).collect();
        let mut embedded_gates = vec![0.0; rows_total * gates_dim];
        linear(&mut embedded_gates, &inputs, rows_total, &w_ie_t, e_dim, &gate_bias);
        let stacked_dim = shape.stacked();
        let mut stacked = Vec::with_capacity(stacked_dim * d_dim);
        stacked.extend_from_slice(w.decoder_att.0);
        stacked.extend_from_slice(w.f_beta.0);
        stacked.extend_from_slice(w.weight_hh);
        let stacked_t = transposed(&stacked, stacked_dim, d_dim);
        Self {
            packed,
            grid,
            projected,
            mean,
            h0,
            c0,
            input_words,
            inputs,
            targets,
            target_weights,
            w_ie,
            w_iz,
            w_iz_t,
            embedded_gates,
            stacked,
            stacked_t,
        }
    }
}

/// What the steps forward keep for the backward pass, per packed row.
struct Forward {
    previous_h: Vec<f32>,
    previous_c: Vec<f32>,
    gates: Vec<f32>,
    cell_tanh: Vec<f32>,
    queries: Vec<f32>,
    alphas: Vec<f32>,
    contexts: Vec<f32>,
    gate_values: Vec<f32>,
    gated: Vec<f32>,
    /// The states after the dropout before the output layer.
    outputs: Vec<f32>,
}

/// The steps forward: per step, attention row by row, the gates, the LSTM cell, the dropout.
fn forward(shape: &Shape, w: &Weights, setup: &Setup, mask: Option<&[f32]>) -> Forward {
    let &Shape { batch, positions: p_count, channels: c_dim, attention: a_dim, decoder: d_dim, .. } = shape;
    let (gates_dim, stacked_dim, grid_size) = (4 * d_dim, shape.stacked(), p_count * c_dim);
    let Setup { packed, grid, projected, embedded_gates, w_iz_t, stacked_t, .. } = setup;
    let rows_total = packed.rows();
    let (mut h, mut c) = (setup.h0.clone(), setup.c0.clone());
    let mut f = Forward {
        previous_h: vec![0.0; rows_total * d_dim],
        previous_c: vec![0.0; rows_total * d_dim],
        gates: vec![0.0; rows_total * gates_dim],
        cell_tanh: vec![0.0; rows_total * d_dim],
        queries: vec![0.0; rows_total * a_dim],
        alphas: vec![0.0; rows_total * p_count],
        contexts: vec![0.0; rows_total * c_dim],
        gate_values: vec![0.0; rows_total * c_dim],
        gated: vec![0.0; rows_total * c_dim],
        outputs: vec![0.0; rows_total * d_dim],
    };
    let mut state_products = vec![0.0; batch * stacked_dim];
    for t in 0..packed.steps() {
        let (n, start) = (packed.step(t).len(), packed.step(t).start);
        let rows = start..start + n;
        f.previous_h[rows.start * d_dim..rows.end * d_dim].copy_from_slice(&h[..n * d_dim]);
        f.previous_c[rows.start * d_dim..rows.end * d_dim].copy_from_slice(&c[..n * d_dim]);
        let products = &mut state_products[..n * stacked_dim];
        matmul(products, false, View::rows(&h, n, d_dim), View::rows(stacked_t, d_dim, stacked_dim));
        // Attention, row by row in parallel: the query, the scores, softmax, the context, the gate.
        let full_att = w.full_att;
        f.queries[rows.start * a_dim..rows.end * a_dim]
            .par_chunks_mut(a_dim)
            .zip(f.alphas[rows.start * p_count..rows.end * p_count].par_chunks_mut(p_count))
            .zip(f.contexts[rows.start * c_dim..rows.end * c_dim].par_chunks_mut(c_dim))
            .zip(f.gate_values[rows.start * c_dim..rows.end * c_dim].par_chunks_mut(c_dim))
            .zip(f.gated[rows.start * c_dim..rows.end * c_dim].par_chunks_mut(c_dim))
            .enumerate()
            .for_each(|(k, ((((query, alpha), context), gate), gated))| {
                let product = &products[k * stacked_dim..][..stacked_dim];
                query.iter_mut().zip(&product[..a_dim]).zip(w.decoder_att.1).for_each(|((q, x), b)| *q = x + b);
                let projected = &projected[k * p_count * a_dim..][..p_count * a_dim];
                for (score, position) in alpha.iter_mut().zip(projected.chunks_exact(a_dim)) {
                    let mut sum = full_att.1;
                    for ((x, q), wf) in position.iter().zip(query.iter()).zip(full_att.0) {
                        sum += (x + q).max(0.0) * wf;
                    }
                    *score = sum;
                }
                softmax_in_place(alpha);
                context.fill(0.0);
                for (a, position) in alpha.iter().zip(grid[k * grid_size..][..grid_size].chunks_exact(c_dim)) {
                    context.iter_mut().zip(position).for_each(|(z, x)| *z += a * x);
                }
                gate.iter_mut().zip(&product[a_dim..a_dim + c_dim]).zip(w.f_beta.1).for_each(|((g, x), b)| *g = x + b);
                sigmoid_in_place(gate);
                gated.iter_mut().zip(gate.iter()).zip(context.iter()).for_each(|((o, g), z)| *o = g * z);
            });
        // The gates: the embedding's share, the context's, the state's.
        let step_gates = &mut f.gates[rows.start * gates_dim..rows.end * gates_dim];
        step_gates.copy_from_slice(&embedded_gates[rows.start * gates_dim..rows.end * gates_dim]);
        matmul(
            step_gates,
            true,
            View::rows(&f.gated[rows.start * c_dim..rows.end * c_dim], n, c_dim),
            View::rows(w_iz_t, c_dim, gates_dim),
        );
        for k in 0..n {
            let product = &products[k * stacked_dim + a_dim + c_dim..][..gates_dim];
            let row = &mut step_gates[k * gates_dim..][..gates_dim];
            row.iter_mut().zip(product).for_each(|(g, x)| *g += x);
            let (cell, tanh_row) = (&mut c[k * d_dim..][..d_dim], &mut f.cell_tanh[(start + k) * d_dim..][..d_dim]);
            cell_forward(row, cell, tanh_row, &mut h[k * d_dim..][..d_dim]);
            // Dropout before the output layer, the mask in batch order.
            let output = &mut f.outputs[(start + k) * d_dim..][..d_dim];
            output.copy_from_slice(&h[k * d_dim..][..d_dim]);
            if let Some(mask) = mask {
                let m = &mask[(t * batch + packed.order[k]) * d_dim..][..d_dim];
                output.iter_mut().zip(m).for_each(|(o, m)| *o *= m);
            }
        }
    }
    f
}

/// The output layer and the cross-entropy over every decoded token at once.
struct OutputLayer {
    /// The mean cross-entropy.
    loss: f32,
    d_fc_weight: Vec<f32>,
    d_fc_bias: Vec<f32>,
    /// The loss's gradient for each row's output (after the dropout).
    d_outputs: Vec<f32>,
}

fn output_layer(shape: &Shape, w: &Weights, setup: &Setup, forward: &Forward) -> OutputLayer {
    let (d_dim, vocab, rows_total) = (shape.decoder, shape.vocab, setup.packed.rows());
    let mut scores = vec![0.0; rows_total * vocab];
    matmul(
        &mut scores,
        false,
        View::rows(&forward.outputs, rows_total, d_dim),
        View::rows(&transposed(w.fc.0, vocab, d_dim), d_dim, vocab),
    );
    let scale = 1.0 / rows_total.max(1) as f32;
    let weight = |row: usize| setup.target_weights.as_ref().map_or(1.0, |weights| weights[row]);
    let cross_entropy: f64 = scores
        .par_chunks_mut(vocab)
        .zip(setup.targets.par_iter())
        .enumerate()
        .map(|(index, (row, &target))| {
            let weight = weight(index);
            f64::from(softmax_cross_entropy_row(row, w.fc.1, target, scale * weight)) * f64::from(weight)
        })
        .sum();
    let loss = (cross_entropy * f64::from(scale)) as f32;
    let d_fc_weight = weight_gradient(&scores, vocab, &forward.outputs, d_dim);
    let d_fc_bias = column_sums(&scores, vocab);
    let mut d_outputs = vec![0.0; rows_total * d_dim];
    matmul(&mut d_outputs, false, View::rows(&scores, rows_total, vocab), View::rows(w.fc.0, vocab, d_dim));
    OutputLayer { loss, d_fc_weight, d_fc_bias, d_outputs }
}

/// The doubly stochastic term `α_c · mean((1 − Σ_t α_t)²)` and its gradient for each α (the same
/// at every step of a caption).
struct Coverage {
    penalty: f32,
    d_coverage: Vec<f32>,
}

fn coverage_term(shape: &Shape, setup: &Setup, forward: &Forward, alpha_c: f32) -> Coverage {
    let (batch, p_count, packed) = (shape.batch, shape.positions, &setup.packed);
    let mut coverage = vec![0.0f32; batch * p_count];
    for t in 0..packed.steps() {
        for (k, row) in packed.step(t).enumerate() {
            let alpha = &forward.alphas[row * p_count..][..p_count];
            coverage[k * p_count..][..p_count].iter_mut().zip(alpha).for_each(|(s, a)| *s += a);
        }
    }
    let penalty_scale = alpha_c / (batch * p_count) as f32;
    let penalty = coverage.iter().map(|s| (1.0 - s) * (1.0 - s)).sum::<f32>() * penalty_scale;
    let d_coverage = coverage.iter().map(|s| 2.0 * (s - 1.0) * penalty_scale).collect();
    Coverage { penalty, d_coverage }
}

/// What the steps backward give: per packed row the gates', the f_beta gate's pre-activation's
/// and the query's gradients; the projected grid's and full_att's; the initial state's.
struct Backward {
    d_gates: Vec<f32>,
    d_gate_pre: Vec<f32>,
    d_queries: Vec<f32>,
    d_projected: Vec<f32>,
    d_full_att: Vec<f32>,
    d_full_att_bias: f32,
    d_h0: Vec<f32>,
    d_c0: Vec<f32>,
}

/// The steps backward, from the last: the dropout, the LSTM cell, the context's share of the
/// gates, attention row by row, the state through decoder_att, f_beta and W_hh.
fn backward(
    shape: &Shape,
    w: &Weights,
    setup: &Setup,
    forward: &Forward,
    d_outputs: &[f32],
    d_coverage: &[f32],
    mask: Option<&[f32]>,
) -> Backward {
    let &Shape { batch, positions: p_count, channels: c_dim, attention: a_dim, decoder: d_dim, .. } = shape;
    let (gates_dim, stacked_dim, grid_size) = (4 * d_dim, shape.stacked(), p_count * c_dim);
    let Setup { packed, grid, projected, w_iz, stacked, .. } = setup;
    let (steps, rows_total) = (packed.steps(), packed.rows());
    let mut b = Backward {
        d_gates: vec![0.0; rows_total * gates_dim],
        d_gate_pre: vec![0.0; rows_total * c_dim],
        d_queries: vec![0.0; rows_total * a_dim],
        d_projected: vec![0.0; batch * p_count * a_dim],
        d_full_att: vec![0.0f32; a_dim],
        d_full_att_bias: 0.0,
        d_h0: Vec::new(),
        d_c0: Vec::new(),
    };
    // The state's gradients, sorted rows; after the first step, the initial state's.
    let (mut d_h, mut d_c) = (vec![0.0; batch * d_dim], vec![0.0; batch * d_dim]);
    let mut d_gated = vec![0.0; batch * c_dim];
    let mut d_stacked = vec![0.0; batch * stacked_dim];
    for t in (0..steps).rev() {
        let (n, start) = (packed.step(t).len(), packed.step(t).start);
        // Rows that end here start from zero: nothing later reads their state.
        let carried = if t + 1 < steps { packed.step(t + 1).len() } else { 0 };
        d_h[carried * d_dim..n * d_dim].fill(0.0);
        d_c[carried * d_dim..n * d_dim].fill(0.0);
        for k in 0..n {
            let row = start + k;
            let d_out = &d_outputs[row * d_dim..][..d_dim];
            let dh = &mut d_h[k * d_dim..][..d_dim];
            match mask {
                Some(mask) => {
                    let m = &mask[(t * batch + packed.order[k]) * d_dim..][..d_dim];
                    dh.iter_mut().zip(d_out).zip(m).for_each(|((d, o), m)| *d += o * m);
                }
                None => dh.iter_mut().zip(d_out).for_each(|(d, o)| *d += o),
            }
            // The LSTM cell (its state at the first step is init_c's, not zeros).
            cell_backward(
                &forward.gates[row * gates_dim..][..gates_dim],
                &forward.cell_tanh[row * d_dim..][..d_dim],
                Some(&forward.previous_c[row * d_dim..][..d_dim]),
                dh,
                &mut d_c[k * d_dim..][..d_dim],
                &mut b.d_gates[row * gates_dim..][..gates_dim],
            );
        }
        // The context's share of the gates, backward.
        let d_gated = &mut d_gated[..n * c_dim];
        matmul(
            d_gated,
            false,
            View::rows(&b.d_gates[start * gates_dim..(start + n) * gates_dim], n, gates_dim),
            View::rows(w_iz, gates_dim, c_dim),
        );
        // Attention backward, row by row in parallel.
        let d_parts: Vec<(Vec<f32>, f32)> = b.d_gate_pre[start * c_dim..(start + n) * c_dim]
            .par_chunks_mut(c_dim)
            .zip(b.d_queries[start * a_dim..(start + n) * a_dim].par_chunks_mut(a_dim))
            .zip(b.d_projected[..n * p_count * a_dim].par_chunks_mut(p_count * a_dim))
            .enumerate()
            .map(|(k, ((d_pre, d_query), d_projected))| {
                let row = start + k;
                let d_gated = &d_gated[k * c_dim..][..c_dim];
                let gate = &forward.gate_values[row * c_dim..][..c_dim];
                let context = &forward.contexts[row * c_dim..][..c_dim];
                // The sigmoid gate.
                for j in 0..c_dim {
                    d_pre[j] = d_gated[j] * context[j] * gate[j] * (1.0 - gate[j]);
                }
                // The context Σ_p α_p a_p: dα_p = (dz · a_p) + the coverage term.
                let alpha = &forward.alphas[row * p_count..][..p_count];
                let g = &grid[k * grid_size..][..grid_size];
                let mut d_alpha: Vec<f32> = g
                    .chunks_exact(c_dim)
                    .zip(&d_coverage[k * p_count..][..p_count])
                    .map(|(position, cover)| {
                        position.iter().zip(d_gated).zip(gate).map(|((x, dz), gv)| x * dz * gv).sum::<f32>() + cover
                    })
                    .collect();
                // Softmax backward.
                let dot: f32 = alpha.iter().zip(&d_alpha).map(|(a, d)| a * d).sum();
                d_alpha.iter_mut().zip(alpha).for_each(|(d, a)| *d = a * (*d - dot));
                // The scores: full_att(relu(projected + query)).
                let query = &forward.queries[row * a_dim..][..a_dim];
                let projected = &projected[k * p_count * a_dim..][..p_count * a_dim];
                let mut d_w = vec![0.0f32; a_dim];
                let mut d_bias = 0.0;
                d_query.fill(0.0);
                for ((position, d_position), &d_score) in
                    projected.chunks_exact(a_dim).zip(d_projected.chunks_exact_mut(a_dim)).zip(&d_alpha)
                {
                    d_bias += d_score;
                    for j in 0..a_dim {
                        let u = position[j] + query[j];
                        if u > 0.0 {
                            d_w[j] += d_score * u;
                            let d_u = d_score * w.full_att.0[j];
                            d_position[j] += d_u;
                            d_query[j] += d_u;
                        }
                    }
                }
                (d_w, d_bias)
            })
            .collect();
        for (d_w, d_bias) in d_parts {
            b.d_full_att.iter_mut().zip(&d_w).for_each(|(a, b)| *a += b);
            b.d_full_att_bias += d_bias;
        }
        // The state's gradient through decoder_att, f_beta and W_hh, stacked as forward.
        let d_stacked = &mut d_stacked[..n * stacked_dim];
        for k in 0..n {
            stacked_row(shape, &b, start + k, &mut d_stacked[k * stacked_dim..][..stacked_dim]);
        }
        matmul(
            &mut d_h[..n * d_dim],
            false,
            View::rows(d_stacked, n, stacked_dim),
            View::rows(stacked, stacked_dim, d_dim),
        );
    }
    (b.d_h0, b.d_c0) = (d_h, d_c);
    b
}

/// A packed row's gradient for the stacked product of the state (decoder_att's query, f_beta's
/// pre-activation, the gates) into `out`.
fn stacked_row(shape: &Shape, backward: &Backward, row: usize, out: &mut [f32]) {
    let (a_dim, c_dim, gates_dim) = (shape.attention, shape.channels, 4 * shape.decoder);
    out[..a_dim].copy_from_slice(&backward.d_queries[row * a_dim..][..a_dim]);
    out[a_dim..a_dim + c_dim].copy_from_slice(&backward.d_gate_pre[row * c_dim..][..c_dim]);
    out[a_dim + c_dim..].copy_from_slice(&backward.d_gates[row * gates_dim..][..gates_dim]);
}

/// Every parameter's gradient, in [`DecoderWithAttention::named_parameters`] order, from the
/// steps backward over every packed row at once.
fn weight_gradients(
    shape: &Shape,
    setup: &Setup,
    forward: &Forward,
    b: Backward,
    d_fc_weight: Vec<f32>,
    d_fc_bias: Vec<f32>,
) -> Vec<Vec<f32>> {
    let &Shape { channels: c_dim, attention: a_dim, decoder: d_dim, embed: e_dim, vocab, .. } = shape;
    let (gates_dim, input_dim, stacked_dim) = (4 * d_dim, e_dim + c_dim, shape.stacked());
    let rows_total = setup.packed.rows();
    let mut d_stacked_all = vec![0.0; rows_total * stacked_dim];
    for row in 0..rows_total {
        stacked_row(shape, &b, row, &mut d_stacked_all[row * stacked_dim..][..stacked_dim]);
    }
    let d_state_weights = weight_gradient(&d_stacked_all, stacked_dim, &forward.previous_h, d_dim);
    let (d_decoder_att, rest) = d_state_weights.split_at(a_dim * d_dim);
    let (d_f_beta, d_weight_hh) = rest.split_at(c_dim * d_dim);
    let d_embedded = weight_gradient(&b.d_gates, gates_dim, &setup.inputs, e_dim);
    let d_context_weights = weight_gradient(&b.d_gates, gates_dim, &forward.gated, c_dim);
    let mut d_weight_ih = vec![0.0; gates_dim * input_dim];
    for (g, row) in d_weight_ih.chunks_exact_mut(input_dim).enumerate() {
        row[..e_dim].copy_from_slice(&d_embedded[g * e_dim..][..e_dim]);
        row[e_dim..].copy_from_slice(&d_context_weights[g * c_dim..][..c_dim]);
    }
    let d_gate_bias = column_sums(&b.d_gates, gates_dim);
    // The embedding: each input word's row gathers its rows' gradient (rows in step order).
    let mut d_inputs = vec![0.0; rows_total * e_dim];
    let w_ie = View::rows(&setup.w_ie, gates_dim, e_dim);
    matmul(&mut d_inputs, false, View::rows(&b.d_gates, rows_total, gates_dim), w_ie);
    let mut d_embedding = vec![0.0; vocab * e_dim];
    for (row, &word) in setup.input_words.iter().enumerate() {
        let source = &d_inputs[row * e_dim..][..e_dim];
        d_embedding[word * e_dim..][..e_dim].iter_mut().zip(source).for_each(|(d, s)| *d += s);
    }
    vec![
        // The grid's projection.
        weight_gradient(&b.d_projected, a_dim, &setup.grid, c_dim),
        column_sums(&b.d_projected, a_dim),
        d_decoder_att.to_vec(),
        column_sums(&b.d_queries, a_dim),
        b.d_full_att,
        vec![b.d_full_att_bias],
        d_embedding,
        d_weight_ih,
        d_weight_hh.to_vec(),
        d_gate_bias.clone(),
        d_gate_bias,
        // The initial state from the mean feature.
        weight_gradient(&b.d_h0, d_dim, &setup.mean, c_dim),
        column_sums(&b.d_h0, d_dim),
        weight_gradient(&b.d_c0, d_dim, &setup.mean, c_dim),
        column_sums(&b.d_c0, d_dim),
        d_f_beta.to_vec(),
        column_sums(&b.d_gate_pre, c_dim),
        d_fc_weight,
        d_fc_bias,
    ]
}

/// `x ← softmax(x)`.
fn softmax_in_place(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    values.iter_mut().for_each(|v| *v /= sum);
}
