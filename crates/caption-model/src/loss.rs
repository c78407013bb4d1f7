//! The training loss: cross-entropy over teacher-forced outputs with `<PAD>` targets ignored and
//! the mean taken over the other tokens, as `nn.CrossEntropyLoss(ignore_index=PAD)`; and the one
//! rule for which positions count ([`counted_positions`]), which the CPU training pass and the
//! trainer's autograd step both follow.
//!
//! The reference is composed of candle's operations; on the CPU backend it is one fused operation
//! with its own backward (`backend::cpu::cross_entropy`), which candle's autograd still sees.

use candle_core::{D, DType, Result, Tensor};

use crate::backend;

pub use crate::backend::packing::counted_positions;

/// What a teacher-forced loss scores: the captions, the id left out, and how much each caption
/// counts.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    /// Token ids, length × batch (`<SOS>` … `<EOS>`), `pad`-padded.
    pub captions: &'a Tensor,
    /// The id whose targets add nothing to the loss.
    pub pad: u32,
    /// One weight per caption (batch order) multiplying each of its counted tokens' loss, the
    /// mean still taken over the counted tokens: `−Σ w_b · log p(token) / counted`, which is
    /// self-critical training's `RewardCriterion` with `w_b` the caption's advantage. `None`:
    /// every caption weighs 1 (cross-entropy).
    pub weights: Option<&'a [f32]>,
}

impl<'a> Targets<'a> {
    /// `captions` with every caption weighing 1.
    pub fn new(captions: &'a Tensor, pad: u32) -> Self {
        Self { captions, pad, weights: None }
    }

    /// The same captions weighed by `weights`, one per caption.
    pub fn weighted(self, weights: &'a [f32]) -> Self {
        Self { weights: Some(weights), ..self }
    }

    /// The weights, checked to be one per caption of a batch of `batch`.
    ///
    /// # Errors
    /// Another number of weights, or one that is not finite.
    pub fn checked_weights(&self, batch: usize) -> Result<Option<&'a [f32]>> {
        crate::backend::packing::caption_weights(self.weights, batch)
    }
}

/// Mean cross-entropy of `logits` (… × vocab) against `targets` (same leading shape, u32),
/// skipping targets equal to `pad`, each target's loss multiplied by its weight in `weights`
/// (one per target, in `targets`' order; `None`: 1). Returns the loss and the number of counted
/// tokens (the mean's denominator, weights or not).
///
/// # Errors
/// A candle error (shapes that do not match, a target id outside the vocabulary on the CPU), or
/// not one weight per target.
pub fn masked_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    pad: u32,
    weights: Option<&[f32]>,
) -> Result<(Tensor, usize)> {
    let vocab = logits.dim(D::Minus1)?;
    let logits = logits.reshape(((), vocab))?;
    let targets = targets.flatten_all()?.to_dtype(DType::U32)?;
    if let Some(weights) = weights
        && weights.len() != targets.elem_count()
    {
        candle_core::bail!("{} weights for {} targets", weights.len(), targets.elem_count());
    }
    // The fused operation has its own backward pass: autograd sees it either way.
    if let Some(fused) = backend::masked_cross_entropy(&logits, &targets, pad, weights)? {
        return Ok(fused);
    }
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let mask = targets.ne(pad)?.to_dtype(logits.dtype())?;
    let count = mask.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()? as usize;
    let weighted = match weights {
        Some(weights) => (mask * Tensor::new(weights, logits.device())?.to_dtype(logits.dtype())?)?,
        None => mask,
    };
    let loss = ((picked * &weighted)?.sum_all()?.neg()? / count.max(1) as f64)?;
    Ok((loss, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn pad_targets_do_not_count() {
        let logits = Tensor::new(&[[2.0f32, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[0u32, 1, 2], &Device::Cpu).unwrap();
        let (loss, count) = masked_cross_entropy(&logits, &targets, 2, None).unwrap();
        assert_eq!(count, 2);
        let expected = {
            let a = 2.0f64 - (2.0f64.exp() + 2.0).ln();
            let b = 1.0f64 - (1.0f64.exp() + 2.0).ln();
            -(a + b) / 2.0
        };
        assert!((f64::from(loss.to_scalar::<f32>().unwrap()) - expected).abs() < 1e-6);
    }

    /// The fused CPU loss and its gradient equal the reference path's composed operations (forced
    /// in float32, and in float64, which always takes it).
    #[test]
    fn fused_loss_and_gradient_equal_the_composed_ones() {
        let device = Device::Cpu;
        let logits = (Tensor::randn(0f32, 3.0, (4, 6, 37), &device).unwrap()).contiguous().unwrap();
        let ids: Vec<u32> = (0..24).map(|i| if i % 5 == 3 { 0 } else { (i * 7 % 36) as u32 + 1 }).collect();
        let targets = Tensor::from_vec(ids, (4, 6), &device).unwrap();
        let fused_var = Var::from_tensor(&logits).unwrap();
        let composed_var = Var::from_tensor(&logits.to_dtype(DType::F64).unwrap()).unwrap();
        let (fused, fused_count) = masked_cross_entropy(fused_var.as_tensor(), &targets, 0, None).unwrap();
        let (composed, composed_count) = masked_cross_entropy(composed_var.as_tensor(), &targets, 0, None).unwrap();
        assert_eq!((fused_count, composed_count), (19, 19));
        let (forced, _) =
            crate::backend::with_reference_only(|| masked_cross_entropy(fused_var.as_tensor(), &targets, 0, None))
                .unwrap();
        let forced_value = f64::from(forced.to_scalar::<f32>().unwrap());
        let (fused_value, composed_value) =
            (f64::from(fused.to_scalar::<f32>().unwrap()), composed.to_scalar::<f64>().unwrap());
        assert!(
            (fused_value - composed_value).abs() < 1e-6 * composed_value.abs(),
            "{fused_value} vs {composed_value}"
        );
        assert!(
            (forced_value - composed_value).abs() < 1e-6 * composed_value.abs(),
            "{forced_value} vs {composed_value}"
        );

        let fused_grad = (fused * 3.0).unwrap().backward().unwrap().remove(fused_var.as_tensor()).unwrap();
        let composed_grad = (composed * 3.0).unwrap().backward().unwrap().remove(composed_var.as_tensor()).unwrap();
        let fused_grad: Vec<f32> = fused_grad.flatten_all().unwrap().to_vec1().unwrap();
        let composed_grad: Vec<f64> = composed_grad.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (&f, &c)) in fused_grad.iter().zip(&composed_grad).enumerate() {
            assert!((f64::from(f) - c).abs() < 1e-6, "gradient {i}: {f} vs {c}");
        }
        // PAD rows get no gradient; counted rows sum to zero (softmax minus one-hot).
        assert!(fused_grad[3 * 37..4 * 37].iter().all(|&g| g == 0.0));
        assert!(fused_grad[..37].iter().map(|&g| f64::from(g)).sum::<f64>().abs() < 1e-6);
    }

    #[test]
    fn a_target_outside_the_vocabulary_is_an_error() {
        let logits = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        let targets = Tensor::new(&[1u32, 9], &Device::Cpu).unwrap();
        let error = masked_cross_entropy(&logits, &targets, 0, None).unwrap_err().to_string();
        assert!(error.contains("target id 9 outside a vocabulary of 5"), "{error}");
        // Forced, the reference path runs instead: candle's gather says it its own way.
        let error =
            crate::backend::with_reference_only(|| masked_cross_entropy(&logits, &targets, 0, None)).unwrap_err();
        assert!(!error.to_string().contains("target id 9 outside"), "{error}");
    }
}
