//! [`optimizer_step`]: one teacher-forced training step from the encoder's pooled features —
//! `fc`, ReLU and dropout, the decoder, the PAD-masked cross-entropy, backward, optional
//! gradient clipping and an Adam update. Every mode's step ends here; benchmarks time it.

use candle_core::{DType, IndexOp, Tensor};
use caption_model::Dropout;
use caption_text::Vocabulary;

use crate::TrainError;
use crate::adam::Adam;
use crate::loss::masked_cross_entropy;
use crate::model::TrainModel;

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
    let features = model.model.encoder.features_from_pooled(pooled, Some(dropout))?;
    let inputs = captions.i(..captions.dim(0)? - 1)?;
    let logits = model.model.decoder.forward(&features, &inputs, Some(dropout))?;
    let (loss, _) = masked_cross_entropy(&logits, captions, Vocabulary::PAD)?;
    let grads = loss.backward()?;
    let scale = match clip_grad_norm {
        Some(max) => {
            let norm = optimizer.grad_norm(&grads)?;
            if norm > max { max / (norm + 1e-6) } else { 1.0 }
        }
        None => 1.0,
    };
    optimizer.step(&grads, lr, scale)?;
    Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}
