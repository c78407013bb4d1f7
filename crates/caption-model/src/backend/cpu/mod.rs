//! The CPU backend: hand-written loops over float32 data in place, for the operations where they
//! measure faster than candle's (docs/benchmarks.md), each tested against the reference path.
//!
//! - `conv.rs`: eval-mode convolution with BatchNorm + ReLU fused in (Inception v3's `BasicConv2d`);
//! - `batch_norm.rs`: train-mode BatchNorm + ReLU without a backward pass (the original mode's encoder);
//! - `pool.rs`: Inception's two 3×3 pools;
//! - `decoding.rs`: greedy decoding and sampling, a thread per core each owning a share of the weights;
//! - `training_pass.rs`: the decoder's (and the encoder head's) forward and backward pass;
//! - `attention_pass.rs`: the attention decoder's forward and backward pass;
//! - `lstm.rs`: the LSTM cell, forward (used by decoding and the training pass) and
//!   backward, over packed sequences;
//! - `cross_entropy.rs`: the PAD-masked cross-entropy and its gradient inside candle's autograd;
//! - `adam.rs`: the Adam/AdamW update in place ([`AdamUpdate`](super::adam::AdamUpdate));
//! - `decoder_weights.rs`: the decoder's parameters borrowed as slices;
//! - `kernels.rs`, `gemm.rs`, `spin_barrier.rs`: the vectorised building blocks.
//!
//! Which path runs is decided in one place, [`choose`](super::choose).

pub(crate) mod adam;
pub(crate) mod attention_pass;
pub(crate) mod batch_norm;
pub(crate) mod conv;
pub(crate) mod cross_entropy;
pub(crate) mod decoder_weights;
pub(crate) mod decoding;
pub(crate) mod gemm;
pub(crate) mod kernels;
pub(crate) mod lstm;
pub(crate) mod pool;
pub(crate) mod spin_barrier;
pub(crate) mod training_pass;

use candle_core::{Layout, Result, Storage, Tensor};

/// The slice a contiguous float32 CPU tensor covers.
pub(crate) fn host_slice<'a>(storage: &'a Storage, layout: &Layout) -> Option<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else { return None };
    let (start, end) = layout.contiguous_offsets()?;
    cpu.as_slice::<f32>().ok()?.get(start..end)
}

/// Runs `f` on the data of `tensors` (float32 in CPU memory, as [`choose`](super::choose) made
/// sure), read in place under their storages' read locks; a tensor that is not contiguous is
/// copied first.
pub(crate) fn with_host_slices<R>(tensors: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> Result<R>) -> Result<R> {
    let contiguous: Vec<Tensor> = tensors.iter().map(|t| t.contiguous()).collect::<Result<_>>()?;
    let guards: Vec<_> = contiguous.iter().map(Tensor::storage_and_layout).collect();
    let slices =
        guards.iter().map(|(storage, layout)| host_slice(storage, layout)).collect::<Option<Vec<_>>>().ok_or_else(
            || candle_core::Error::Msg("the CPU backend was given a tensor outside CPU memory or not float32".into()),
        )?;
    f(&slices)
}
