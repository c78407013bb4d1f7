//! The training loss: cross-entropy over teacher-forced outputs with `<PAD>` targets ignored and
//! the mean taken over the other tokens, as `nn.CrossEntropyLoss(ignore_index=PAD)`.

use candle_core::{D, DType, Result, Tensor};

/// Mean cross-entropy of `logits` (… × vocab) against `targets` (same leading shape, u32),
/// skipping targets equal to `pad`. Returns the loss and the number of counted tokens.
///
/// # Errors
/// A candle error (shapes that do not match).
pub fn masked_cross_entropy(logits: &Tensor, targets: &Tensor, pad: u32) -> Result<(Tensor, usize)> {
    let vocab = logits.dim(D::Minus1)?;
    let logits = logits.reshape(((), vocab))?;
    let targets = targets.flatten_all()?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let mask = targets.ne(pad)?.to_dtype(DType::F32)?;
    let count = mask.sum_all()?.to_scalar::<f32>()? as usize;
    let loss = ((picked * &mask)?.sum_all()?.neg()? / count.max(1) as f64)?;
    Ok((loss, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pad_targets_do_not_count() {
        let logits = Tensor::new(&[[2.0f32, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[0u32, 1, 2], &Device::Cpu).unwrap();
        let (loss, count) = masked_cross_entropy(&logits, &targets, 2).unwrap();
        assert_eq!(count, 2);
        let expected = {
            let a = 2.0f64 - (2.0f64.exp() + 2.0).ln();
            let b = 1.0f64 - (1.0f64.exp() + 2.0).ln();
            -(a + b) / 2.0
        };
        assert!((f64::from(loss.to_scalar::<f32>().unwrap()) - expected).abs() < 1e-6);
    }
}
