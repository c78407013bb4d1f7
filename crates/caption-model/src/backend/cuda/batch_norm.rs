//! Eval-mode batch norm and ReLU on CUDA in one kernel over a convolution's output (the reference
//! path runs nine operations, three of them over the whole activation).

use candle_core::{Result, Tensor};

use super::kernels::{self, BatchNormParameters};
use super::{tensor, with_device_views, zeros};
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
