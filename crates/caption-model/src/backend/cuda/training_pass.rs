//! The training step's forward and backward pass on CUDA: the CPU backend's `training_pass.rs`
//! with its loops as kernels. Per LSTM layer: one cuBLAS product for every step's input
//! projections, then per time step one product for the recurrence and one fused cell kernel
//! forward (PyTorch's `lstm_cell_forward`), one cell kernel and one product backward, and three
//! products for the weight gradients; the output layer on the rows whose target is not PAD, a
//! fused softmax + cross-entropy + gradient kernel, and the embedding gradient summed without
//! atomics (the same on every run).
//!
//! What depends on the captions only (the packing, which rows count, the embedding gradient's
//! segments) is worked out on the host ([`Plan`]) and copied over with the dropout masks, which
//! come from the same [`Dropout`] stream, in the same order, as on the other paths.

use std::ops::Range;

use candle_core::cuda_backend::CudaDevice;
use candle_core::cuda_backend::cudarc::cublas::CudaBlas;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::{Result, Tensor};

use super::blas::{Matrix, matmul};
use super::kernels::{self, CellActivations, DeviceMask, RowMask, Segments};
use super::{tensor, upload, with_device_views, zeros};
use crate::backend::gradients::{DecoderGradients, HeadGradients};
use crate::backend::packing::{SequenceShape, caption_ids, counted_positions, packed_captions};
use crate::backend::views::{HeadTensors, LstmDecoderTensors};
use crate::{Dropout, Targets};

/// [`DecoderRNN::loss_gradients`](crate::DecoderRNN::loss_gradients) on CUDA; `None` for a batch without a counted target or
/// without a step after the features (the reference path takes those).
pub(crate) fn decoder_gradients(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    targets: Targets,
    dropout: &mut Dropout,
) -> Result<Option<DecoderGradients>> {
    let parameters = &decoder.parameters;
    let (batch, width) = features.dims2()?;
    let sizes = Sizes::of(decoder)?;
    if width != sizes.embed {
        candle_core::bail!("the features have {width} columns, the decoder takes {}", sizes.embed);
    }
    let (ids, steps) = caption_ids(targets.captions, batch, sizes.vocab)?;
    let weights = targets.checked_weights(batch)?;
    let Some(mut plan) = Plan::new(&ids, batch, steps, targets.pad, weights, sizes.hidden) else { return Ok(None) };
    let mask = plan.push_mask(dropout.mask_bits((steps - 1) * batch * sizes.embed));
    let mut tensors = vec![features];
    tensors.extend(parameters.iter().map(|(_, tensor)| tensor));
    with_device_views(&tensors, |device, views| {
        let blas = device.cublas_handle();
        let weights = DeviceWeights::new(&views[1..], sizes);
        let words = upload(device, &plan.words)?;
        let indices = DeviceIndices::new(&words, &plan);
        let mask_bits = mask.as_ref().map(|(range, _)| words.slice(range.clone()));
        let mask = device_mask(&mask_bits, &mask);
        let pass = decoder_pass(device, &blas, &weights, &views[0], &plan, &indices, mask)?;
        let d_features = tensor(pass.d_features, (batch, sizes.embed), device)?;
        let gradients = named(parameters, pass.gradients, device)?;
        Ok(Some(DecoderGradients { loss: pass.loss, counted: pass.counted, gradients, features: d_features }))
    })
}

/// [`CNNtoRNN::head_gradients`](crate::CNNtoRNN::head_gradients) on CUDA (`None` as
/// [`decoder_gradients`]).
pub(crate) fn head_gradients(
    head: &HeadTensors,
    pooled: &Tensor,
    targets: Targets,
    dropout: &mut Dropout,
) -> Result<Option<HeadGradients>> {
    let (fc_weight, fc_bias) = (&head.fc_weight.1, &head.fc_bias.1);
    let decoder = &head.decoder;
    let parameters = &decoder.parameters;
    let sizes = Sizes::of(decoder)?;
    let (embed_size, pooled_size) = fc_weight.dims2()?;
    if embed_size != sizes.embed {
        candle_core::bail!("fc gives {embed_size} features, the decoder takes {}", sizes.embed);
    }
    let (batch, width) = pooled.dims2()?;
    if width != pooled_size {
        candle_core::bail!("the pooled features have {width} columns, fc takes {pooled_size}");
    }
    let (ids, steps) = caption_ids(targets.captions, batch, sizes.vocab)?;
    let weights = targets.checked_weights(batch)?;
    let Some(mut plan) = Plan::new(&ids, batch, steps, targets.pad, weights, sizes.hidden) else { return Ok(None) };
    // The masks in the order the forward pass draws them.
    let pooled_mask = plan.push_mask(dropout.mask_bits(batch * pooled_size));
    let features_mask = plan.push_mask(dropout.mask_bits(batch * embed_size));
    let embeddings_mask = plan.push_mask(dropout.mask_bits((steps - 1) * batch * embed_size));

    let mut tensors = vec![pooled, fc_weight, fc_bias];
    tensors.extend(parameters.iter().map(|(_, tensor)| tensor));
    with_device_views(&tensors, |device, views| {
        let blas = device.cublas_handle();
        let (pooled, fc_weight, fc_bias) = (&views[0], &views[1], &views[2]);
        let weights = DeviceWeights::new(&views[3..], sizes);
        let words = upload(device, &plan.words)?;
        let indices = DeviceIndices::new(&words, &plan);
        let bits = |mask: &Option<(Range<usize>, f32)>| mask.as_ref().map(|(range, _)| words.slice(range.clone()));
        let (pooled_bits, features_bits, embeddings_bits) =
            (bits(&pooled_mask), bits(&features_mask), bits(&embeddings_mask));
        let pooled_mask = device_mask(&pooled_bits, &pooled_mask);
        let features_mask = device_mask(&features_bits, &features_mask);
        let embeddings_mask = device_mask(&embeddings_bits, &embeddings_mask);

        // dropout(relu(fc(dropout(pooled)))).
        let mut dropped = zeros(device, batch * pooled_size)?;
        device.memcpy_dtod(pooled, &mut dropped)?;
        if let Some(mask) = &pooled_mask {
            kernels::dropout(device, &mut dropped, mask)?;
        }
        let dropped_view = dropped.as_view();
        let mut fc_out = zeros(device, batch * embed_size)?;
        kernels::fill_rows(device, &mut fc_out, fc_bias, None)?;
        let fc_matrix = Matrix::rows(fc_weight, embed_size, pooled_size);
        matmul(&blas, &mut fc_out, 0, true, Matrix::rows(&dropped_view, batch, pooled_size), fc_matrix.t())?;
        let mut features = zeros(device, batch * embed_size)?;
        kernels::relu_dropout(device, &mut features, &fc_out.as_view(), features_mask.as_ref())?;

        let pass = decoder_pass(device, &blas, &weights, &features.as_view(), &plan, &indices, embeddings_mask)?;

        // Back through the dropout and the ReLU, then fc.
        let mut d_fc_out = pass.d_features;
        kernels::relu_dropout_backward(device, &mut d_fc_out, &fc_out.as_view(), features_mask.as_ref())?;
        let d_fc_out_view = d_fc_out.as_view();
        let mut d_fc_weight = zeros(device, embed_size * pooled_size)?;
        let d_fc_out_matrix = Matrix::rows(&d_fc_out_view, batch, embed_size);
        matmul(
            &blas,
            &mut d_fc_weight,
            0,
            false,
            d_fc_out_matrix.t(),
            Matrix::rows(&dropped_view, batch, pooled_size),
        )?;
        let mut d_fc_bias = zeros(device, embed_size)?;
        kernels::column_sums(device, &mut d_fc_bias, &d_fc_out_view)?;

        let mut gradients = vec![
            (head.fc_weight.0.clone(), tensor(d_fc_weight, (embed_size, pooled_size), device)?),
            (head.fc_bias.0.clone(), tensor(d_fc_bias, embed_size, device)?),
        ];
        gradients.extend(named(parameters, pass.gradients, device)?);
        Ok(Some(HeadGradients { loss: pass.loss, counted: pass.counted, gradients }))
    })
}

/// A mask that [`Plan::push_mask`] staged, as the kernels take it: its bits in device memory
/// (`bits`, the staged words' view) and its scale.
fn device_mask<'v, 'a>(
    bits: &'v Option<CudaView<'a, u32>>,
    mask: &Option<(Range<usize>, f32)>,
) -> Option<DeviceMask<'v, 'a>> {
    bits.as_ref().zip(mask.as_ref()).map(|(bits, &(_, scale))| DeviceMask { bits, scale })
}

/// The decoder's sizes.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    embed: usize,
    hidden: usize,
    vocab: usize,
    layers: usize,
}

impl Sizes {
    fn of(decoder: &LstmDecoderTensors) -> Result<Self> {
        let (embed, hidden, vocab) = decoder.sizes()?;
        Ok(Self { embed, hidden, vocab, layers: decoder.layers() })
    }
}

/// The decoder's parameters in device memory, in [`LstmDecoderTensors`] order.
struct DeviceWeights<'a, 'b> {
    embed: &'b CudaView<'a, f32>,
    linear_weight: &'b CudaView<'a, f32>,
    linear_bias: &'b CudaView<'a, f32>,
    /// Per layer: `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    layers: Vec<&'b [CudaView<'a, f32>]>,
    sizes: Sizes,
}

impl<'a, 'b> DeviceWeights<'a, 'b> {
    fn new(views: &'b [CudaView<'a, f32>], sizes: Sizes) -> Self {
        let layers = views[3..].chunks_exact(4).take(sizes.layers).collect();
        Self { embed: &views[0], linear_weight: &views[1], linear_bias: &views[2], layers, sizes }
    }
}

/// What depends on the captions alone, worked out on the host: the packing (as the CPU pass's),
/// the rows each gather reads, the counted targets, and the embedding gradient's segments. Every
/// index array lies in `words`, which the dropout masks' bits join ([`push_mask`](Self::push_mask)),
/// so that one copy takes them all to the GPU (a copy from pageable memory makes the host wait).
struct Plan {
    shape: SequenceShape,
    batch: usize,
    /// The arrays below, one after another.
    words: Vec<u32>,
    /// The batch row of each packed row of step 0 (the features' rows).
    feature_rows: Range<usize>,
    /// The token of each packed row of the later steps (`captions[t − 1, b]`).
    embed_tokens: Range<usize>,
    /// Each of those rows' row in the embeddings' dropout mask (`(t − 1)·batch + b`).
    embed_mask_rows: Range<usize>,
    /// The packed row of each counted target, in batch row order (the CPU pass's order).
    kept_rows: Range<usize>,
    /// Each counted target's token.
    targets: Range<usize>,
    /// Each counted target's weight (its caption's; 1 without weights), as float32 bits.
    target_weights: Range<usize>,
    /// For each packed row of the steps after the first, the packed row of `h_{t−1}`.
    previous_rows: Range<usize>,
    /// The embedding gradient: per token, its packed rows in step-then-batch order.
    segment_starts: Range<usize>,
    segment_tokens: Range<usize>,
    segment_rows: Range<usize>,
    segment_mask_rows: Range<usize>,
}

impl Plan {
    /// `None` when no target counts or no caption reaches a second step.
    fn new(ids: &[u32], batch: usize, steps: usize, pad: u32, weights: Option<&[f32]>, hidden: usize) -> Option<Self> {
        let shape = packed_captions(ids, batch, steps, pad, hidden);
        let kept = counted_positions(ids, pad);
        if kept.is_empty() || shape.steps() < 2 {
            return None;
        }
        let index = |n: usize| n as u32;
        let mut words = Vec::new();
        let mut push = |values: Vec<u32>| {
            let start = words.len();
            words.extend(values);
            start..words.len()
        };
        let feature_rows = push(shape.step(0).map(|row| index(shape.order[row])).collect());
        let mut embed_tokens = Vec::new();
        let mut embed_mask_rows = Vec::new();
        for t in 1..shape.steps() {
            for &b in &shape.order[..shape.step(t).len()] {
                embed_tokens.push(ids[(t - 1) * batch + b]);
                embed_mask_rows.push(index((t - 1) * batch + b));
            }
        }
        let (embed_tokens, embed_mask_rows) = (push(embed_tokens), push(embed_mask_rows));
        let kept_rows = push(
            kept.iter()
                .map(|&r| index(shape.row(r / batch, r % batch).expect("a counted target's step is packed")))
                .collect(),
        );
        let targets = push(kept.iter().map(|&r| ids[r]).collect());
        let target_weights = push(kept.iter().map(|&r| weights.map_or(1.0, |w| w[r % batch]).to_bits()).collect());
        let mut previous_rows = Vec::new();
        for t in 1..shape.steps() {
            let before = shape.step(t - 1).start;
            previous_rows.extend((before..before + shape.step(t).len()).map(index));
        }
        let previous_rows = push(previous_rows);
        // (token, packed row, mask row) in step-then-batch order, grouped by token (stable).
        let mut entries: Vec<(u32, u32, u32)> = Vec::new();
        for t in 1..steps {
            for b in 0..batch {
                if let Some(row) = shape.row(t, b) {
                    let at = (t - 1) * batch + b;
                    entries.push((ids[at], index(row), index(at)));
                }
            }
        }
        entries.sort_by_key(|&(token, _, _)| token);
        let mut segment_starts = Vec::new();
        let mut segment_tokens = Vec::new();
        for (k, &(token, _, _)) in entries.iter().enumerate() {
            if segment_tokens.last() != Some(&token) {
                segment_tokens.push(token);
                segment_starts.push(index(k));
            }
        }
        segment_starts.push(index(entries.len()));
        let (segment_starts, segment_tokens) = (push(segment_starts), push(segment_tokens));
        let segment_rows = push(entries.iter().map(|&(_, row, _)| row).collect());
        let segment_mask_rows = push(entries.iter().map(|&(_, _, at)| at).collect());
        Some(Self {
            shape,
            batch,
            words,
            feature_rows,
            embed_tokens,
            embed_mask_rows,
            kept_rows,
            targets,
            target_weights,
            previous_rows,
            segment_starts,
            segment_tokens,
            segment_rows,
            segment_mask_rows,
        })
    }

    /// Appends a dropout mask's bits ([`Dropout::mask_bits`]) to the words: where they lie, and
    /// the mask's scale.
    fn push_mask(&mut self, mask: Option<(Vec<u32>, f32)>) -> Option<(Range<usize>, f32)> {
        let (bits, scale) = mask?;
        let start = self.words.len();
        self.words.extend(bits);
        Some((start..self.words.len(), scale))
    }

    /// How many targets count.
    fn counted(&self) -> usize {
        self.kept_rows.len()
    }
}

/// The plan's index arrays in device memory (views into its one copy of `words`).
struct DeviceIndices<'a> {
    feature_rows: CudaView<'a, u32>,
    embed_tokens: CudaView<'a, u32>,
    embed_mask_rows: CudaView<'a, u32>,
    kept_rows: CudaView<'a, u32>,
    targets: CudaView<'a, u32>,
    target_weights: CudaView<'a, u32>,
    previous_rows: CudaView<'a, u32>,
    segment_starts: CudaView<'a, u32>,
    segment_tokens: CudaView<'a, u32>,
    segment_rows: CudaView<'a, u32>,
    segment_mask_rows: CudaView<'a, u32>,
}

impl<'a> DeviceIndices<'a> {
    fn new(words: &'a CudaSlice<u32>, plan: &Plan) -> Self {
        let at = |range: &Range<usize>| words.slice(range.clone());
        Self {
            feature_rows: at(&plan.feature_rows),
            embed_tokens: at(&plan.embed_tokens),
            embed_mask_rows: at(&plan.embed_mask_rows),
            kept_rows: at(&plan.kept_rows),
            targets: at(&plan.targets),
            target_weights: at(&plan.target_weights),
            previous_rows: at(&plan.previous_rows),
            segment_starts: at(&plan.segment_starts),
            segment_tokens: at(&plan.segment_tokens),
            segment_rows: at(&plan.segment_rows),
            segment_mask_rows: at(&plan.segment_mask_rows),
        }
    }
}

/// What [`decoder_pass`] computes.
struct DevicePass {
    loss: f32,
    counted: usize,
    /// In [`LstmDecoderTensors`] order (the LSTM's bias gradient twice).
    gradients: Vec<CudaSlice<f32>>,
    /// For the features, batch × embed.
    d_features: CudaSlice<f32>,
}

/// What a layer's forward pass keeps for its backward pass.
struct LayerCache {
    input: CudaSlice<f32>,
    gates: CudaSlice<f32>,
    cells: CudaSlice<f32>,
    cells_tanh: CudaSlice<f32>,
    hidden: CudaSlice<f32>,
}

/// The decoder's forward and backward pass from `features` (batch × embed).
fn decoder_pass(
    device: &CudaDevice,
    blas: &CudaBlas,
    w: &DeviceWeights,
    features: &CudaView<f32>,
    plan: &Plan,
    indices: &DeviceIndices,
    embeddings_mask: Option<DeviceMask>,
) -> Result<DevicePass> {
    let Sizes { embed, hidden, vocab, .. } = w.sizes;
    let shape = &plan.shape;
    let rows = shape.rows();
    let first = shape.step(0).len();

    // The features, then the embedded caption tokens (all but the last), dropped out.
    let mut input = zeros(device, rows * embed)?;
    kernels::gather_rows(device, &mut input, 0, features, &indices.feature_rows, None, embed)?;
    let mask = embeddings_mask.map(|mask| RowMask { mask, rows: &indices.embed_mask_rows });
    kernels::gather_rows(device, &mut input, first, w.embed, &indices.embed_tokens, mask.as_ref(), embed)?;

    let mut caches: Vec<LayerCache> = Vec::with_capacity(w.layers.len());
    for layer in &w.layers {
        let input = match caches.last() {
            Some(below) => {
                let mut copy = zeros(device, rows * hidden)?;
                device.memcpy_dtod(&below.hidden, &mut copy)?;
                copy
            }
            None => std::mem::replace(&mut input, zeros(device, 1)?),
        };
        caches.push(layer_forward(device, blas, layer, input, shape)?);
    }
    let top = caches.last().expect("the LSTM has at least one layer");

    // The output layer and the loss, for the rows whose target is not PAD.
    let counted = plan.counted();
    let mut selected = zeros(device, counted * hidden)?;
    kernels::gather_rows(device, &mut selected, 0, &top.hidden.as_view(), &indices.kept_rows, None, hidden)?;
    let selected_view = selected.as_view();
    let selected_matrix = Matrix::rows(&selected_view, counted, hidden);
    let linear = Matrix::rows(w.linear_weight, vocab, hidden);
    let mut logits = zeros(device, counted * vocab)?;
    matmul(blas, &mut logits, 0, false, selected_matrix, linear.t())?;
    let mut losses = zeros(device, counted)?;
    let scale = 1.0 / counted as f32;
    let targets = kernels::Targets { ids: &indices.targets, weights: &indices.target_weights };
    kernels::softmax_cross_entropy(device, &mut logits, w.linear_bias, &targets, &mut losses, scale)?;
    let d_logits = logits.as_view();
    let d_logits_matrix = Matrix::rows(&d_logits, counted, vocab);
    let mut d_linear_weight = zeros(device, vocab * hidden)?;
    matmul(blas, &mut d_linear_weight, 0, false, d_logits_matrix.t(), selected_matrix)?;
    let mut d_linear_bias = zeros(device, vocab)?;
    kernels::column_sums(device, &mut d_linear_bias, &d_logits)?;
    let mut d_selected = zeros(device, counted * hidden)?;
    matmul(blas, &mut d_selected, 0, false, d_logits_matrix, linear)?;
    let mut d_output = zeros(device, rows * hidden)?;
    kernels::scatter_rows(device, &mut d_output, &d_selected.as_view(), &indices.kept_rows, hidden)?;

    // The LSTM, top layer first; each layer's input gradient is the output gradient of the one below.
    let mut layer_gradients = Vec::with_capacity(w.layers.len());
    for (layer, cache) in w.layers.iter().zip(&caches).rev() {
        let gradients =
            layer_backward(device, blas, layer, cache, &d_output, shape, plan.batch, &indices.previous_rows)?;
        d_output = gradients.input;
        layer_gradients.push([gradients.w_ih, gradients.w_hh, gradients.bias]);
    }
    layer_gradients.reverse();
    let d_input = d_output.as_view();

    // The features' gradient (zero for a caption with no counted target) and the embeddings'.
    let mut d_features = zeros(device, plan.batch * embed)?;
    let first_rows = d_input.slice(..first * embed);
    kernels::scatter_rows(device, &mut d_features, &first_rows, &indices.feature_rows, embed)?;
    let mut d_embed = zeros(device, vocab * embed)?;
    let segments =
        Segments { starts: &indices.segment_starts, tokens: &indices.segment_tokens, order: &indices.segment_rows };
    let mask = embeddings_mask.map(|mask| RowMask { mask, rows: &indices.segment_mask_rows });
    kernels::segment_sum_rows(device, &mut d_embed, &d_input, &segments, mask.as_ref(), embed)?;

    // Summed in row order on the host, as the CPU pass does: the same on every run.
    let loss: f64 = device.clone_dtoh(&losses)?.iter().map(|&l| f64::from(l)).sum();
    let mut gradients = vec![d_embed, d_linear_weight, d_linear_bias];
    for [d_w_ih, d_w_hh, d_bias] in layer_gradients {
        let mut d_bias_hh = zeros(device, d_bias.len())?;
        device.memcpy_dtod(&d_bias, &mut d_bias_hh)?;
        gradients.extend([d_w_ih, d_w_hh, d_bias, d_bias_hh]);
    }
    Ok(DevicePass { loss: (loss / counted as f64) as f32, counted, gradients, d_features })
}

/// One LSTM layer forward over `input` (rows × input).
fn layer_forward(
    device: &CudaDevice,
    blas: &CudaBlas,
    layer: &[CudaView<f32>],
    input: CudaSlice<f32>,
    shape: &SequenceShape,
) -> Result<LayerCache> {
    let [w_ih, w_hh, b_ih, b_hh] = layer else { candle_core::bail!("an LSTM layer has four parameters") };
    let (hidden, rows) = (shape.hidden, shape.rows());
    let width = 4 * hidden;
    let input_size = w_ih.len() / width;
    // Input projections of every step at once, on top of both biases.
    let mut gates = zeros(device, rows * width)?;
    kernels::fill_rows(device, &mut gates, b_ih, Some(b_hh))?;
    let input_view = input.as_view();
    matmul(
        blas,
        &mut gates,
        0,
        true,
        Matrix::rows(&input_view, rows, input_size),
        Matrix::rows(w_ih, width, input_size).t(),
    )?;
    let recurrent = Matrix::rows(w_hh, width, hidden).t();
    let (mut cells, mut cells_tanh, mut outputs) =
        (zeros(device, rows * hidden)?, zeros(device, rows * hidden)?, zeros(device, rows * hidden)?);
    for t in 0..shape.steps() {
        let now = shape.step(t);
        // The same sequences' rows in the step before (they lead it: steps never grow).
        let before = (t > 0).then(|| shape.step(t - 1).start);
        if let Some(before) = before {
            let outputs_view = outputs.as_view();
            let previous = Matrix::rows(&outputs_view, rows, hidden).row_range(before..before + now.len());
            matmul(blas, &mut gates, now.start, true, previous, recurrent)?;
        }
        kernels::lstm_cell_forward(
            device,
            &mut gates,
            &mut cells,
            &mut cells_tanh,
            &mut outputs,
            now.start,
            before,
            now.len(),
            hidden,
        )?;
    }
    Ok(LayerCache { input, gates, cells, cells_tanh, hidden: outputs })
}

/// A layer's gradients: its weights' and its input's.
struct LayerGradients {
    w_ih: CudaSlice<f32>,
    w_hh: CudaSlice<f32>,
    bias: CudaSlice<f32>,
    input: CudaSlice<f32>,
}

/// One LSTM layer backward from `d_output` (rows × hidden); `previous_rows` as [`Plan`]'s.
#[allow(clippy::too_many_arguments)]
fn layer_backward(
    device: &CudaDevice,
    blas: &CudaBlas,
    layer: &[CudaView<f32>],
    cache: &LayerCache,
    d_output: &CudaSlice<f32>,
    shape: &SequenceShape,
    batch: usize,
    previous_rows: &CudaView<u32>,
) -> Result<LayerGradients> {
    let [w_ih, w_hh, ..] = layer else { candle_core::bail!("an LSTM layer has four parameters") };
    let (hidden, rows) = (shape.hidden, shape.rows());
    let width = 4 * hidden;
    let input_size = w_ih.len() / width;
    let forward = CellActivations {
        gates: cache.gates.as_view(),
        cells: cache.cells.as_view(),
        cells_tanh: cache.cells_tanh.as_view(),
    };
    let d_output = d_output.as_view();
    let mut d_gates = zeros(device, rows * width)?;
    // What reaches step t from step t + 1, for h and for c (zeros for sequences ending at t).
    let mut d_hidden_next = zeros(device, batch * hidden)?;
    let mut d_cell_next = zeros(device, batch * hidden)?;
    let recurrent = Matrix::rows(w_hh, width, hidden);
    for t in (0..shape.steps()).rev() {
        let now = shape.step(t);
        let before = (t > 0).then(|| shape.step(t - 1).start);
        let d_hidden_view = d_hidden_next.as_view();
        kernels::lstm_cell_backward(
            device,
            &forward,
            &d_output,
            &d_hidden_view,
            &mut d_cell_next,
            &mut d_gates,
            now.start,
            before,
            now.len(),
            hidden,
        )?;
        if before.is_some() {
            let d_gates_view = d_gates.as_view();
            let step_gates = Matrix::rows(&d_gates_view, rows, width).row_range(now.clone());
            matmul(blas, &mut d_hidden_next, 0, false, step_gates, recurrent)?;
        }
    }
    let d_gates_view = d_gates.as_view();
    let all_gates = Matrix::rows(&d_gates_view, rows, width);
    let input_view = cache.input.as_view();
    let input = Matrix::rows(&input_view, rows, input_size);
    let mut d_w_ih = zeros(device, width * input_size)?;
    matmul(blas, &mut d_w_ih, 0, false, all_gates.t(), input)?;
    // h_{t−1} meets the gates of steps t ≥ 1.
    let later = shape.step(1).start..rows;
    let mut previous_hidden = zeros(device, later.len() * hidden)?;
    kernels::gather_rows(device, &mut previous_hidden, 0, &cache.hidden.as_view(), previous_rows, None, hidden)?;
    let previous_view = previous_hidden.as_view();
    let mut d_w_hh = zeros(device, width * hidden)?;
    let previous = Matrix::rows(&previous_view, later.len(), hidden);
    matmul(blas, &mut d_w_hh, 0, false, all_gates.row_range(later).t(), previous)?;
    let mut bias = zeros(device, width)?;
    kernels::column_sums(device, &mut bias, &d_gates_view)?;
    let mut d_input = zeros(device, rows * input_size)?;
    matmul(blas, &mut d_input, 0, false, all_gates, Matrix::rows(w_ih, width, input_size))?;
    Ok(LayerGradients { w_ih: d_w_ih, w_hh: d_w_hh, bias, input: d_input })
}

/// Gradients in the order of `parameters` as named tensors of their shapes.
fn named(
    parameters: &[(String, Tensor)],
    gradients: Vec<CudaSlice<f32>>,
    device: &CudaDevice,
) -> Result<Vec<(String, Tensor)>> {
    parameters
        .iter()
        .zip(gradients)
        .map(|((name, parameter), values)| Ok((name.clone(), tensor(values, parameter.dims(), device)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAD: u32 = 0;

    /// Captions (steps × batch, time-major) of lengths 3, 0, 5, 2 with a PAD inside caption 2.
    fn captions() -> (Vec<u32>, usize, usize) {
        let (steps, batch) = (5, 4);
        let lengths = [3, 0, 5, 2];
        let mut ids = vec![PAD; steps * batch];
        for (b, &length) in lengths.iter().enumerate() {
            for t in 0..length {
                ids[t * batch + b] = 1 + ((t * 7 + b * 3) % 4) as u32;
            }
        }
        ids[batch + 2] = PAD;
        (ids, steps, batch)
    }

    #[test]
    fn the_plan_indexes_the_packed_rows_as_the_cpu_pass_does() {
        let (ids, steps, batch) = captions();
        let weights = [0.5, -1.0, 2.0, 0.25];
        let plan = Plan::new(&ids, batch, steps, PAD, Some(&weights), 8).unwrap();
        let words = |range: &Range<usize>| &plan.words[range.clone()];
        let shape = &plan.shape;
        // Step 0 reads the features of every caption that runs, longest first.
        assert_eq!(words(&plan.feature_rows), [2, 0, 3]);
        // The later steps' rows read the token before them, and its row of the dropout mask.
        let mut row = shape.step(1).start;
        for (&token, &mask_row) in words(&plan.embed_tokens).iter().zip(words(&plan.embed_mask_rows)) {
            let t = (0..shape.steps()).find(|&t| shape.step(t).contains(&row)).unwrap();
            let b = shape.order[row - shape.step(t).start];
            assert_eq!((token, mask_row as usize), (ids[(t - 1) * batch + b], (t - 1) * batch + b));
            row += 1;
        }
        assert_eq!(row, shape.rows(), "every row after step 0 is embedded once");
        // Each counted target is scored at the packed row of its step and caption.
        let counted: Vec<usize> = (0..ids.len()).filter(|&r| ids[r] != PAD).collect();
        assert_eq!(plan.counted(), counted.len());
        let scored = words(&plan.kept_rows).iter().zip(words(&plan.targets)).zip(words(&plan.target_weights));
        for (((&packed, &target), &weight), &r) in scored.zip(&counted) {
            assert_eq!(Some(packed as usize), shape.row(r / batch, r % batch));
            assert_eq!(target, ids[r]);
            assert_eq!(f32::from_bits(weight), weights[r % batch], "its caption's weight");
        }
        let unweighted = Plan::new(&ids, batch, steps, PAD, None, 8).unwrap();
        assert!(unweighted.words[unweighted.target_weights.clone()].iter().all(|&w| f32::from_bits(w) == 1.0));
        // h_{t−1} of the same caption meets each row of the later steps.
        for (k, &previous) in words(&plan.previous_rows).iter().enumerate() {
            let row = shape.step(1).start + k;
            let t = (1..shape.steps()).find(|&t| shape.step(t).contains(&row)).unwrap();
            let b = shape.order[row - shape.step(t).start];
            assert_eq!(Some(previous as usize), shape.row(t - 1, b));
        }
        // The embedding gradient's segments: every embedded row once, grouped by token, in step
        // then batch order within a token (the CPU pass's order of additions).
        let (starts, tokens) = (words(&plan.segment_starts), words(&plan.segment_tokens));
        let (rows, mask_rows) = (words(&plan.segment_rows), words(&plan.segment_mask_rows));
        assert_eq!(starts.len(), tokens.len() + 1);
        assert_eq!(*starts.last().unwrap() as usize, shape.rows() - shape.step(0).len());
        for (s, &token) in tokens.iter().enumerate() {
            let segment = starts[s] as usize..starts[s + 1] as usize;
            assert!(!segment.is_empty());
            for k in segment.clone() {
                assert_eq!(ids[mask_rows[k] as usize], token, "segment {s} holds its token's rows only");
                let (t, b) = (mask_rows[k] as usize / batch + 1, mask_rows[k] as usize % batch);
                assert_eq!(Some(rows[k] as usize), shape.row(t, b));
            }
            assert!(mask_rows[segment].windows(2).all(|pair| pair[0] < pair[1]), "step then batch order");
        }
        assert!(tokens.windows(2).all(|pair| pair[0] < pair[1]), "one segment per token");
    }

    #[test]
    fn masks_join_the_words_after_the_indices() {
        let (ids, steps, batch) = captions();
        let mut plan = Plan::new(&ids, batch, steps, PAD, None, 8).unwrap();
        let indices = plan.words.len();
        assert_eq!(plan.push_mask(None), None);
        let (range, scale) = plan.push_mask(Some((vec![7, 9], 2.0))).unwrap();
        assert_eq!((range, scale), (indices..indices + 2, 2.0));
        assert_eq!(plan.words[indices..], [7, 9]);
    }

    #[test]
    fn batches_the_cuda_pass_leaves_to_the_reference() {
        // Nothing counts, or no caption reaches a second step.
        assert!(Plan::new(&[PAD; 6], 2, 3, PAD, None, 8).is_none());
        assert!(Plan::new(&[4, 5], 2, 1, PAD, None, 8).is_none());
    }
}
