//! Which backend computes each operation the model files hand down: the one place that says it.
//! Each function picks the path for its tensors ([`choose`]) and runs that backend's version, or
//! answers `None` where the backend has none (the model file then runs its reference on candle's
//! operations). The model files call these and never name a backend.
//!
//! | operation                                   | CPU backend                 | CUDA backend             |
//! |---------------------------------------------|-----------------------------|--------------------------|
//! | [`lstm_greedy`]: greedy decoding            | `cpu::greedy`               | `cuda::greedy`           |
//! | [`lstm_beam_search`]: beam search           | reference (tensor ops)      | `cuda::beam`             |
//! | [`lstm_decoder_gradients`]: decoder + loss  | `cpu::training_pass`        | `cuda::training_pass`    |
//! | [`lstm_head_gradients`]: fc + decoder + loss | `cpu::training_pass`       | `cuda::training_pass`    |
//! | [`attention_gradients`]: attention decoder  | `cpu::attention_pass`       | reference                |
//! | [`AdamUpdate::apply`](adam::AdamUpdate::apply): Adam's step | `cpu::adam` | `cuda::adam`             |
//! | masked cross-entropy (`loss.rs`)            | `cpu::cross_entropy`        | reference                |
//! | eval-mode conv + batch norm + ReLU (`inception.rs`) | `cpu::conv`         | `cuda::conv` (cuDNN or candle) + `cuda::batch_norm` |
//! | train-mode batch norm + ReLU (`inception.rs`) | `cpu::batch_norm` (no gradient) | `cuda::batch_norm` (with its backward) |
//! | Inception's pools (`inception.rs`)          | `cpu::pool`                 | reference                |
//!
//! The last three rows still choose at their call sites (issue #30 moves them here next).

use candle_core::{Result, Tensor};

#[cfg(feature = "cuda")]
use super::cuda;
use super::gradients::{AttentionGradients, DecoderGradients, HeadGradients};
use super::views::{AttentionDecoderTensors, HeadTensors, LstmDecoderTensors};
use super::{Gradient, Path, adam, choose, cpu};
use crate::Dropout;
use crate::beam::{BeamConfig, Hypothesis};

/// A greedy caption: its ids (up to and including `<EOS>` when reached) and their summed
/// log-probability.
pub(crate) type GreedyCaption = (Vec<u32>, f32);

/// Greedy decoding by the LSTM `decoder` of each row of `features` (ids up to `eos`, with their
/// summed log-probability); `None` on the reference path.
///
/// # Errors
/// Shapes that do not fit.
pub(crate) fn lstm_greedy(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    max_length: usize,
    eos: u32,
) -> Result<Option<Vec<GreedyCaption>>> {
    match choose(&[features, decoder.embed()], Gradient::NotTracked) {
        Path::Cpu => cpu::greedy::greedy(decoder, features, max_length, eos).map(Some),
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::greedy::greedy(decoder, features, max_length, eos).map(Some),
        _ => Ok(None),
    }
}

/// Beam search by the LSTM `decoder`: up to `n` ranked hypotheses per row of `features`; `None`
/// where no backend covers it (the CPU's tensor operations are the reference's).
///
/// # Errors
/// Shapes that do not fit.
pub(crate) fn lstm_beam_search(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    config: BeamConfig,
    n: usize,
) -> Result<Option<Vec<Vec<Hypothesis>>>> {
    match choose(&[features, decoder.embed()], Gradient::NotTracked) {
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::beam::beam_search_n_best(decoder, features, config, n).map(Some),
        _ => {
            let _ = (config, n);
            Ok(None)
        }
    }
}

/// The LSTM decoder's teacher-forced loss and gradients from `features` (batch × embed);
/// `None` on the reference path (or, on CUDA, for a batch the kernels do not take).
///
/// # Errors
/// Shapes that do not fit, or a token id outside the vocabulary.
pub(crate) fn lstm_decoder_gradients(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    captions: &Tensor,
    dropout: &mut Dropout,
    pad: u32,
) -> Result<Option<DecoderGradients>> {
    match choose(&[features, decoder.embed()], Gradient::NotTracked) {
        Path::Cpu => cpu::training_pass::decoder_gradients(decoder, features, captions, dropout, pad).map(Some),
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::training_pass::decoder_gradients(decoder, features, captions, dropout, pad),
        _ => Ok(None),
    }
}

/// The original's head trained from `pooled` features (batch × 2048): loss and gradients;
/// `None` on the reference path, which a gradient wanted for `pooled` (fine-tuning) also takes.
///
/// # Errors
/// Shapes that do not fit, or a token id outside the vocabulary.
pub(crate) fn lstm_head_gradients(
    head: &HeadTensors,
    pooled: &Tensor,
    captions: &Tensor,
    dropout: &mut Dropout,
    pad: u32,
) -> Result<Option<HeadGradients>> {
    let gradient = if pooled.track_op() { Gradient::Tracked } else { Gradient::NotTracked };
    match choose(&[pooled, &head.fc_weight.1], gradient) {
        Path::Cpu => cpu::training_pass::head_gradients(head, pooled, captions, dropout, pad).map(Some),
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::training_pass::head_gradients(head, pooled, captions, dropout, pad),
        _ => Ok(None),
    }
}

/// The attention decoder's training loss and gradients over `grid` (batch × positions ×
/// channels) for `captions` (batch × tokens) of which `lengths` count; `None` on the reference
/// path (a gradient wanted for the grid, as in fine-tuning, included).
///
/// # Errors
/// Shapes that do not fit, or a token id outside the vocabulary.
pub(crate) fn attention_gradients(
    decoder: &AttentionDecoderTensors,
    grid: &Tensor,
    captions: &Tensor,
    lengths: &[usize],
    dropout: &mut Dropout,
    alpha_c: f64,
) -> Result<Option<AttentionGradients>> {
    let gradient = if grid.track_op() { Gradient::Tracked } else { Gradient::NotTracked };
    let mut tensors = vec![grid];
    tensors.extend(decoder.parameters.iter().map(|(_, tensor)| tensor));
    match choose(&tensors, gradient) {
        Path::Cpu => {
            cpu::attention_pass::attention_gradients(decoder, grid, captions, lengths, dropout, alpha_c).map(Some)
        }
        _ => Ok(None),
    }
}

impl adam::AdamUpdate {
    /// Updates `theta`, `exp_avg` and `exp_avg_sq` (contiguous float32 tensors of one size, in
    /// CPU memory or, in builds with the `cuda` feature, on one CUDA device) in place from `grad`.
    ///
    /// # Errors
    /// Tensors on another device or of another dtype, not contiguous, or of different sizes.
    pub fn apply(
        &self,
        theta: &Tensor,
        exp_avg: &Tensor,
        exp_avg_sq: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<()> {
        #[cfg(feature = "cuda")]
        if theta.device().is_cuda() {
            return cuda::adam::apply(self, theta, exp_avg, exp_avg_sq, grad);
        }
        cpu::adam::apply(self, theta, exp_avg, exp_avg_sq, grad)
    }
}
