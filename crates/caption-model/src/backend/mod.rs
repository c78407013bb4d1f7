//! The backend layer: which implementation of an operation runs.
//!
//! The model files ([`Inception3`](crate::Inception3), [`BatchNorm2d`](crate::BatchNorm2d),
//! [`Lstm`](crate::Lstm), [`DecoderRNN`](crate::DecoderRNN), [`CNNtoRNN`](crate::CNNtoRNN), the
//! [`loss`](crate::loss)) say what the network computes, with PyTorch's names, on candle's
//! differentiable operations: the **reference path**, which runs on every device and dtype and is
//! what every fast path is tested against. A **fast path** computes the same thing by hand where
//! that measures faster than the reference (docs/benchmarks.md); each lives under a backend's
//! folder ([`cpu`]; `cuda` in builds with the `cuda` feature: the decoder's training pass,
//! greedy decoding, beam search, Adam's update and Inception's convolutions and batch norms as
//! cuBLAS or cuDNN calls and fused kernels) and each equation is written once per backend.
//!
//! [`choose`] is the one place that decides which path an operation takes, from its tensors'
//! device and dtype and whether a gradient must flow back through it (candle's autograd sees only
//! the reference path). The reference path can be forced everywhere, for tests, for debugging, or
//! for a user who suspects a kernel: set the environment variable `CAPTION_REFERENCE_PATH=1`
//! before the process starts, call [`set_reference_only`] (the whole process), or run code inside
//! [`with_reference_only`] (the calling thread).
//!
//! The backend knows no model type: the model files hand it views of their tensors ([`views`])
//! and call the operations of `operations.rs`, the table of which backend computes what (each
//! answers `None` where the reference path runs); what the CPU and CUDA passes share is in
//! `packing.rs`, what they return in [`gradients`].
//!
//! # Adding a backend
//! Add a folder next to `cpu/` with the operations it speeds up, a [`Path`] variant, the rule
//! that picks it in [`choose`], and its arm in each operation of `operations.rs` it covers.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::{DType, Tensor};

pub mod adam;
pub mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
pub mod gradients;
mod operations;
pub(crate) mod packing;
pub mod views;

pub use gradients::{AttentionGradients, DecoderGradients, HeadGradients, SampledForward};
pub(crate) use operations::{
    ConvBlock, ConvMode, Pool, attention_gradients, conv_batch_norm_relu, lstm_beam_search, lstm_decoder_gradients,
    lstm_greedy, lstm_head_gradients, lstm_sample, lstm_sampled_head_gradients, masked_cross_entropy, pad_asymmetric,
    pool,
};

/// The environment variable that forces the reference path for the whole process when set to
/// `1` (or `true`, `yes`, `on`).
pub const REFERENCE_PATH_VARIABLE: &str = "CAPTION_REFERENCE_PATH";

/// Which implementation an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// candle's differentiable operations, on any device and dtype.
    Reference,
    /// The CPU backend's hand-written loops ([`cpu`]): float32 tensors in CPU memory, no gradient
    /// flowing back through the operation.
    Cpu,
    /// The CUDA backend's cuBLAS products and fused kernels (builds with the `cuda` feature):
    /// float32 tensors on a CUDA device, no gradient flowing back through the operation. An
    /// operation the CUDA backend does not speed up takes the reference path.
    Cuda,
}

/// Whether a gradient must flow back through an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gradient {
    /// Inference, or an operation whose gradients the fast path computes itself.
    NotTracked,
    /// candle's autograd must see the operation (its backward pass is candle's).
    Tracked,
}

/// The path for an operation on `tensors`: [`Path::Cpu`] when every tensor is float32 in CPU
/// memory, [`Path::Cuda`] when every tensor is float32 on a CUDA device, in both cases only when
/// no gradient must flow back through it and the reference path is not forced
/// ([`reference_only`]); [`Path::Reference`] otherwise.
pub fn choose(tensors: &[&Tensor], gradient: Gradient) -> Path {
    if gradient == Gradient::Tracked || reference_only() || tensors.iter().any(|t| t.dtype() != DType::F32) {
        return Path::Reference;
    }
    if tensors.iter().all(|t| t.device().is_cpu()) {
        Path::Cpu
    } else if tensors.iter().all(|t| t.device().is_cuda()) {
        Path::Cuda
    } else {
        Path::Reference
    }
}

/// The environment variable that lets float32 matrix products and convolutions on CUDA use TF32
/// tensor cores when set to `1` (or `true`, `yes`, `on`); see [`allow_tf32`].
pub const TF32_VARIABLE: &str = "CAPTION_ALLOW_TF32";

/// The process-wide switch: unset (read [`REFERENCE_PATH_VARIABLE`] on first use), off or on.
static PROCESS_SWITCH: AtomicU8 = AtomicU8::new(UNSET);
/// The same for TF32 ([`TF32_VARIABLE`]).
static TF32_SWITCH: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// Whether `switch` is on: as set, or (unset) as `variable` says, read once.
fn switch_is_on(switch: &AtomicU8, variable: &str) -> bool {
    match switch.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var(variable)
                .is_ok_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
            // A concurrent `set_*` wins over the variable.
            let _ = switch.compare_exchange(UNSET, if on { ON } else { OFF }, Ordering::Relaxed, Ordering::Relaxed);
            switch.load(Ordering::Relaxed) == ON
        }
    }
}

/// Whether float32 matrix products and convolutions on CUDA may use TF32 tensor cores (10-bit
/// mantissas in the products: faster on Ampere and later, but results then differ from the CPU's
/// and from PyTorch's strict float32 in the third or fourth digit). Off unless asked for, by
/// [`TF32_VARIABLE`] or [`set_allow_tf32`] (`cargo xtask train --allow-tf32`); the CPU never
/// uses it.
pub fn allow_tf32() -> bool {
    let unread = TF32_SWITCH.load(Ordering::Relaxed) == UNSET;
    let on = switch_is_on(&TF32_SWITCH, TF32_VARIABLE);
    if unread {
        tell_candle_tf32(on);
    }
    on
}

/// Allows TF32 on CUDA (`true`) or forbids it (`false`) for the whole process, whatever
/// [`TF32_VARIABLE`] says: the CUDA backend's products and convolutions and candle's own float32
/// products.
pub fn set_allow_tf32(on: bool) {
    TF32_SWITCH.store(if on { ON } else { OFF }, Ordering::Relaxed);
    tell_candle_tf32(on);
}

/// What a run on `device` should tell its user about TF32 when it is allowed ([`allow_tf32`]):
/// that results then differ from strict float32 on the GPU, or that the CPU never uses it; `None`
/// when it is not allowed.
pub fn tf32_notice(device: &candle_core::Device) -> Option<&'static str> {
    Some(match (allow_tf32(), device.is_cuda()) {
        (false, _) => return None,
        (true, true) => {
            "TF32 allowed: float32 products and convolutions on the GPU use TF32 tensor cores (results differ from \
             strict float32 in the third or fourth digit)"
        }
        (true, false) => "TF32 allowed, but this run is on the CPU, which never uses it: results are strict float32",
    })
}

/// Passes the TF32 setting on to candle's own float32 products (its process-wide flag), whether
/// it came from [`set_allow_tf32`] or from [`TF32_VARIABLE`] (read by [`allow_tf32`], which
/// creating a CUDA device calls first: see [`parse_device`](crate::parse_device)).
fn tell_candle_tf32(on: bool) {
    #[cfg(feature = "cuda")]
    candle_core::cuda_backend::set_gemm_reduced_precision_f32(on);
    #[cfg(not(feature = "cuda"))]
    let _ = on;
}

thread_local! {
    /// Set inside [`with_reference_only`].
    static THREAD_SWITCH: Cell<bool> = const { Cell::new(false) };
}

/// Whether the reference path is forced: by [`REFERENCE_PATH_VARIABLE`], by
/// [`set_reference_only`], or on this thread by [`with_reference_only`].
pub fn reference_only() -> bool {
    THREAD_SWITCH.with(Cell::get) || switch_is_on(&PROCESS_SWITCH, REFERENCE_PATH_VARIABLE)
}

/// Forces the reference path for the whole process (`true`), or lets [`choose`] pick fast paths
/// again (`false`, whatever [`REFERENCE_PATH_VARIABLE`] says).
pub fn set_reference_only(on: bool) {
    PROCESS_SWITCH.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// Runs `f` with the reference path forced on the calling thread (operations `f` starts on other
/// threads choose for themselves); the previous setting is restored afterwards, also when `f`
/// panics.
pub fn with_reference_only<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD_SWITCH.with(|switch| switch.set(self.0));
        }
    }
    let _restore = Restore(THREAD_SWITCH.with(|switch| switch.replace(true)));
    f()
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn float32_on_the_cpu_without_a_gradient_takes_the_cpu_path() {
        let f32 = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let f64 = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
        assert_eq!(choose(&[&f32], Gradient::NotTracked), Path::Cpu);
        assert_eq!(choose(&[&f32, &f64], Gradient::NotTracked), Path::Reference, "one float64 tensor");
        assert_eq!(choose(&[&f32], Gradient::Tracked), Path::Reference, "autograd sees the reference only");
        assert_eq!(with_reference_only(|| choose(&[&f32], Gradient::NotTracked)), Path::Reference);
        assert_eq!(choose(&[&f32], Gradient::NotTracked), Path::Cpu, "the thread's switch is restored");
    }
}
