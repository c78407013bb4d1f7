//! [`BatchNorm2d`]: PyTorch's `nn.BatchNorm2d`, numerically as PyTorch computes it.
//!
//! In train mode PyTorch collects the batch mean and variance with double-precision accumulation
//! (on CPU), normalises with the biased variance and moves the running statistics by `momentum`
//! towards the batch mean and the *unbiased* variance. candle-nn's BatchNorm sums in f32, which
//! over a 2×149×149 feature map and a hundred layers drifts by 1e-4; this module gathers the
//! statistics in f64. Eval mode is PyTorch's fused `x·α + β` with `α = γ/√(var+ε)`,
//! `β = b − mean·α`.

use candle_core::{D, DType, ModuleT, Result, Tensor, Var};
use candle_nn::VarBuilder;

/// Batch normalisation over the channels of an N×C×H×W tensor.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl BatchNorm2d {
    /// Loads `weight`, `bias`, `running_mean` and `running_var` (each of `num_features`).
    pub fn new(vb: VarBuilder, num_features: usize, eps: f64, momentum: f64) -> Result<Self> {
        let running_mean = vb.get(num_features, "running_mean")?;
        let running_var = vb.get(num_features, "running_var")?;
        Ok(Self {
            weight: vb.get(num_features, "weight")?,
            bias: vb.get(num_features, "bias")?,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps,
            momentum,
        })
    }

    /// The running mean.
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running variance.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// Eval mode as a per-channel affine map `x·scale + shift`: `scale = γ/√(var+ε)`,
    /// `shift = b − mean·scale`, in `dtype`.
    pub(crate) fn eval_scale_shift(&self, dtype: DType) -> Result<(Tensor, Tensor)> {
        let std = (self.running_var.as_tensor() + self.eps)?.sqrt()?;
        let scale = self.weight.div(&std)?;
        let shift = (&self.bias - self.running_mean.as_tensor().mul(&scale)?)?;
        Ok((scale.to_dtype(dtype)?, shift.to_dtype(dtype)?))
    }

    /// `x·scale + shift` with per-channel `scale` and `shift`.
    fn affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        let shape = (1, scale.dim(0)?, 1, 1);
        x.broadcast_mul(&scale.reshape(shape)?)?.broadcast_add(&shift.reshape(shape)?)
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dtype = x.dtype();
        if !train {
            let (scale, shift) = self.eval_scale_shift(dtype)?;
            return Self::affine(x, &scale, &shift);
        }
        let (n, c, h, w) = x.dims4()?;
        let count = (n * h * w) as f64;
        // Per-channel statistics, accumulated in f64 as PyTorch does.
        let flat = x.to_dtype(DType::F64)?.transpose(0, 1)?.reshape((c, n * h * w))?;
        let mean = flat.mean_keepdim(D::Minus1)?;
        let var = flat.broadcast_sub(&mean)?.sqr()?.mean_keepdim(D::Minus1)?.flatten_all()?;
        let mean = mean.flatten_all()?;
        let unbiased = if count > 1.0 { (&var * (count / (count - 1.0)))? } else { var.clone() };
        let blend = |running: &Var, batch: &Tensor| -> Result<()> {
            let running64 = running.as_tensor().to_dtype(DType::F64)?;
            let updated = ((running64 * (1.0 - self.momentum))? + (batch.detach() * self.momentum)?)?;
            running.set(&updated.to_dtype(running.dtype())?)
        };
        blend(&self.running_mean, &mean)?;
        blend(&self.running_var, &unbiased)?;
        let invstd = (var + self.eps)?.sqrt()?.recip()?.to_dtype(dtype)?;
        let scale = invstd.mul(&self.weight)?;
        let shift = (&self.bias - mean.to_dtype(dtype)?.mul(&scale)?)?;
        Self::affine(x, &scale, &shift)
    }
}
