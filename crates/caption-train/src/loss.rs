//! The training loss: cross-entropy over teacher-forced outputs with `<PAD>` targets ignored and
//! the mean taken over the other tokens, as `nn.CrossEntropyLoss(ignore_index=PAD)`.
//!
//! On the CPU it is one fused operation with its own backward (a pass over the logits each way);
//! elsewhere it is composed of candle's operations.

use candle_core::{CpuStorage, CustomOp2, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Mean cross-entropy of `logits` (… × vocab) against `targets` (same leading shape, u32),
/// skipping targets equal to `pad`. Returns the loss and the number of counted tokens.
///
/// # Errors
/// A candle error (shapes that do not match, a target id outside the vocabulary on the CPU).
pub fn masked_cross_entropy(logits: &Tensor, targets: &Tensor, pad: u32) -> Result<(Tensor, usize)> {
    let vocab = logits.dim(D::Minus1)?;
    let logits = logits.reshape(((), vocab))?;
    let targets = targets.flatten_all()?;
    if logits.device().is_cpu() && logits.dtype() == DType::F32 && targets.dtype() == DType::U32 {
        let count = targets.to_vec1::<u32>()?.iter().filter(|&&t| t != pad).count();
        let loss = logits.contiguous()?.apply_op2(&targets.contiguous()?, MaskedCrossEntropy { pad, count })?;
        return Ok((loss, count));
    }
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let mask = targets.ne(pad)?.to_dtype(logits.dtype())?;
    let count = mask.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()? as usize;
    let loss = ((picked * &mask)?.sum_all()?.neg()? / count.max(1) as f64)?;
    Ok((loss, count))
}

/// The fused loss on the CPU: `count` is the number of targets that are not `pad`.
struct MaskedCrossEntropy {
    pad: u32,
    count: usize,
}

/// Its gradient with respect to the logits, times `scale` (the output gradient over `count`):
/// `softmax(row) − onehot(target)` for counted rows, zero for PAD rows.
struct MaskedCrossEntropyGrad {
    pad: u32,
    scale: f32,
}

/// The logits (rows × vocab, contiguous f32), the targets (u32) and the vocabulary size.
fn operands<'a>(
    logits: &'a CpuStorage,
    logits_layout: &Layout,
    targets: &'a CpuStorage,
    targets_layout: &Layout,
) -> Result<(&'a [f32], &'a [u32], usize)> {
    let (rows, vocab) = logits_layout.shape().dims2()?;
    let (Some((lo, hi)), Some((tlo, thi))) = (logits_layout.contiguous_offsets(), targets_layout.contiguous_offsets())
    else {
        candle_core::bail!("masked cross-entropy needs contiguous logits and targets")
    };
    let logits = &logits.as_slice::<f32>()?[lo..hi];
    let targets = &targets.as_slice::<u32>()?[tlo..thi];
    if targets.len() != rows {
        candle_core::bail!("masked cross-entropy: {} targets for {rows} rows of logits", targets.len());
    }
    if let Some(&bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("masked cross-entropy: target id {bad} outside a vocabulary of {vocab}");
    }
    Ok((logits, targets, vocab))
}

/// A row's maximum and `Σ exp(x − max)`.
fn max_and_exp_sum(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max, row.iter().map(|&x| (x - max).exp()).sum())
}

impl CustomOp2 for MaskedCrossEntropy {
    fn name(&self) -> &'static str {
        "masked-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (logits, targets, vocab) = operands(s1, l1, s2, l2)?;
        // Per-row losses in parallel, summed in row order: the same result on every run.
        let losses: Vec<f64> = logits
            .par_chunks(vocab)
            .zip(targets.par_iter())
            .map(|(row, &target)| {
                if target == self.pad {
                    return 0.0;
                }
                let (max, sum) = max_and_exp_sum(row);
                f64::from(max + sum.ln() - row[target as usize])
            })
            .collect();
        let mean = losses.iter().sum::<f64>() / self.count.max(1) as f64;
        Ok((CpuStorage::F32(vec![mean as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = grad.to_dtype(DType::F32)?.to_scalar::<f32>()? / self.count.max(1) as f32;
        let grad = logits.apply_op2_no_bwd(targets, &MaskedCrossEntropyGrad { pad: self.pad, scale })?;
        Ok((Some(grad), None))
    }
}

impl CustomOp2 for MaskedCrossEntropyGrad {
    fn name(&self) -> &'static str {
        "masked-cross-entropy-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (logits, targets, vocab) = operands(s1, l1, s2, l2)?;
        let mut grad = vec![0f32; logits.len()];
        grad.par_chunks_mut(vocab).zip(logits.par_chunks(vocab)).zip(targets.par_iter()).for_each(
            |((out, row), &target)| {
                if target == self.pad {
                    return;
                }
                let (max, sum) = max_and_exp_sum(row);
                let factor = self.scale / sum;
                for (o, &x) in out.iter_mut().zip(row) {
                    *o = (x - max).exp() * factor;
                }
                out[target as usize] -= self.scale;
            },
        );
        Ok((CpuStorage::F32(grad), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

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

    /// The fused CPU loss and its gradient equal candle's composed operations (run in f64, which
    /// takes the composed path).
    #[test]
    fn fused_loss_and_gradient_equal_the_composed_ones() {
        let device = Device::Cpu;
        let logits = (Tensor::randn(0f32, 3.0, (4, 6, 37), &device).unwrap()).contiguous().unwrap();
        let ids: Vec<u32> = (0..24).map(|i| if i % 5 == 3 { 0 } else { (i * 7 % 36) as u32 + 1 }).collect();
        let targets = Tensor::from_vec(ids, (4, 6), &device).unwrap();
        let fused_var = Var::from_tensor(&logits).unwrap();
        let composed_var = Var::from_tensor(&logits.to_dtype(DType::F64).unwrap()).unwrap();
        let (fused, fused_count) = masked_cross_entropy(fused_var.as_tensor(), &targets, 0).unwrap();
        let (composed, composed_count) = masked_cross_entropy(composed_var.as_tensor(), &targets, 0).unwrap();
        assert_eq!((fused_count, composed_count), (19, 19));
        let (fused_value, composed_value) =
            (f64::from(fused.to_scalar::<f32>().unwrap()), composed.to_scalar::<f64>().unwrap());
        assert!(
            (fused_value - composed_value).abs() < 1e-6 * composed_value.abs(),
            "{fused_value} vs {composed_value}"
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
        let error = masked_cross_entropy(&logits, &targets, 0).unwrap_err().to_string();
        assert!(error.contains("target id 9 outside a vocabulary of 5"), "{error}");
    }
}
