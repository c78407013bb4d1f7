//! Which backend computes each operation the model files hand down: the one place that says it.
//! Each function picks the path for its tensors ([`choose`]) and runs that backend's version, or
//! answers `None` where the backend has none (the model file then runs its reference on candle's
//! operations). The model files call these and never name a backend.
//!
//! | operation                                   | CPU backend                 | CUDA backend             |
//! |---------------------------------------------|-----------------------------|--------------------------|
//! | [`lstm_greedy`]: greedy decoding            | `cpu::decoding`             | `cuda::greedy`           |
//! | [`lstm_sample`]: sampling (no top-k/top-p), its forward pass kept if asked | `cpu::decoding` | reference (tensor ops) |
//! | [`lstm_beam_search`]: beam search           | reference (tensor ops)      | `cuda::beam`             |
//! | [`lstm_decoder_gradients`]: decoder + loss  | `cpu::training_pass`        | `cuda::training_pass`    |
//! | [`lstm_head_gradients`]: fc + decoder + loss | `cpu::training_pass`       | `cuda::training_pass`    |
//! | [`lstm_sampled_head_gradients`]: the same over sampled captions, from the kept forward pass | `cpu::training_pass` | none (`lstm_head_gradients`) |
//! | [`attention_gradients`]: attention decoder  | `cpu::attention_pass`       | reference                |
//! | [`AdamUpdate::apply`](adam::AdamUpdate::apply): Adam's step | `cpu::adam` | `cuda::adam`             |
//! | [`masked_cross_entropy`] (with its backward) | `cpu::cross_entropy`       | reference                |
//! | [`conv_batch_norm_relu`], eval mode          | `cpu::conv` (BatchNorm + ReLU fused) | `cuda::conv` (cuDNN; candle's without `cudnn`) + `cuda::batch_norm` |
//! | [`conv_batch_norm_relu`], batch statistics   | `cpu::conv` + `cpu::batch_norm` | the same, two kernels  |
//! | [`conv_batch_norm_relu`], train mode (a backward pass) | reference         | the same, as candle ops with their backward |
//! | [`pool`]: Inception's 3×3 pools, no backward | `cpu::pool`                 | reference                |

use candle_core::{Result, Tensor};

use super::cpu::conv::Epilogue;
pub(crate) use super::cpu::pool::Pool;
#[cfg(feature = "cuda")]
use super::cuda;
use super::gradients::{AttentionGradients, DecoderGradients, HeadGradients, SampledForward};
use super::views::{AttentionDecoderTensors, AttentionTargets, BatchNormTensors, HeadTensors, LstmDecoderTensors};
use super::{Gradient, Path, adam, choose, cpu};
use crate::beam::{BeamConfig, Hypothesis};
use crate::{Dropout, Sampling, Targets};

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
        Path::Cpu => cpu::decoding::greedy(decoder, features, max_length, eos).map(Some),
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::greedy::greedy(decoder, features, max_length, eos).map(Some),
        _ => Ok(None),
    }
}

/// `samples` captions per row of `features` drawn by the LSTM `decoder` as `sampling` says, row
/// `i`'s from `seeds[i]` (every row's captions one after another, each with its summed
/// log-probability), and with `keep_forward` what the sampling computed forward, for a training
/// pass over the samples ([`lstm_sampled_head_gradients`]); `None` where no backend covers it
/// (the reference path, and top-k or top-p).
///
/// # Errors
/// Shapes that do not fit.
pub(crate) fn lstm_sample(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    seeds_and_samples: (&[u64], usize),
    length_and_end: (usize, u32),
    sampling: Sampling,
    keep_forward: bool,
) -> Result<Option<(Vec<GreedyCaption>, Option<SampledForward>)>> {
    let plain = sampling.top_k.is_none() && sampling.top_p.is_none();
    match choose(&[features, decoder.embed()], Gradient::NotTracked) {
        Path::Cpu if plain => {
            let temperature = sampling.temperature;
            let (captions, record) =
                cpu::decoding::sample(decoder, features, seeds_and_samples, length_and_end, temperature, keep_forward)?;
            Ok(Some((captions, record.map(SampledForward))))
        }
        _ => Ok(None),
    }
}

/// [`lstm_head_gradients`] without dropout for `targets` whose captions were sampled keeping
/// `forward` ([`lstm_sample`]), from that forward pass. `None` where no backend covers the
/// tensors (or a gradient is wanted for `pooled`).
///
/// # Errors
/// Shapes that do not fit, captions other than the sampled ones, or a token id outside the
/// vocabulary.
pub(crate) fn lstm_sampled_head_gradients(
    head: &HeadTensors,
    pooled: &Tensor,
    targets: Targets,
    forward: &SampledForward,
) -> Result<Option<HeadGradients>> {
    let gradient = if pooled.track_op() { Gradient::Tracked } else { Gradient::NotTracked };
    match choose(&[pooled, &head.fc_weight.1], gradient) {
        Path::Cpu => cpu::training_pass::sampled_head_gradients(head, pooled, targets, &forward.0).map(Some),
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
    targets: Targets,
    dropout: &mut Dropout,
) -> Result<Option<DecoderGradients>> {
    match choose(&[features, decoder.embed()], Gradient::NotTracked) {
        Path::Cpu => cpu::training_pass::decoder_gradients(decoder, features, targets, dropout).map(Some),
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::training_pass::decoder_gradients(decoder, features, targets, dropout),
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
    targets: Targets,
    dropout: &mut Dropout,
) -> Result<Option<HeadGradients>> {
    let gradient = if pooled.track_op() { Gradient::Tracked } else { Gradient::NotTracked };
    match choose(&[pooled, &head.fc_weight.1], gradient) {
        Path::Cpu => cpu::training_pass::head_gradients(head, pooled, targets, dropout).map(Some),
        #[cfg(feature = "cuda")]
        Path::Cuda => cuda::training_pass::head_gradients(head, pooled, targets, dropout),
        _ => Ok(None),
    }
}

/// The attention decoder's training loss and gradients over `grid` (batch × positions ×
/// channels) for `captions`; `None` on the reference
/// path (a gradient wanted for the grid, as in fine-tuning, included).
///
/// # Errors
/// Shapes that do not fit, or a token id outside the vocabulary.
pub(crate) fn attention_gradients(
    decoder: &AttentionDecoderTensors,
    grid: &Tensor,
    captions: AttentionTargets,
    dropout: &mut Dropout,
    alpha_c: f64,
) -> Result<Option<AttentionGradients>> {
    let gradient = if grid.track_op() { Gradient::Tracked } else { Gradient::NotTracked };
    let mut tensors = vec![grid];
    tensors.extend(decoder.parameters.iter().map(|(_, tensor)| tensor));
    match choose(&tensors, gradient) {
        Path::Cpu => cpu::attention_pass::attention_gradients(decoder, grid, captions, dropout, alpha_c).map(Some),
        _ => Ok(None),
    }
}

/// How a convolution block's batch norm runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvMode {
    /// Running statistics; inference.
    Eval,
    /// Batch statistics, with a backward pass.
    Train,
    /// Batch statistics, without a backward pass.
    BatchStatistics,
}

impl ConvMode {
    /// Whether a gradient flows back through the forward pass.
    pub(crate) fn gradient(self) -> Gradient {
        if self == Self::Train { Gradient::Tracked } else { Gradient::NotTracked }
    }
}

/// Batch statistics (float64 mean and biased variance per channel, over `count` values each) to
/// the normalisation's scale and shift, moving the running statistics: the model's rule.
pub(crate) type TrainScaleShift<'a> = &'a dyn Fn(&Tensor, &Tensor, usize) -> Result<(Tensor, Tensor)>;

/// A convolution (no bias) followed by batch norm and ReLU (Inception's `BasicConv2d`), as the
/// backends read it.
pub(crate) struct ConvBlock<'a> {
    /// The convolution; its own symmetric padding, or none when `padding` is set.
    pub conv: &'a candle_nn::Conv2d,
    /// Zero padding before the convolution along (height, width) when they differ, else (0, 0).
    pub padding: (usize, usize),
    /// The batch norm's tensors (the CUDA backend's kernels read them; the CPU's loops take the
    /// model's rules below).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub bn: BatchNormTensors<'a>,
    /// Eval mode's per-channel `(scale, shift)` in the input's dtype.
    pub eval_scale_shift: &'a dyn Fn() -> Result<(Tensor, Tensor)>,
    /// Batch statistics to scale and shift (see [`TrainScaleShift`]).
    pub train_scale_shift: TrainScaleShift<'a>,
}

/// `relu(bn(conv(x)))` by a backend; `None` on the reference path (the CPU's loops carry no
/// gradient, so train mode there is the reference's; CUDA's operations carry their own).
///
/// # Errors
/// Shapes that do not fit.
pub(crate) fn conv_batch_norm_relu(x: &Tensor, block: &ConvBlock, mode: ConvMode) -> Result<Option<Tensor>> {
    let config = block.conv.config();
    let padding = if block.padding == (0, 0) { (config.padding, config.padding) } else { block.padding };
    let weight = block.conv.weight();
    if choose(&[x, weight], mode.gradient()) == Path::Cpu {
        if mode == ConvMode::Eval {
            let (scale, shift) = (block.eval_scale_shift)()?;
            let (values, dims) =
                cpu::conv::conv2d(x, weight, config.stride, padding, Epilogue::ScaleShiftRelu(&scale, &shift))?;
            return Tensor::from_vec(values, dims, x.device()).map(Some);
        }
        let (values, dims) = cpu::conv::conv2d(x, weight, config.stride, padding, Epilogue::None)?;
        let (n, c, h, w) = dims;
        let statistics = cpu::batch_norm::channel_statistics(&values, dims);
        let device = &candle_core::Device::Cpu;
        let mean = Tensor::from_vec(statistics.iter().map(|s| s.0).collect::<Vec<_>>(), c, device)?;
        let var = Tensor::from_vec(statistics.iter().map(|s| s.1).collect::<Vec<_>>(), c, device)?;
        let (scale, shift) = (block.train_scale_shift)(&mean, &var, n * h * w)?;
        return cpu::batch_norm::scale_shift_relu(values, &scale.to_vec1::<f32>()?, &shift.to_vec1::<f32>()?, dims)
            .map(Some);
    }
    // The CUDA backend: the convolution (cuDNN's with the `cudnn` feature, its backward pass
    // cuDNN's too, and any padding its own; candle's without), then batch norm and ReLU in one
    // kernel (eval mode) or two (batch statistics; in train mode with a backward pass of two
    // more).
    #[cfg(feature = "cuda")]
    if choose(&[x, weight], Gradient::NotTracked) == Path::Cuda {
        #[cfg(feature = "cudnn")]
        let convolved = cuda::conv::conv2d(x, weight, config.stride, padding, mode.gradient())?;
        #[cfg(not(feature = "cudnn"))]
        let convolved = {
            use candle_core::Module;
            block.conv.forward(&pad_asymmetric(x, block.padding)?)?
        };
        let bn = &block.bn;
        return match mode {
            ConvMode::Eval => cuda::batch_norm::eval_relu(&convolved, bn),
            ConvMode::BatchStatistics => cuda::batch_norm::batch_statistics_relu(&convolved, bn),
            ConvMode::Train => cuda::batch_norm::train_relu(&convolved, bn),
        }
        .map(Some);
    }
    Ok(None)
}

/// `x` with `padding` zeros added on both sides of height and width (none for (0, 0)): what
/// candle's convolution, which pads both axes alike, needs first for an asymmetric padding.
///
/// # Errors
/// A tensor that is not N × C × H × W.
pub(crate) fn pad_asymmetric(x: &Tensor, padding: (usize, usize)) -> Result<Tensor> {
    if padding == (0, 0) {
        return Ok(x.clone());
    }
    x.pad_with_zeros(2, padding.0, padding.0)?.pad_with_zeros(3, padding.1, padding.1)
}

/// One of Inception's 3×3 pools by a backend, where no gradient flows back through it; `None`
/// on the reference path.
///
/// # Errors
/// A tensor that is not N × C × H × W.
pub(crate) fn pool(x: &Tensor, kind: Pool, gradient: Gradient) -> Result<Option<Tensor>> {
    match choose(&[x], gradient) {
        Path::Cpu => cpu::pool::pool(x, kind).map(Some),
        _ => Ok(None),
    }
}

/// The masked cross-entropy (mean over targets that are not `pad`, each weighted by `weights`
/// when given, with the count) of `logits` (rows × vocab) against `targets` (u32) by a backend, as one operation with its own backward
/// pass (autograd sees it); `None` on the reference path.
///
/// # Errors
/// Shapes that do not fit, or a target outside the vocabulary.
pub(crate) fn masked_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    pad: u32,
    weights: Option<&[f32]>,
) -> Result<Option<(Tensor, usize)>> {
    match choose(&[logits], Gradient::NotTracked) {
        Path::Cpu => cpu::cross_entropy::masked_cross_entropy(logits, targets, pad, weights).map(Some),
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
