//! Adam's update on CUDA: one kernel over parameter, both moments and gradient, in place.

use candle_core::{Result, Tensor};

use super::{kernels, with_storage_mut};
use crate::backend::adam::AdamUpdate;

/// Updates `theta`, `exp_avg` and `exp_avg_sq` (contiguous float32 tensors of one size on one
/// CUDA device, each starting at its storage's first element) in place from `grad`.
pub(crate) fn apply(
    update: &AdamUpdate,
    theta: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &Tensor,
) -> Result<()> {
    super::with_device_views(&[grad], |device, views| {
        let grad = &views[0];
        with_storage_mut(theta, |theta| {
            with_storage_mut(exp_avg, |m| {
                with_storage_mut(exp_avg_sq, |v| {
                    let (theta, m) = (theta.as_cuda_slice_mut::<f32>()?, m.as_cuda_slice_mut::<f32>()?);
                    kernels::adam_update(device, [theta, m, v.as_cuda_slice_mut::<f32>()?], grad, update)
                })
            })
        })
    })
}
