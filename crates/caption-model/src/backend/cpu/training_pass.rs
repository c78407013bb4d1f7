//! The training step's forward and backward pass on the CPU, written out by hand instead of through
//! candle's autograd: [`decoder_gradients`] (the decoder and the PAD-masked cross-entropy) and
//! [`head_gradients`] (the encoder's `fc`, ReLU and dropouts before it).
//!
//! Through autograd a teacher-forced LSTM is a few dozen small tensor operations per time step,
//! forward and backward, each allocating and dispatching; here each layer is one matrix product
//! for the input projections of all steps, one small product per step for the recurrence (each
//! way), loops over plain vectors, and three products for the weight gradients
//! ([`lstm`]), all on the `gemm` crate. Rows whose target is
//! PAD skip the output layer, and a caption's steps after its last counted target skip the LSTM
//! too: they add nothing to the loss or its gradient. The dropout masks are
//! drawn from the same [`Dropout`] stream, in the same order and shapes, as
//! [`EncoderCNN::features_from_pooled`](crate::EncoderCNN::features_from_pooled) and
//! [`DecoderRNN::hiddens`] draw them, so both paths train alike.
//!
//! The loss is PyTorch's `CrossEntropyLoss(ignore_index=PAD)`: the mean over non-PAD targets of
//! `logsumexp(logits) − logits[target]`.

use std::borrow::Cow;

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::decoder_weights::{DecoderWeights, with_decoder_weights};
use super::decoding::{ForwardRecord, SCORE_BLOCK};
use super::gemm::{View, column_sums, matmul};
use super::kernels::softmax_cross_entropy_row;
use super::lstm::{self, LayerCache};
use crate::backend::gradients::{DecoderGradients, HeadGradients};
use crate::backend::packing::{SequenceShape, caption_ids, counted_positions, packed_captions};
use crate::backend::views::{HeadTensors, LstmDecoderTensors};
use crate::{Dropout, Targets};

/// The LSTM decoder's teacher-forced loss and its gradients on the CPU
/// ([`DecoderRNN::loss_gradients`](crate::DecoderRNN::loss_gradients)), the gradients named as
/// `decoder` names its parameters.
pub(crate) fn decoder_gradients(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    targets: Targets,
    dropout: &mut Dropout,
) -> Result<DecoderGradients> {
    with_decoder_weights(decoder, &[], |_, weights| {
        let (batch, width) = features.dims2()?;
        if width != weights.embed_size {
            candle_core::bail!("the features have {width} columns, the decoder takes {}", weights.embed_size);
        }
        let captions = CaptionIds::new(targets, batch, weights.vocab_size)?;
        let features: Vec<f32> = features.flatten_all()?.to_vec1()?;
        let mask = dropout.mask((captions.steps - 1) * batch * weights.embed_size);
        let pass = decoder_pass(&weights, &features, &captions, mask.as_deref());
        let d_features = Tensor::from_vec(pass.d_features, (batch, weights.embed_size), &Device::Cpu)?;
        let gradients = named(&decoder.parameters, pass.gradients)?;
        Ok(DecoderGradients { loss: pass.loss, counted: pass.counted, gradients, features: d_features })
    })
}

/// Gradients in the order of `parameters` as tensors of their names and shapes.
fn named(parameters: &[(String, Tensor)], gradients: Vec<Vec<f32>>) -> Result<Vec<(String, Tensor)>> {
    parameters
        .iter()
        .zip(gradients)
        .map(|((name, tensor), values)| Ok((name.clone(), Tensor::from_vec(values, tensor.dims(), &Device::Cpu)?)))
        .collect()
}

/// The original's head (`fc`, ReLU and the dropouts, then the decoder) trained from `pooled`
/// features on the CPU ([`CNNtoRNN::head_gradients`](crate::CNNtoRNN::head_gradients)), the
/// gradients named as `head` names its tensors.
pub(crate) fn head_gradients(
    head: &HeadTensors,
    pooled: &Tensor,
    targets: Targets,
    dropout: &mut Dropout,
) -> Result<HeadGradients> {
    let (fc_weight, fc_bias) = (&head.fc_weight.1, &head.fc_bias.1);
    let shape = fc_weight.dims2()?;
    let pass = with_decoder_weights(&head.decoder, &[fc_weight, fc_bias], |fc, weights| {
        let fc = Fc { weight: fc[0], bias: fc[1], shape };
        let captions = CaptionIds::new(targets, pooled.dim(0)?, weights.vocab_size)?;
        head_pass(&fc, &weights, pooled, &captions, dropout, |features, mask| {
            decoder_pass(&weights, features, &captions, mask)
        })
    })?;
    named_head_gradients(head, pass)
}

/// [`head_gradients`] without dropout for `targets` whose captions the CPU decoding loop sampled
/// from `pooled` (one row per caption) keeping `record`
/// ([`decoding::sample`](super::decoding::sample)): the LSTM's states and the logits are taken
/// from the record instead of a second forward pass.
///
/// # Errors
/// As [`head_gradients`], or captions other than the ones the record drew.
pub(crate) fn sampled_head_gradients(
    head: &HeadTensors,
    pooled: &Tensor,
    targets: Targets,
    record: &ForwardRecord,
) -> Result<HeadGradients> {
    let (fc_weight, fc_bias) = (&head.fc_weight.1, &head.fc_bias.1);
    let shape = fc_weight.dims2()?;
    let pass = with_decoder_weights(&head.decoder, &[fc_weight, fc_bias], |fc, decoder| {
        let fc = Fc { weight: fc[0], bias: fc[1], shape };
        let captions = CaptionIds::new(targets, pooled.dim(0)?, decoder.vocab_size)?;
        if !drew(record, &captions) {
            candle_core::bail!("these captions are not the ones whose sampling kept this forward pass");
        }
        let recorded = recorded_forward(&decoder, record, &captions);
        let mut no_dropout = Dropout::new(0.0, 0);
        head_pass(&fc, &decoder, pooled, &captions, &mut no_dropout, |_, _| {
            let (shape, caches, logits) = recorded;
            output_and_backward(&decoder, &captions, &shape, caches, Some(logits), None)
        })
    })?;
    named_head_gradients(head, pass)
}

/// The named gradients of `head` from its pass.
fn named_head_gradients(head: &HeadTensors, pass: HeadPass) -> Result<HeadGradients> {
    let (embed_size, pooled_size) = head.fc_weight.1.dims2()?;
    let cpu = &Device::Cpu;
    let mut gradients = vec![
        (head.fc_weight.0.clone(), Tensor::from_vec(pass.d_fc_weight, (embed_size, pooled_size), cpu)?),
        (head.fc_bias.0.clone(), Tensor::from_vec(pass.d_fc_bias, embed_size, cpu)?),
    ];
    gradients.extend(named(&head.decoder.parameters, pass.decoder.gradients)?);
    Ok(HeadGradients { loss: pass.decoder.loss, counted: pass.decoder.counted, gradients })
}

/// The encoder's `fc` as slices: `weight` is `shape` (embed × pooled).
struct Fc<'a> {
    weight: &'a [f32],
    bias: &'a [f32],
    shape: (usize, usize),
}

/// What [`head_pass`] computes: the decoder's pass and `fc`'s gradients.
struct HeadPass {
    decoder: DecoderPass,
    d_fc_weight: Vec<f32>,
    d_fc_bias: Vec<f32>,
}

/// [`CNNtoRNN::head_gradients`] on the weights' data: `fc` and its dropouts around `decoder`,
/// the decoder's pass from the features and its embeddings' dropout mask.
fn head_pass(
    fc: &Fc,
    weights: &DecoderWeights,
    pooled: &Tensor,
    captions: &CaptionIds,
    dropout: &mut Dropout,
    decoder: impl FnOnce(&[f32], Option<&[f32]>) -> DecoderPass,
) -> Result<HeadPass> {
    let (fc_weight, fc_bias) = (fc.weight, fc.bias);
    let (embed_size, pooled_size) = fc.shape;
    if embed_size != weights.embed_size {
        candle_core::bail!("fc gives {embed_size} features, the decoder takes {}", weights.embed_size);
    }
    let (batch, width) = pooled.dims2()?;
    if width != pooled_size {
        candle_core::bail!("the pooled features have {width} columns, fc takes {pooled_size}");
    }
    if captions.ids.len() != captions.steps * batch {
        candle_core::bail!("{batch} pooled rows for {} captions", captions.ids.len() / captions.steps.max(1));
    }
    let mut pooled: Vec<f32> = pooled.flatten_all()?.to_vec1()?;
    let pooled_mask = dropout.mask(batch * pooled_size);
    let features_mask = dropout.mask(batch * embed_size);
    let embeddings_mask = dropout.mask((captions.steps - 1) * batch * embed_size);

    // dropout(relu(fc(dropout(pooled)))).
    apply_mask(&mut pooled, pooled_mask.as_deref());
    let mut fc_out = vec![0.0; batch * embed_size];
    matmul(
        &mut fc_out,
        false,
        View::rows(&pooled, batch, pooled_size),
        View::rows(fc_weight, embed_size, pooled_size).t(),
    );
    for row in fc_out.chunks_exact_mut(embed_size) {
        row.iter_mut().zip(fc_bias).for_each(|(x, b)| *x += b);
    }
    let mut features: Vec<f32> = fc_out.iter().map(|&z| z.max(0.0)).collect();
    apply_mask(&mut features, features_mask.as_deref());

    let decoder = decoder(&features, embeddings_mask.as_deref());

    // Back through the dropout and the ReLU (whose gradient at 0 is 0, as PyTorch's), then fc.
    let mut d_fc_out = decoder.d_features.clone();
    apply_mask(&mut d_fc_out, features_mask.as_deref());
    d_fc_out.iter_mut().zip(&fc_out).filter(|(_, z)| **z <= 0.0).for_each(|(d, _)| *d = 0.0);
    let (d_fc_weight, d_fc_bias) = linear_gradients(&d_fc_out, &pooled, batch, (embed_size, pooled_size));
    Ok(HeadPass { decoder, d_fc_weight, d_fc_bias })
}

/// What [`decoder_pass`] computes.
struct DecoderPass {
    loss: f32,
    counted: usize,
    /// In [`DecoderRNN::named_parameters`] order.
    gradients: Vec<Vec<f32>>,
    /// For the features, batch × embed.
    d_features: Vec<f32>,
}

/// Multiplies `values` by `mask` elementwise when there is one.
fn apply_mask(values: &mut [f32], mask: Option<&[f32]>) {
    if let Some(mask) = mask {
        values.iter_mut().zip(mask).for_each(|(v, m)| *v *= m);
    }
}

/// A linear layer's weight gradient (`outputs` × `inputs`) and bias gradient (`outputs`) from the
/// gradient of its outputs (`rows` × `outputs`) and its inputs (`rows` × `inputs`).
fn linear_gradients(
    d_output: &[f32],
    input: &[f32],
    rows: usize,
    (outputs, inputs): (usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let mut d_weight = vec![0.0; outputs * inputs];
    matmul(&mut d_weight, false, View::rows(d_output, rows, outputs).t(), View::rows(input, rows, inputs));
    (d_weight, column_sums(d_output, outputs))
}

/// The captions as the passes read them: ids (steps × batch, time-major) checked against the
/// batch and the vocabulary, the PAD id, and the captions' weights.
struct CaptionIds<'a> {
    ids: Vec<u32>,
    steps: usize,
    pad: u32,
    weights: Option<&'a [f32]>,
}

impl<'a> CaptionIds<'a> {
    fn new(targets: Targets<'a>, batch: usize, vocab_size: usize) -> Result<Self> {
        let (ids, steps) = caption_ids(targets.captions, batch, vocab_size)?;
        Ok(Self { ids, steps, pad: targets.pad, weights: targets.checked_weights(batch)? })
    }
}

/// The decoder's forward and backward pass from `features` (batch × embed).
fn decoder_pass(
    w: &DecoderWeights,
    features: &[f32],
    captions: &CaptionIds,
    embeddings_mask: Option<&[f32]>,
) -> DecoderPass {
    let &CaptionIds { ref ids, steps, pad, .. } = captions;
    let (embed_size, hidden_size) = (w.embed_size, w.hidden_size);
    let batch = features.len() / embed_size;
    let shape = packed_captions(ids, batch, steps, pad, hidden_size);
    let packed_rows = shape.rows();

    // The features, then the embedded caption tokens (all but the last), dropped out.
    let mut input = vec![0.0; packed_rows * embed_size];
    for t in 0..shape.steps() {
        for (row, &b) in shape.step(t).zip(&shape.order) {
            let destination = &mut input[row * embed_size..][..embed_size];
            if t == 0 {
                destination.copy_from_slice(&features[b * embed_size..][..embed_size]);
                continue;
            }
            let at = (t - 1) * batch + b;
            destination.copy_from_slice(&w.embed[ids[at] as usize * embed_size..][..embed_size]);
            apply_mask(destination, embeddings_mask.map(|mask| &mask[at * embed_size..][..embed_size]));
        }
    }

    let mut caches: Vec<LayerCache> = Vec::with_capacity(w.layers.len());
    for layer in &w.layers {
        let layer_input = match caches.last() {
            Some(below) => below.hidden.clone(),
            None => std::mem::take(&mut input),
        };
        caches.push(lstm::forward(layer, layer_input, &shape));
    }
    output_and_backward(w, captions, &shape, caches, None, embeddings_mask)
}

/// The output layer, the loss and the backward pass of the LSTM decoder after its forward pass
/// (`caches`, packed as `shape`): the counted targets' logits are computed from the top layer's
/// states, or given (`logits`, counted × vocab in [`counted_positions`] order, biases added).
fn output_and_backward(
    w: &DecoderWeights,
    captions: &CaptionIds,
    shape: &SequenceShape,
    caches: Vec<LayerCache>,
    logits: Option<Vec<f32>>,
    embeddings_mask: Option<&[f32]>,
) -> DecoderPass {
    let &CaptionIds { ref ids, steps, pad, .. } = captions;
    let (embed_size, hidden_size, vocab_size) = (w.embed_size, w.hidden_size, w.vocab_size);
    let batch = shape.order.len();
    let packed_rows = shape.rows();
    let top = &caches.last().expect("the LSTM has at least one layer").hidden;

    // The output layer and the loss, for the rows whose target is not PAD (in batch row order:
    // `kept[k]` is the target's row in `ids`, `packed[k]` the LSTM's row for it).
    let kept = counted_positions(ids, pad);
    let packed: Vec<usize> =
        kept.iter().map(|&r| shape.row(r / batch, r % batch).expect("a counted target's step is packed")).collect();
    let counted = kept.len();
    let selected: Cow<[f32]> = if counted == packed_rows && packed.iter().enumerate().all(|(k, &p)| k == p) {
        Cow::Borrowed(top)
    } else {
        Cow::Owned(packed.iter().flat_map(|&p| &top[p * hidden_size..][..hidden_size]).copied().collect())
    };
    let linear = View::rows(w.linear_weight, vocab_size, hidden_size);
    let (mut logits, bias) = match logits {
        Some(logits) => (logits, Cow::Owned(vec![0.0; vocab_size])),
        None => {
            let mut logits = vec![0.0; counted * vocab_size];
            matmul(&mut logits, false, View::rows(&selected, counted, hidden_size), linear.t());
            (logits, Cow::Borrowed(w.linear_bias))
        }
    };
    let loss = softmax_cross_entropy_in_place(&mut logits, &kept, captions, &bias);
    let d_logits = logits;

    let (d_linear_weight, d_linear_bias) = linear_gradients(&d_logits, &selected, counted, (vocab_size, hidden_size));
    let mut d_selected = vec![0.0; counted * hidden_size];
    matmul(&mut d_selected, false, View::rows(&d_logits, counted, vocab_size), linear);
    drop(d_logits);
    let mut d_output = if matches!(selected, Cow::Borrowed(_)) {
        d_selected
    } else {
        let mut d_output = vec![0.0; packed_rows * hidden_size];
        for (&p, d) in packed.iter().zip(d_selected.chunks_exact(hidden_size)) {
            d_output[p * hidden_size..][..hidden_size].copy_from_slice(d);
        }
        d_output
    };

    // The LSTM, top layer first; each layer's input gradient is the output gradient of the one below.
    let mut layer_gradients = Vec::with_capacity(w.layers.len());
    for (layer, cache) in w.layers.iter().zip(&caches).rev() {
        let gradients = lstm::backward(layer, cache, &d_output, shape);
        d_output = gradients.input;
        layer_gradients.push([gradients.w_ih, gradients.w_hh, gradients.bias]);
    }
    layer_gradients.reverse();
    let d_input = &d_output; // the gradient of the first layer's input

    // The features' gradient (zero for a caption with no counted target), and the embeddings'
    // (the PAD row too: the original's Embedding has no padding_idx), in batch row order.
    let mut d_features = vec![0.0; batch * embed_size];
    let mut d_embed = vec![0.0; vocab_size * embed_size];
    for t in 0..steps {
        for b in 0..batch {
            let Some(p) = shape.row(t, b) else { continue };
            let d = &d_input[p * embed_size..][..embed_size];
            if t == 0 {
                d_features[b * embed_size..][..embed_size].copy_from_slice(d);
                continue;
            }
            let at = (t - 1) * batch + b;
            let row = &mut d_embed[ids[at] as usize * embed_size..][..embed_size];
            match embeddings_mask {
                Some(mask) => {
                    let mask = &mask[at * embed_size..][..embed_size];
                    row.iter_mut().zip(d).zip(mask).for_each(|((g, x), m)| *g += x * m);
                }
                None => row.iter_mut().zip(d).for_each(|(g, x)| *g += x),
            }
        }
    }

    let mut gradients = vec![d_embed, d_linear_weight, d_linear_bias];
    for [d_w_ih, d_w_hh, d_bias] in layer_gradients {
        gradients.extend([d_w_ih, d_w_hh, d_bias.clone(), d_bias]);
    }
    let loss = (loss / counted.max(1) as f64) as f32;
    DecoderPass { loss, counted, gradients, d_features }
}

/// Adds `bias` to each row of `logits` (one row per kept position `kept[k]`, whose target is
/// `ids[kept[k]]`), then turns each row into the gradient of the mean loss over the rows,
/// `w · (softmax − onehot(target)) / rows` with `w` its caption's weight (1 without weights).
/// Returns the summed loss `Σ w · (logsumexp − logit[target])`.
fn softmax_cross_entropy_in_place(logits: &mut [f32], kept: &[usize], captions: &CaptionIds, bias: &[f32]) -> f64 {
    let vocab_size = bias.len();
    let scale = 1.0 / kept.len().max(1) as f32;
    let batch = captions.ids.len() / captions.steps;
    let weight = |r: usize| captions.weights.map_or(1.0, |weights| weights[r % batch]);
    let losses: Vec<f64> = logits
        .par_chunks_mut(vocab_size)
        .zip(kept.par_iter())
        .map(|(row, &r)| {
            let w = weight(r);
            f64::from(softmax_cross_entropy_row(row, bias, captions.ids[r] as usize, scale * w)) * f64::from(w)
        })
        .collect();
    // Summed in row order: the same on every run.
    losses.iter().sum()
}

/// Whether `captions` are the ones `record` drew, each followed by PAD.
fn drew(record: &ForwardRecord, captions: &CaptionIds) -> bool {
    let batch = record.captions.len();
    let drawn = |t: usize, b: usize| record.captions[b].get(t).copied().unwrap_or(captions.pad);
    record.captions.iter().map(Vec::len).max() == Some(captions.steps)
        && captions.ids.len() == captions.steps * batch
        && captions.ids.iter().enumerate().all(|(at, &id)| id == drawn(at / batch, at % batch))
}

/// The packed forward pass of `captions` (sampled with `record` kept): each layer's
/// [`LayerCache`] in the packed order of [`packed_captions`], and the counted targets' logits
/// (in [`counted_positions`] order, biases added), copied from the threads' parts.
fn recorded_forward(
    w: &DecoderWeights,
    record: &ForwardRecord,
    captions: &CaptionIds,
) -> (SequenceShape, Vec<LayerCache>, Vec<f32>) {
    let (embed_size, hidden, vocab_size) = (w.embed_size, w.hidden_size, w.vocab_size);
    let batch = captions.ids.len() / captions.steps;
    let shape = packed_captions(&captions.ids, batch, captions.steps, captions.pad, hidden);
    // Where each batch row is in each recorded step.
    let positions: Vec<Vec<Option<usize>>> = record
        .rows
        .iter()
        .map(|rows| {
            let mut at = vec![None; batch];
            for (position, &b) in rows.iter().enumerate() {
                at[b] = Some(position);
            }
            at
        })
        .collect();
    let position = |t: usize, b: usize| positions.get(t).and_then(|at| at.get(b).copied().flatten());
    let counted = counted_positions(&captions.ids, captions.pad);
    let rows = shape.rows();
    let mut caches: Vec<LayerCache> = Vec::with_capacity(w.layers.len());
    for k in 0..w.layers.len() {
        let input_size = if k == 0 { embed_size } else { hidden };
        let mut input = vec![0.0; rows * input_size];
        let (mut gates, mut cells) = (vec![0.0; rows * 4 * hidden], vec![0.0; rows * hidden]);
        let (mut cells_tanh, mut hiddens) = (vec![0.0; rows * hidden], vec![0.0; rows * hidden]);
        for t in 0..shape.steps() {
            for (row, &b) in shape.step(t).zip(&shape.order) {
                let at = position(t, b).expect("a packed step was sampled");
                let destination = &mut input[row * input_size..][..input_size];
                match caches.last() {
                    None => destination.copy_from_slice(&record.inputs[t][at * embed_size..][..embed_size]),
                    Some(below) => destination.copy_from_slice(&below.hidden[row * hidden..][..hidden]),
                }
                for part in &record.threads {
                    let (units, n) = (part.units.clone(), part.units.len());
                    let states = &part.states[t][k][at * 7 * n..][..7 * n];
                    for (gate, values) in states[..4 * n].chunks_exact(n).enumerate() {
                        gates[row * 4 * hidden + gate * hidden + units.start..][..n].copy_from_slice(values);
                    }
                    for (out, values) in
                        [&mut cells, &mut cells_tanh, &mut hiddens].into_iter().zip(states[4 * n..].chunks_exact(n))
                    {
                        out[row * hidden + units.start..][..n].copy_from_slice(values);
                    }
                }
            }
        }
        caches.push(LayerCache::new(input, gates, cells, cells_tanh, hiddens));
    }
    let mut logits = vec![0.0; counted.len() * vocab_size];
    logits.par_chunks_exact_mut(vocab_size).zip(counted.par_iter()).for_each(|(row_logits, &r)| {
        let (t, b) = (r / batch, r % batch);
        let (at, step_rows) = (position(t, b).expect("a counted target was sampled"), record.rows[t].len());
        for part in &record.threads {
            for first in part.words.clone().step_by(SCORE_BLOCK) {
                let words = SCORE_BLOCK.min(part.words.end - first);
                let start = (first - part.words.start) * step_rows + at * words;
                row_logits[first..][..words].copy_from_slice(&part.logits[t][start..][..words]);
            }
        }
    });
    (shape, caches, logits)
}
