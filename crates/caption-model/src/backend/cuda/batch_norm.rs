//! Batch norm and ReLU on CUDA after a convolution, without a backward pass: in eval mode one
//! kernel (the reference path runs nine operations, three of them over the whole activation); with
//! batch statistics two (the statistics, the running statistics' update and the normalisation's
//! scale and shift per channel, then the normalisation and ReLU), where the reference path runs
//! about twenty over float64 copies.

use candle_core::{Result, Tensor};

use super::kernels::{self, BatchNormParameters};
use super::{tensor, with_device_views, with_storage_mut, zeros};
use crate::BatchNorm2d;

/// `relu(bn(x))` in eval mode for `x` (N × C × H × W, float32 on a CUDA device).
pub(crate) fn eval_relu(x: &Tensor, bn: &BatchNorm2d) -> Result<Tensor> {
    let (_, channels, height, width) = x.dims4()?;
    if bn.weight.dim(0)? != channels {
        candle_core::bail!("batch norm of {} channels on {channels}", bn.weight.dim(0)?);
    }
    let tensors = [x, &bn.weight, &bn.bias, bn.running_mean(), bn.running_var()];
    with_device_views(&tensors, |device, views| {
        let parameters = BatchNormParameters {
            weight: &views[1],
            bias: &views[2],
            mean: &views[3],
            var: &views[4],
            eps: bn.eps as f32,
        };
        let mut out = zeros(device, x.elem_count())?;
        kernels::batch_norm_relu_eval(device, &mut out, &views[0], &parameters, height * width)?;
        tensor(out, x.dims(), device)
    })
}

/// `relu(bn(x))` with `x`'s own statistics (train mode without a backward pass), moving the
/// running statistics as [`BatchNorm2d`]'s train mode does, for `x` (N × C × H × W, float32 on a
/// CUDA device).
pub(crate) fn batch_statistics_relu(x: &Tensor, bn: &BatchNorm2d) -> Result<Tensor> {
    let (_, channels, height, width) = x.dims4()?;
    if bn.weight.dim(0)? != channels {
        candle_core::bail!("batch norm of {} channels on {channels}", bn.weight.dim(0)?);
    }
    with_device_views(&[x, &bn.weight, &bn.bias], |device, views| {
        let (mut scale, mut shift) = (zeros(device, channels)?, zeros(device, channels)?);
        with_storage_mut(bn.running_mean(), |mean| {
            with_storage_mut(bn.running_var(), |var| {
                let running = [mean.as_cuda_slice_mut::<f32>()?, var.as_cuda_slice_mut::<f32>()?];
                let affine = [&views[1], &views[2]];
                let plane = height * width;
                kernels::batch_norm_statistics(
                    device,
                    &views[0],
                    affine,
                    running,
                    &mut scale,
                    &mut shift,
                    plane,
                    bn.momentum,
                    bn.eps,
                )
            })
        })?;
        let mut out = zeros(device, x.elem_count())?;
        kernels::scale_shift_relu(device, &mut out, &views[0], &scale.as_view(), &shift.as_view(), height * width)?;
        tensor(out, x.dims(), device)
    })
}
