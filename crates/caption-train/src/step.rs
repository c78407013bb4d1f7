//! [`optimizer_step`]: one teacher-forced training step of the original's model from the
//! encoder's pooled features —
//! `fc`, ReLU and dropout, the decoder, the PAD-masked cross-entropy, backward, optional
//! gradient clipping and an Adam update. Every mode's step ends here; benchmarks time it.
//!
//! When no gradient flows into the encoder (frozen and original modes) and caption-model's backend
//! layer picks a fast path (float32 on the CPU, or on CUDA), the forward and backward pass is that
//! backend's hand-written one
//! ([`CNNtoRNN::head_gradients`](caption_model::CNNtoRNN::head_gradients)); otherwise candle's
//! autograd runs the reference. Both draw the same dropout masks and compute the same gradients (up to float
//! rounding). [`attention_step`] is the attention model's step, the same way: the CPU backend's
//! pass ([`DecoderWithAttention::loss_gradients`](caption_model::DecoderWithAttention::loss_gradients))
//! or candle's autograd.

use candle_core::{DType, IndexOp, Tensor};
use caption_model::attention::attention_loss;
use caption_model::{ATTENTION_DECODER_PREFIX, Dropout, Network};
use caption_text::Vocabulary;

use crate::TrainError;
use crate::adam::{Adam, Gradients};
use crate::model::TrainModel;
use caption_model::loss::{counted_positions, masked_cross_entropy};

/// One optimizer step on a batch: `pooled` (batch × 2048; tracking gradients into Inception v3
/// in finetune mode) and `captions` (length × batch token ids, `<SOS>` … `<EOS>`, PAD-padded).
/// Gradients are scaled down to a global norm of `clip_grad_norm` when given. Returns the loss.
///
/// # Errors
/// A candle error (shapes, device).
pub fn optimizer_step(
    model: &TrainModel,
    pooled: &Tensor,
    captions: &Tensor,
    dropout: &mut Dropout,
    optimizer: &mut Adam,
    lr: f64,
    clip_grad_norm: Option<f64>,
) -> Result<f64, TrainError> {
    let Network::ShowAndTell(network) = &model.model else {
        return Err(TrainError::Config(
            "optimizer_step trains the original's model; this is the attention model".into(),
        ));
    };
    if let Some(head) = network.head_gradients(pooled, captions, dropout, Vocabulary::PAD)? {
        let gradients = Gradients::Named(head.gradients.into_iter().collect());
        update(optimizer, &gradients, lr, clip_grad_norm)?;
        return Ok(f64::from(head.loss));
    }
    let decoder = &network.decoder;
    let features = network.encoder.features_from_pooled(pooled, Some(dropout))?;
    let inputs = captions.i(..captions.dim(0)? - 1)?;
    let hiddens = decoder.hiddens(&features, &inputs, Some(dropout))?;
    let (steps, batch, hidden) = hiddens.dims3()?;
    let hiddens = hiddens.reshape((steps * batch, hidden))?;
    // Only positions whose target is not PAD reach the output layer: PAD targets add nothing to
    // the loss or its gradient, and they are a third or more of a padded batch of real captions.
    let all_targets = captions.flatten_all()?;
    let ids: Vec<u32> = all_targets.to_vec1()?;
    let counted = counted_positions(&ids, Vocabulary::PAD);
    let (hiddens, targets) = if counted.len() == ids.len() {
        (hiddens, all_targets)
    } else {
        let kept: Vec<u32> = counted.iter().map(|&position| ids[position]).collect();
        let positions: Vec<u32> = counted.iter().map(|&position| position as u32).collect();
        let positions = Tensor::new(positions, hiddens.device())?;
        (hiddens.index_select(&positions, 0)?, Tensor::new(kept, hiddens.device())?)
    };
    let (loss, _) = masked_cross_entropy(&decoder.logits(&hiddens)?, &targets, Vocabulary::PAD)?;
    update(optimizer, &Gradients::Autograd(loss.backward()?), lr, clip_grad_norm)?;
    Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// One optimizer step of the attention model on a batch: `grid` (batch × positions × 2048;
/// tracking gradients into Inception v3 in finetune mode) and `captions` (length × batch token
/// ids, `<SOS>` … `<EOS>`, PAD-padded, as for [`optimizer_step`]): teacher forcing over each
/// caption's own length with `dropout` before the output layer, the masked cross-entropy plus
/// `alpha_c` times the doubly stochastic penalty ([`attention_loss`]), backward, and Adam by `rule`.
/// Returns the loss.
///
/// # Errors
/// A candle error (shapes, device), or a model without attention.
pub fn attention_step(
    model: &TrainModel,
    grid: &Tensor,
    captions: &Tensor,
    dropout: &mut Dropout,
    optimizer: &mut Adam,
    rule: UpdateRule,
    alpha_c: f64,
) -> Result<f64, TrainError> {
    let Network::ShowAttendTell(network) = &model.model else {
        return Err(TrainError::Config("attention_step trains the attention model; this is the original's".into()));
    };
    let (by_caption, lengths) = attention_captions(captions)?;
    if let Some(pass) = network.decoder.loss_gradients(grid, &by_caption, &lengths, dropout, alpha_c)? {
        let named =
            pass.gradients.into_iter().map(|(name, gradient)| (format!("{ATTENTION_DECODER_PREFIX}{name}"), gradient));
        update(optimizer, &Gradients::Named(named.collect()), rule.lr, rule.clip_grad_norm)?;
        return Ok(f64::from(pass.loss));
    }
    let output = network.decoder.forward(grid, &by_caption, &lengths, Some(dropout))?;
    let loss = attention_loss(&output, &by_caption, Vocabulary::PAD, alpha_c)?;
    update(optimizer, &Gradients::Autograd(loss.backward()?), rule.lr, rule.clip_grad_norm)?;
    Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// How a step updates the weights: the learning rate, and the global gradient norm gradients
/// are scaled down to when they exceed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateRule {
    /// The learning rate.
    pub lr: f64,
    /// The largest global gradient norm, when clipping.
    pub clip_grad_norm: Option<f64>,
}

/// `captions` (length × batch, PAD-padded) as the attention decoder takes them: batch × length,
/// with each caption's length in tokens (its non-PAD ones).
pub(crate) fn attention_captions(captions: &Tensor) -> Result<(Tensor, Vec<usize>), TrainError> {
    let by_caption = captions.t()?.contiguous()?;
    let rows: Vec<Vec<u32>> = by_caption.to_vec2()?;
    let lengths = rows.iter().map(|row| row.iter().filter(|&&id| id != Vocabulary::PAD).count()).collect();
    Ok((by_caption, lengths))
}

/// The Adam update, the gradients first scaled down to a global norm of `clip_grad_norm` when
/// they exceed it.
fn update(optimizer: &mut Adam, gradients: &Gradients, lr: f64, clip_grad_norm: Option<f64>) -> Result<(), TrainError> {
    let scale = match clip_grad_norm {
        Some(max) => {
            let norm = optimizer.grad_norm(gradients)?;
            if norm > max { max / (norm + 1e-6) } else { 1.0 }
        }
        None => 1.0,
    };
    optimizer.step(gradients, lr, scale)?;
    Ok(())
}
