//! [`optimizer_step`]: one teacher-forced training step from the encoder's pooled features —
//! `fc`, ReLU and dropout, the decoder, the PAD-masked cross-entropy, backward, optional
//! gradient clipping and an Adam update. Every mode's step ends here; benchmarks time it.
//!
//! When no gradient flows into the encoder (frozen and original modes) and caption-model's backend
//! layer picks the CPU path, the forward and backward pass is its hand-written one
//! ([`CNNtoRNN::head_gradients`](caption_model::CNNtoRNN::head_gradients)); otherwise candle's
//! autograd runs the reference. Both draw the same dropout masks and compute the same gradients (up to float
//! rounding).

use candle_core::{DType, IndexOp, Tensor};
use caption_model::Dropout;
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
    if let Some(head) = model.model.head_gradients(pooled, captions, dropout, Vocabulary::PAD)? {
        let gradients = Gradients::Named(head.gradients.into_iter().collect());
        update(optimizer, &gradients, lr, clip_grad_norm)?;
        return Ok(f64::from(head.loss));
    }
    let decoder = &model.model.decoder;
    let features = model.model.encoder.features_from_pooled(pooled, Some(dropout))?;
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
