//! [`BatchNorm2d`]: PyTorch's `nn.BatchNorm2d`, numerically as PyTorch computes it.
//!
//! In train mode PyTorch collects the batch mean and variance with double-precision accumulation
//! (on CPU), normalises with the biased variance and moves the running statistics by `momentum`
//! towards the batch mean and the *unbiased* variance. candle-nn's BatchNorm sums in f32, which
//! over a 2×149×149 feature map and a hundred layers drifts by 1e-4; this module gathers the
//! statistics in f64. Eval mode is PyTorch's fused `x·α + β` with `α = γ/√(var+ε)`,
//! `β = b − mean·α`.

use candle_core::{DType, ModuleT, Result, Tensor, Var};
use candle_nn::VarBuilder;

use crate::backend::views::BatchNormTensors;

/// Batch normalisation over the channels of an N×C×H×W tensor.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    running_mean: Var,
    running_var: Var,
    pub(crate) eps: f64,
    pub(crate) momentum: f64,
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

    /// Its tensors as the backends read them.
    pub fn tensors(&self) -> BatchNormTensors<'_> {
        BatchNormTensors {
            weight: &self.weight,
            bias: &self.bias,
            running_mean: self.running_mean(),
            running_var: self.running_var(),
            eps: self.eps,
            momentum: self.momentum,
        }
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
        let (n, _, h, w) = x.dims4()?;
        // The statistics' values, accumulated in f64 as PyTorch does, outside the graph: the f64
        // copies are freed at once instead of being held for the backward pass (they were most
        // of the memory a fine-tuning step took).
        let x64 = x.detach().to_dtype(DType::F64)?;
        let mean64 = x64.mean_keepdim((0, 2, 3))?;
        let var64 = x64.broadcast_sub(&mean64)?.sqr()?.mean_keepdim((0, 2, 3))?;
        drop(x64);
        let (mean64, var64) = (mean64.flatten_all()?, var64.flatten_all()?);
        self.update_running_statistics(&mean64, &var64, n * h * w)?;
        // The same statistics in `x`'s dtype, through which the gradient flows (PyTorch's
        // batch-norm backward), their values replaced by the f64 ones.
        let with_value = |graph: Tensor, value: &Tensor| -> Result<Tensor> {
            let shape = graph.shape().clone();
            graph.broadcast_add(&(value.to_dtype(dtype)?.reshape(shape)? - graph.detach())?)
        };
        let mean = with_value(x.mean_keepdim((0, 2, 3))?, &mean64)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = with_value(centered.sqr()?.mean_keepdim((0, 2, 3))?, &var64)?;
        let scale = (var + self.eps)?.sqrt()?.recip()?.broadcast_mul(&self.weight.reshape(mean.shape())?)?;
        centered.broadcast_mul(&scale)?.broadcast_add(&self.bias.reshape(mean.shape())?)
    }
}

impl BatchNorm2d {
    /// Moves the running statistics by `momentum` towards batch statistics (float64 `mean` and
    /// biased `var` over `count` values per channel; towards the unbiased variance).
    fn update_running_statistics(&self, mean: &Tensor, var: &Tensor, count: usize) -> Result<()> {
        let count = count as f64;
        let unbiased = if count > 1.0 { (var * (count / (count - 1.0)))? } else { var.clone() };
        let blend = |running: &Var, batch: &Tensor| -> Result<()> {
            let running64 = running.as_tensor().to_dtype(DType::F64)?;
            let updated = ((running64 * (1.0 - self.momentum))? + (batch.detach() * self.momentum)?)?;
            running.set(&updated.to_dtype(running.dtype())?)
        };
        blend(&self.running_mean, mean)?;
        blend(&self.running_var, &unbiased)
    }

    /// From batch statistics (float64 `mean` and biased `var` over `count` values per channel):
    /// moves the running statistics (see [`update_running_statistics`](Self::update_running_statistics))
    /// and returns the normalisation as `x·scale + shift` in `dtype`.
    pub(crate) fn train_scale_shift(
        &self,
        mean: &Tensor,
        var: &Tensor,
        count: usize,
        dtype: DType,
    ) -> Result<(Tensor, Tensor)> {
        self.update_running_statistics(mean, var, count)?;
        let invstd = (var + self.eps)?.sqrt()?.recip()?.to_dtype(dtype)?;
        let scale = invstd.mul(&self.weight)?;
        let shift = (&self.bias - mean.to_dtype(dtype)?.mul(&scale)?)?;
        Ok((scale, shift))
    }
}
