//! [`Adam`]: Adam and AdamW with PyTorch's arithmetic and a state (moments and step) that is saved
//! with checkpoints, so a resumed run continues exactly.
//!
//! On the CPU each parameter is updated in place in three passes (first moment, second moment,
//! parameter) with no allocation; elsewhere with candle's tensor operations.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp3, Layout, Result, Tensor, Var};
use rayon::prelude::*;

use crate::config::OptimizerKind;

/// Adam's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Adam or AdamW.
    pub kind: OptimizerKind,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay (L2 in the gradient for Adam, decoupled for AdamW).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { kind: OptimizerKind::Adam, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// The gradients of one step: candle's autograd store (keyed by variable), or gradients by
/// parameter name (the hand-written CPU pass, [`caption_model::HeadGradients`]).
#[derive(Debug)]
pub enum Gradients {
    /// From `loss.backward()`.
    Autograd(GradStore),
    /// By the parameter's name in the original's state_dict.
    Named(HashMap<String, Tensor>),
}

impl Gradients {
    /// The gradient of the variable `var` named `name`, if it has one.
    fn get(&self, name: &str, var: &Var) -> Option<&Tensor> {
        match self {
            Self::Autograd(store) => store.get(var.as_tensor()),
            Self::Named(by_name) => by_name.get(name),
        }
    }
}

/// One trained parameter and its moments.
#[derive(Debug)]
struct Slot {
    name: String,
    var: Var,
    /// This parameter's learning rate relative to the step's.
    lr_factor: f64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// Adam / AdamW over named variables.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    slots: Vec<Slot>,
    step: u64,
}

impl Adam {
    /// An optimizer for `vars` (name, variable), with zero moments.
    ///
    /// # Errors
    /// A candle error when the moments cannot be allocated.
    pub fn new(vars: Vec<(String, Var)>, config: AdamConfig) -> Result<Self> {
        Self::with_groups(vec![(vars, 1.0)], config)
    }

    /// An optimizer over parameter groups, each `(vars, lr_factor)`: a group's learning rate is
    /// the step's times its factor (PyTorch's per-group `lr`, kept under one schedule).
    ///
    /// # Errors
    /// A candle error when the moments cannot be allocated.
    pub fn with_groups(groups: Vec<(Vec<(String, Var)>, f64)>, config: AdamConfig) -> Result<Self> {
        let slots = groups
            .into_iter()
            .flat_map(|(vars, lr_factor)| vars.into_iter().map(move |(name, var)| (name, var, lr_factor)))
            .map(|(name, var, lr_factor)| {
                // Two allocations: the CPU update writes each moment in place.
                let (exp_avg, exp_avg_sq) = (var.as_tensor().zeros_like()?, var.as_tensor().zeros_like()?);
                Ok(Slot { name, lr_factor, exp_avg, exp_avg_sq, var })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, slots, step: 0 })
    }

    /// Steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Global L2 norm of the gradients of the trained variables.
    ///
    /// # Errors
    /// A candle error.
    pub fn grad_norm(&self, grads: &Gradients) -> Result<f64> {
        let mut total = 0.0;
        for slot in &self.slots {
            if let Some(g) = grads.get(&slot.name, &slot.var) {
                total += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }

    /// One update with learning rate `lr`; gradients are multiplied by `grad_scale` first (for
    /// clipping).
    ///
    /// # Errors
    /// A candle error.
    pub fn step(&mut self, grads: &Gradients, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let AdamConfig { kind, beta1, beta2, eps, weight_decay } = self.config;
        let bias1 = 1.0 - beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        for slot in &mut self.slots {
            let Some(grad) = grads.get(&slot.name, &slot.var) else { continue };
            if grad.dims() != slot.var.dims() {
                candle_core::bail!(
                    "gradient of {} has shape {:?}, the parameter {:?}",
                    slot.name,
                    grad.dims(),
                    slot.var.dims()
                );
            }
            let lr = lr * slot.lr_factor;
            let theta = slot.var.as_tensor();
            if theta.device().is_cpu() && theta.dtype() == DType::F32 {
                let l2 = if kind == OptimizerKind::Adam { weight_decay } else { 0.0 };
                let grad = grad.contiguous()?;
                for (moment, beta, square) in [(&slot.exp_avg, beta1, false), (&slot.exp_avg_sq, beta2, true)] {
                    let update =
                        MomentUpdate { beta: beta as f32, grad_scale: grad_scale as f32, l2: l2 as f32, square };
                    moment.inplace_op3(&grad, theta, &update)?;
                }
                let decay = if kind == OptimizerKind::AdamW { 1.0 - lr * weight_decay } else { 1.0 };
                let update = ParameterUpdate {
                    decay: decay as f32,
                    step_size: (lr / bias1) as f32,
                    bias2_sqrt: bias2_sqrt as f32,
                    eps: eps as f32,
                };
                theta.inplace_op3(&slot.exp_avg, &slot.exp_avg_sq, &update)?;
                continue;
            }
            let mut grad = if grad_scale == 1.0 { grad.clone() } else { (grad * grad_scale)? };
            if weight_decay != 0.0 && kind == OptimizerKind::Adam {
                grad = (grad + (theta * weight_decay)?)?;
            }
            slot.exp_avg = ((&slot.exp_avg * beta1)? + (&grad * (1.0 - beta1))?)?;
            slot.exp_avg_sq = ((&slot.exp_avg_sq * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let denominator = ((slot.exp_avg_sq.sqrt()? / bias2_sqrt)? + eps)?;
            let update = ((&slot.exp_avg / denominator)? * (lr / bias1))?;
            let decayed = if weight_decay != 0.0 && kind == OptimizerKind::AdamW {
                (theta * (1.0 - lr * weight_decay))?
            } else {
                theta.clone()
            };
            slot.var.set(&(decayed - update)?)?;
        }
        Ok(())
    }

    /// The state as named tensors, `exp_avg.NAME` and `exp_avg_sq.NAME`: copies, since the CPU
    /// update changes the moments in place.
    ///
    /// # Errors
    /// A candle error (memory for the copies).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut tensors = HashMap::new();
        for slot in &self.slots {
            tensors.insert(format!("exp_avg.{}", slot.name), slot.exp_avg.copy()?);
            tensors.insert(format!("exp_avg_sq.{}", slot.name), slot.exp_avg_sq.copy()?);
        }
        Ok(tensors)
    }

    /// Restores moments and step saved by [`state_tensors`](Self::state_tensors).
    ///
    /// # Errors
    /// A message naming the first missing or misshapen moment.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> std::result::Result<(), String> {
        for slot in &mut self.slots {
            for (prefix, target) in [("exp_avg", &mut slot.exp_avg), ("exp_avg_sq", &mut slot.exp_avg_sq)] {
                let key = format!("{prefix}.{}", slot.name);
                let tensor = tensors.get(&key).ok_or_else(|| format!("optimizer state has no {key}"))?;
                if tensor.dims() != target.dims() {
                    return Err(format!(
                        "optimizer state {key} has shape {:?}, the model needs {:?}",
                        tensor.dims(),
                        target.dims()
                    ));
                }
                // A copy of its own: the CPU update writes the moments in place.
                *target = tensor.to_device(target.device()).and_then(|t| t.copy()).map_err(|e| e.to_string())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Elements per parallel task of the in-place updates.
const CHUNK: usize = 1 << 14;

/// Runs `update(destination, a, b)` over every element of a contiguous f32 destination and two
/// sources of its size, in parallel chunks.
fn update_in_place(
    destination: (&mut CpuStorage, &Layout),
    a: (&CpuStorage, &Layout),
    b: (&CpuStorage, &Layout),
    update: impl Fn(&mut f32, f32, f32) + Sync,
) -> Result<()> {
    fn range(layout: &Layout) -> Result<std::ops::Range<usize>> {
        let Some((lo, hi)) = layout.contiguous_offsets() else { candle_core::bail!("Adam needs contiguous tensors") };
        Ok(lo..hi)
    }
    let a = &a.0.as_slice::<f32>()?[range(a.1)?];
    let b = &b.0.as_slice::<f32>()?[range(b.1)?];
    let range = range(destination.1)?;
    let CpuStorage::F32(values) = destination.0 else { candle_core::bail!("Adam's in-place update needs f32 tensors") };
    values[range].par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).zip(b.par_chunks(CHUNK)).for_each(|((d, a), b)| {
        for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
            update(d, a, b);
        }
    });
    Ok(())
}

/// A moment, in place, from the gradient `g' = g·grad_scale + l2·θ`: the first as PyTorch's
/// `exp_avg.lerp_(g', 1 − β₁)`, the second (`square`) as `exp_avg_sq.mul_(β₂).addcmul_(g', g', 1 − β₂)`.
struct MomentUpdate {
    beta: f32,
    grad_scale: f32,
    l2: f32,
    square: bool,
}

impl InplaceOp3 for MomentUpdate {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    /// `s1`: the moment; `s2`: the gradient; `s3`: the parameter.
    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let Self { beta, grad_scale, l2: decay, square } = *self;
        let weight = 1.0 - beta;
        update_in_place((s1, l1), (s2, l2), (s3, l3), |m, g, theta| {
            let g = if decay == 0.0 { g * grad_scale } else { g * grad_scale + decay * theta };
            *m = if square { *m * beta + weight * g * g } else { *m + weight * (g - *m) };
        })
    }
}

/// The parameter, in place: `θ ← θ·decay − step_size · m / (√v / √(1 − β₂ᵗ) + ε)`.
struct ParameterUpdate {
    decay: f32,
    step_size: f32,
    bias2_sqrt: f32,
    eps: f32,
}

impl InplaceOp3 for ParameterUpdate {
    fn name(&self) -> &'static str {
        "adam-parameter"
    }

    /// `s1`: the parameter; `s2`, `s3`: the first and second moments.
    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let Self { decay, step_size, bias2_sqrt, eps } = *self;
        update_in_place((s1, l1), (s2, l2), (s3, l3), |theta, m, v| {
            *theta = *theta * decay - step_size * (m / (v.sqrt() / bias2_sqrt + eps));
        })
    }
}
