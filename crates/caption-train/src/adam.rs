//! [`Adam`]: Adam and AdamW with PyTorch's arithmetic and a state (moments and step) that is saved
//! with checkpoints, so a resumed run continues exactly.
//!
//! On the CPU (float32) each parameter is updated in place in one pass over parameter, moments
//! and gradient, with no allocation; elsewhere with candle's tensor operations.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Result, Tensor, Var};
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
                let decay = if kind == OptimizerKind::AdamW { 1.0 - lr * weight_decay } else { 1.0 };
                let update = FusedUpdate {
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

/// Elements per parallel task of the in-place update.
const CHUNK: usize = 1 << 14;

/// The whole CPU update of one parameter in one pass over θ, both moments and the gradient
/// (three passes read and wrote 40 % more memory, and the update is bound by memory traffic).
/// With `g' = g·grad_scale + l2·θ`: the first moment as PyTorch's `exp_avg.lerp_(g', 1 − β₁)`,
/// the second as `exp_avg_sq.mul_(β₂).addcmul_(g', g', 1 − β₂)`, then
/// `θ ← θ·decay − step_size · m / (√v / √(1 − β₂ᵗ) + ε)`.
struct FusedUpdate {
    beta1: f32,
    beta2: f32,
    grad_scale: f32,
    l2: f32,
    decay: f32,
    step_size: f32,
    bias2_sqrt: f32,
    eps: f32,
}

impl FusedUpdate {
    /// Updates `theta`, `exp_avg` and `exp_avg_sq` (contiguous f32 CPU tensors of one size) in
    /// place from `grad`.
    fn apply(&self, theta: &Tensor, exp_avg: &Tensor, exp_avg_sq: &Tensor, grad: &Tensor) -> Result<()> {
        let (grad_storage, grad_layout) = grad.storage_and_layout();
        let candle_core::Storage::Cpu(grad_storage) = &*grad_storage else {
            candle_core::bail!("Adam's CPU update needs the gradient in CPU memory")
        };
        let g = &grad_storage.as_slice::<f32>()?[contiguous_range(grad_layout)?];
        with_slice_mut(theta, |theta| {
            with_slice_mut(exp_avg, |m| {
                with_slice_mut(exp_avg_sq, |v| {
                    if [m.len(), v.len(), g.len()].iter().any(|&len| len != theta.len()) {
                        candle_core::bail!("Adam: parameter, moments and gradient differ in size");
                    }
                    self.update(theta, m, v, g);
                    Ok(())
                })
            })
        })
    }

    fn update(&self, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let Self { beta1, beta2, grad_scale, l2, decay, step_size, bias2_sqrt, eps } = *self;
        let (weight1, weight2) = (1.0 - beta1, 1.0 - beta2);
        let chunks = theta.par_chunks_mut(CHUNK).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK));
        chunks.zip(g.par_chunks(CHUNK)).for_each(|(((theta, m), v), g)| {
            for (((theta, m), v), &g) in theta.iter_mut().zip(m).zip(v).zip(g) {
                let g = if l2 == 0.0 { g * grad_scale } else { g * grad_scale + l2 * *theta };
                *m += weight1 * (g - *m);
                *v = *v * beta2 + weight2 * g * g;
                *theta = *theta * decay - step_size * (*m / (v.sqrt() / bias2_sqrt + eps));
            }
        });
    }
}

/// The range of a contiguous layout's elements in its storage.
fn contiguous_range(layout: &Layout) -> Result<std::ops::Range<usize>> {
    let Some((lo, hi)) = layout.contiguous_offsets() else { candle_core::bail!("Adam needs contiguous tensors") };
    Ok(lo..hi)
}

/// Runs `f` on the elements of a contiguous f32 CPU tensor, mutably (candle's in-place operation
/// hands out one storage at a time; nesting these gives the update all three).
fn with_slice_mut(tensor: &Tensor, mut f: impl FnMut(&mut [f32]) -> Result<()>) -> Result<()> {
    tensor.inplace_op1(&WithSliceMut(std::cell::RefCell::new(&mut f)))
}

/// What [`with_slice_mut`] runs.
type SliceFn<'f> = dyn FnMut(&mut [f32]) -> Result<()> + 'f;

/// The in-place operation behind [`with_slice_mut`].
struct WithSliceMut<'a, 'f>(std::cell::RefCell<&'a mut SliceFn<'f>>);

impl InplaceOp1 for WithSliceMut<'_, '_> {
    fn name(&self) -> &'static str {
        "adam-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let range = contiguous_range(layout)?;
        let CpuStorage::F32(values) = storage else { candle_core::bail!("Adam's CPU update needs f32 tensors") };
        let mut f = self.0.try_borrow_mut().map_err(|_| candle_core::Error::Msg("Adam: nested update".into()))?;
        (*f)(&mut values[range])
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Module};

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
