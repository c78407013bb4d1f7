//! Batch norm and ReLU on CUDA after a convolution: in eval mode one kernel (the reference path
//! runs nine operations, three of them over the whole activation); with batch statistics two (the
//! statistics, the running statistics' update and the normalisation's scale and shift per channel,
//! then the normalisation and ReLU), where the reference path runs about twenty over float64
//! copies; in train mode the same two as a candle operation whose backward pass is PyTorch's
//! formula in two kernels ([`train_relu`]).

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::CudaStorage;
use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::kernels::{self, BatchNormBackward, BatchNormParameters};
use super::{tensor, view, with_device_views, with_storage_mut, zeros};
use crate::backend::views::BatchNormTensors;

/// `relu(bn(x))` in eval mode for `x` (N × C × H × W, float32 on a CUDA device).
pub(crate) fn eval_relu(x: &Tensor, bn: &BatchNormTensors) -> Result<Tensor> {
    let (_, channels, height, width) = x.dims4()?;
    if bn.weight.dim(0)? != channels {
        candle_core::bail!("batch norm of {} channels on {channels}", bn.weight.dim(0)?);
    }
    let tensors = [x, bn.weight, bn.bias, bn.running_mean, bn.running_var];
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
/// running statistics as `BatchNorm2d`'s train mode does, for `x` (N × C × H × W, float32 on a
/// CUDA device).
pub(crate) fn batch_statistics_relu(x: &Tensor, bn: &BatchNormTensors) -> Result<Tensor> {
    let (_, channels, height, width) = x.dims4()?;
    if bn.weight.dim(0)? != channels {
        candle_core::bail!("batch norm of {} channels on {channels}", bn.weight.dim(0)?);
    }
    with_device_views(&[x, bn.weight, bn.bias], |device, views| {
        let (mut scale, mut shift) = (zeros(device, channels)?, zeros(device, channels)?);
        with_storage_mut(bn.running_mean, |mean| {
            with_storage_mut(bn.running_var, |var| {
                let running = [mean.as_cuda_slice_mut::<f32>()?, var.as_cuda_slice_mut::<f32>()?];
                let affine = [&views[1], &views[2]];
                let plane = height * width;
                kernels::batch_norm_statistics(
                    device,
                    &views[0],
                    affine,
                    running,
                    [&mut scale, &mut shift],
                    None,
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

/// `relu(bn(x))` in train mode with a backward pass (fine-tuning): the batch statistics' forward
/// pass of [`batch_statistics_relu`] as a candle operation whose gradients for `x`, γ and β are
/// PyTorch's (through the ReLU, then batch norm's backward formula).
pub(crate) fn train_relu(x: &Tensor, bn: &BatchNormTensors) -> Result<Tensor> {
    let op = TrainRelu {
        running: [bn.running_mean.clone(), bn.running_var.clone()],
        momentum: bn.momentum,
        eps: bn.eps,
        saved: Mutex::new(None),
    };
    x.contiguous()?.apply_op3(bn.weight, bn.bias, op)
}

/// The candle operation of [`train_relu`]: arguments `x`, γ, β.
struct TrainRelu {
    /// The running mean and variance, moved in place by the forward pass.
    running: [Tensor; 2],
    momentum: f64,
    eps: f64,
    /// The forward pass's per-channel mean and 1/√(var + ε), for the backward pass.
    saved: Mutex<Option<[CudaSlice<f32>; 2]>>,
}

/// N × C × H × W's channels and plane (H·W).
fn channels_and_plane(layout: &Layout) -> Result<(usize, usize)> {
    match *layout.dims() {
        [_, c, h, w] => Ok((c, h * w)),
        _ => candle_core::bail!("batch norm: a tensor of shape {:?}, N × C × H × W expected", layout.dims()),
    }
}

impl CustomOp3 for TrainRelu {
    fn name(&self) -> &'static str {
        "cuda-batch-norm-relu-train"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("the CUDA batch norm was given tensors in CPU memory")
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        x_layout: &Layout,
        weight: &CudaStorage,
        weight_layout: &Layout,
        bias: &CudaStorage,
        bias_layout: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let device = x.device();
        let (channels, plane) = channels_and_plane(x_layout)?;
        let (x, weight, bias) = (view(x, x_layout)?, view(weight, weight_layout)?, view(bias, bias_layout)?);
        let (mut scale, mut shift) = (zeros(device, channels)?, zeros(device, channels)?);
        let (mut mean, mut invstd) = (zeros(device, channels)?, zeros(device, channels)?);
        let [running_mean, running_var] = &self.running;
        with_storage_mut(running_mean, |running_mean| {
            with_storage_mut(running_var, |running_var| {
                let running = [running_mean.as_cuda_slice_mut::<f32>()?, running_var.as_cuda_slice_mut::<f32>()?];
                kernels::batch_norm_statistics(
                    device,
                    &x,
                    [&weight, &bias],
                    running,
                    [&mut scale, &mut shift],
                    Some([&mut mean, &mut invstd]),
                    plane,
                    self.momentum,
                    self.eps,
                )
            })
        })?;
        let mut out = zeros(device, x.len())?;
        kernels::scale_shift_relu(device, &mut out, &x, &scale.as_view(), &shift.as_view(), plane)?;
        *self.saved.lock().map_err(|_| candle_core::Error::Msg("batch norm: a poisoned lock".into()))? =
            Some([mean, invstd]);
        Ok((CudaStorage::wrap_cuda_slice(out, device.clone()), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self.saved.lock().map_err(|_| candle_core::Error::Msg("batch norm: a poisoned lock".into()))?;
        let Some([mean, invstd]) = saved.as_ref() else {
            candle_core::bail!("batch norm's backward pass ran before its forward pass")
        };
        let (_, channels, height, width) = x.dims4()?;
        let plane = height * width;
        with_device_views(&[grad, y, x, weight], |device, views| {
            let (mean, invstd) = (mean.as_view(), invstd.as_view());
            let pass = BatchNormBackward { grad: &views[0], y: &views[1], x: &views[2], mean: &mean, invstd: &invstd };
            let (mut sum_g, mut sum_gx) = (zeros(device, channels)?, zeros(device, channels)?);
            kernels::batch_norm_relu_backward_sums(device, &pass, &mut sum_g, &mut sum_gx, plane)?;
            let mut d_x = zeros(device, x.elem_count())?;
            let sums = [&views[3], &sum_g.as_view(), &sum_gx.as_view()];
            kernels::batch_norm_relu_backward_input(device, &mut d_x, &pass, sums, plane)?;
            let d_x = tensor(d_x, x.dims(), device)?;
            Ok((Some(d_x), Some(tensor(sum_gx, channels, device)?), Some(tensor(sum_g, channels, device)?)))
        })
    }
}
