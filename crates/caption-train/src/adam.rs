//! [`Adam`]: Adam and AdamW with PyTorch's arithmetic and a state (moments and step) that is saved
//! with checkpoints, so a resumed run continues exactly.
//!
//! On caption-model's CPU and CUDA backends each parameter is updated in place in one pass over
//! parameter, moments and gradient, with no allocation ([`AdamUpdate`]: a loop on the CPU, one
//! kernel on CUDA); on the reference path with candle's tensor operations.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use caption_model::backend::adam::AdamUpdate;
use caption_model::backend::{Gradient, Path, choose};

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
            if choose(&[theta, grad, &slot.exp_avg], Gradient::NotTracked) != Path::Reference {
                let decay = if kind == OptimizerKind::AdamW { 1.0 - lr * weight_decay } else { 1.0 };
                let update = AdamUpdate {
                    beta1: beta1 as f32,
                    beta2: beta2 as f32,
                    grad_scale: grad_scale as f32,
                    l2: if kind == OptimizerKind::Adam { weight_decay as f32 } else { 0.0 },
                    decay: decay as f32,
                    step_size: (lr / bias1) as f32,
                    bias2_sqrt: bias2_sqrt as f32,
                    eps: eps as f32,
                };
                update.apply(theta, &slot.exp_avg, &slot.exp_avg_sq, &grad.contiguous()?)?;
                continue;
            }
            // Detached: candle's gradient of a convolution's kernel is computed from the
            // convolution's input and so still references the whole forward graph; moments
            // built from it would hold every step's activations alive (fine-tuning on CUDA ran
            // out of 80 GB that way within a few steps). The same for `theta` (a variable).
            let (grad, theta) = (grad.detach(), theta.detach());
            let mut grad = if grad_scale == 1.0 { grad } else { (grad * grad_scale)? };
            if weight_decay != 0.0 && kind == OptimizerKind::Adam {
                grad = (grad + (&theta * weight_decay)?)?;
            }
            slot.exp_avg = ((&slot.exp_avg * beta1)? + (&grad * (1.0 - beta1))?)?;
            slot.exp_avg_sq = ((&slot.exp_avg_sq * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let denominator = ((slot.exp_avg_sq.sqrt()? / bias2_sqrt)? + eps)?;
            let update = ((&slot.exp_avg / denominator)? * (lr / bias1))?;
            let decayed = if weight_decay != 0.0 && kind == OptimizerKind::AdamW {
                (&theta * (1.0 - lr * weight_decay))?
            } else {
                theta
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

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Module};

    use super::*;

    /// The tensor path (here: float64 on the CPU, as every dtype on CUDA) keeps no graph: a
    /// convolution kernel's gradient references the forward graph, and moments built from it
    /// would hold every step's activations alive.
    #[test]
    fn moments_hold_no_graph() {
        let device = Device::Cpu;
        let first = Var::from_tensor(&Tensor::ones((2, 1, 3, 3), DType::F64, &device).unwrap()).unwrap();
        let second = Var::from_tensor(&Tensor::ones((1, 2, 3, 3), DType::F64, &device).unwrap()).unwrap();
        let vars = vec![("first".to_string(), first.clone()), ("second".to_string(), second.clone())];
        let mut adam = Adam::new(vars, AdamConfig { weight_decay: 0.01, ..AdamConfig::default() }).unwrap();
        let image = Tensor::ones((1, 1, 6, 6), DType::F64, &device).unwrap();
        for _ in 0..2 {
            let hidden = image.conv2d(first.as_tensor(), 1, 1, 1, 1).unwrap();
            let activated = candle_nn::Activation::Relu.forward(&hidden).unwrap();
            let loss = activated.conv2d(second.as_tensor(), 1, 1, 1, 1).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            assert!(grads.get(second.as_tensor()).unwrap().track_op(), "the premise: candle's kernel gradient");
            adam.step(&Gradients::Autograd(grads), 1e-3, 0.5).unwrap();
            for slot in &adam.slots {
                assert!(!slot.exp_avg.track_op() && !slot.exp_avg_sq.track_op(), "{} keeps a graph", slot.name);
            }
        }
    }
}
