//! [`optimizer_step`]: one teacher-forced training step of either network from its head input
//! (the pooled features or the grid, [`Network::head_input`](caption_model::Network::head_input)):
//! the head's forward pass, the loss, backward, optional gradient clipping and an Adam update.
//! Every mode's step ends here; benchmarks time it.
//!
//! When no gradient flows into the encoder (frozen and original modes) and caption-model's backend
//! layer picks a fast path (float32 on the CPU, or on CUDA), the forward and backward pass is that
//! backend's hand-written one ([`Network::head_gradients`](caption_model::Network::head_gradients));
//! otherwise candle's autograd runs the reference
//! ([`Network::head_loss`](caption_model::Network::head_loss)). Both draw the same dropout masks
//! and compute the same gradients (up to float rounding).

use candle_core::{DType, Tensor};
use caption_model::{Dropout, HeadGradients, Targets};

use crate::TrainError;
use crate::adam::{Adam, Gradients};
use crate::model::TrainModel;

/// One optimizer step on a batch: `head_input` (the pooled features, batch × 2048, or the grid,
/// batch × positions × 2048; tracking gradients into Inception v3 in finetune mode) and
/// `targets` (length × batch token ids, `<SOS>` … `<EOS>`, PAD-padded; with per-caption weights,
/// each caption's tokens weighed, as self-critical training's loss). The attention model's
/// loss adds the doubly stochastic term weighted by the model's `alpha_c`. Gradients are scaled
/// down to a global norm of `clip_grad_norm` when given. Returns the loss.
///
/// # Errors
/// A candle error (shapes, device).
pub fn optimizer_step(
    model: &TrainModel,
    head_input: &Tensor,
    targets: Targets,
    dropout: &mut Dropout,
    optimizer: &mut Adam,
    lr: f64,
    clip_grad_norm: Option<f64>,
) -> Result<f64, TrainError> {
    let (network, alpha_c) = (&model.model, model.alpha_c);
    if let Some(head) = network.head_gradients(head_input, targets, dropout, alpha_c)? {
        return gradients_step(head, optimizer, lr, clip_grad_norm);
    }
    let loss = network.head_loss(head_input, targets, dropout, alpha_c)?;
    update(optimizer, &Gradients::Autograd(loss.backward()?), lr, clip_grad_norm)?;
    Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// The optimizer step on gradients a backend computed (clipped and applied as
/// [`optimizer_step`] does). Returns their loss.
///
/// # Errors
/// A candle error.
pub fn gradients_step(
    head: HeadGradients,
    optimizer: &mut Adam,
    lr: f64,
    clip_grad_norm: Option<f64>,
) -> Result<f64, TrainError> {
    let gradients = Gradients::Named(head.gradients.into_iter().collect());
    update(optimizer, &gradients, lr, clip_grad_norm)?;
    Ok(f64::from(head.loss))
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
