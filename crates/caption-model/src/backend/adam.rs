//! Adam's (and AdamW's) update of one parameter in place, with PyTorch's arithmetic, on the
//! backend that holds it: [`AdamUpdate::apply`] (which backend runs it is said in
//! [`backend`](crate::backend), with the other operations). caption-train's optimizer runs it where
//! [`choose`](crate::backend::choose()) picks a fast path, and candle's tensor operations (the
//! reference) elsewhere.

/// One update of one parameter in one pass over θ, both moments and the gradient (three passes
/// read and wrote 40 % more memory, and the update is bound by memory traffic).
/// With `g' = g·grad_scale + l2·θ`: the first moment as PyTorch's `exp_avg.lerp_(g', 1 − β₁)`,
/// the second as `exp_avg_sq.mul_(β₂).addcmul_(g', g', 1 − β₂)`, then
/// `θ ← θ·decay − step_size · m / (√v / √(1 − β₂ᵗ) + ε)`.
#[derive(Debug, Clone, Copy)]
pub struct AdamUpdate {
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// The factor on the gradient (gradient clipping; 1 without).
    pub grad_scale: f32,
    /// Adam's L2 weight decay added to the gradient (0 for AdamW).
    pub l2: f32,
    /// AdamW's decoupled decay factor on θ, `1 − lr·weight_decay` (1 for Adam).
    pub decay: f32,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f32,
    /// `√(1 − β₂ᵗ)`.
    pub bias2_sqrt: f32,
    /// ε.
    pub eps: f32,
}
