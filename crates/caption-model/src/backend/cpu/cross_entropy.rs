//! The PAD-masked cross-entropy on the CPU as one candle operation with its own backward pass (a
//! pass over the logits each way), both rows through the training pass's kernel
//! ([`softmax_cross_entropy_row`]).

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::kernels::softmax_cross_entropy_row;
use crate::backend::packing::counted_positions;

/// [`crate::loss::masked_cross_entropy`] for float32 `logits` (rows × vocab) in CPU memory and
/// u32 `targets` (rows), each row's loss times its weight in `weights` (one per row) when given.
pub(crate) fn masked_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    pad: u32,
    weights: Option<&[f32]>,
) -> Result<(Tensor, usize)> {
    let count = counted_positions(&targets.to_vec1::<u32>()?, pad).len();
    let op = MaskedCrossEntropy { pad, count, weights: weights.map(<[f32]>::to_vec) };
    let loss = logits.contiguous()?.apply_op2(&targets.contiguous()?, op)?;
    Ok((loss, count))
}

/// The fused loss: `count` is the number of targets that are not `pad`; `weights`, one per row.
struct MaskedCrossEntropy {
    pad: u32,
    count: usize,
    weights: Option<Vec<f32>>,
}

/// Its gradient with respect to the logits, times `scale` (the output gradient over `count`) and
/// the row's weight: `softmax(row) − onehot(target)` for counted rows, zero for PAD rows.
struct MaskedCrossEntropyGrad<'a> {
    pad: u32,
    scale: f32,
    weights: Option<&'a [f32]>,
}

/// Row `row`'s weight (1 without weights).
fn weight_of(weights: Option<&[f32]>, row: usize) -> f32 {
    weights.map_or(1.0, |weights| weights[row])
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

impl CustomOp2 for MaskedCrossEntropy {
    fn name(&self) -> &'static str {
        "masked-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (logits, targets, vocab) = operands(s1, l1, s2, l2)?;
        let no_bias = vec![0.0; vocab];
        let weights = self.weights.as_deref();
        // Per-row losses in parallel, summed in row order: the same result on every run.
        let losses: Vec<f64> = logits
            .par_chunks(vocab)
            .zip(targets.par_iter())
            .enumerate()
            .map_init(Vec::new, |row_copy, (index, (row, &target))| {
                if target == self.pad {
                    return 0.0;
                }
                row_copy.clear();
                row_copy.extend_from_slice(row);
                let loss = softmax_cross_entropy_row(row_copy, &no_bias, target as usize, 1.0);
                f64::from(loss) * f64::from(weight_of(weights, index))
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
        let op = MaskedCrossEntropyGrad { pad: self.pad, scale, weights: self.weights.as_deref() };
        let grad = logits.apply_op2_no_bwd(targets, &op)?;
        Ok((Some(grad), None))
    }
}

impl CustomOp2 for MaskedCrossEntropyGrad<'_> {
    fn name(&self) -> &'static str {
        "masked-cross-entropy-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (logits, targets, vocab) = operands(s1, l1, s2, l2)?;
        let no_bias = vec![0.0; vocab];
        let mut grad = vec![0f32; logits.len()];
        grad.par_chunks_mut(vocab).zip(logits.par_chunks(vocab)).zip(targets.par_iter()).enumerate().for_each(
            |(index, ((out, row), &target))| {
                if target != self.pad {
                    out.copy_from_slice(row);
                    let scale = self.scale * weight_of(self.weights, index);
                    softmax_cross_entropy_row(out, &no_bias, target as usize, scale);
                }
            },
        );
        Ok((CpuStorage::F32(grad), l1.shape().clone()))
    }
}
