//! [`Adam`]: Adam and AdamW with PyTorch's arithmetic and a state (moments and step) that is saved
//! with checkpoints, so a resumed run continues exactly.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

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
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot { name, lr_factor, exp_avg: zeros.clone(), exp_avg_sq: zeros, var })
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
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0.0;
        for slot in &self.slots {
            if let Some(g) = grads.get(slot.var.as_tensor()) {
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
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let AdamConfig { kind, beta1, beta2, eps, weight_decay } = self.config;
        let bias1 = 1.0 - beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else { continue };
            let lr = lr * slot.lr_factor;
            let theta = slot.var.as_tensor();
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

    /// The state as named tensors: `exp_avg.NAME`, `exp_avg_sq.NAME`.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut tensors = HashMap::new();
        for slot in &self.slots {
            tensors.insert(format!("exp_avg.{}", slot.name), slot.exp_avg.clone());
            tensors.insert(format!("exp_avg_sq.{}", slot.name), slot.exp_avg_sq.clone());
        }
        tensors
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
                *target = tensor.to_device(target.device()).map_err(|e| e.to_string())?;
            }
        }
        self.step = step;
        Ok(())
    }
}
