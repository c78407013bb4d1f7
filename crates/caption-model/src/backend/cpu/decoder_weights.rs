//! The decoder's parameters borrowed as slices, in place under their storages' read locks (a
//! trainer's in-place update waits): what greedy decoding and the training pass read.

use candle_core::{Result, Tensor};

use super::with_host_slices;
use crate::backend::views::LstmDecoderTensors;

/// One LSTM layer's weights, PyTorch's layout (`w_ih` is 4·hidden × input, `w_hh` 4·hidden ×
/// hidden).
pub(crate) struct LayerWeights<'a> {
    pub w_ih: &'a [f32],
    pub w_hh: &'a [f32],
    pub b_ih: &'a [f32],
    pub b_hh: &'a [f32],
}

/// The decoder's weights as slices.
pub(crate) struct DecoderWeights<'a> {
    /// `embed.weight`, vocab × embed.
    pub embed: &'a [f32],
    /// `linear.weight`, vocab × hidden.
    pub linear_weight: &'a [f32],
    /// `linear.bias`.
    pub linear_bias: &'a [f32],
    /// `lstm.*_l{k}`.
    pub layers: Vec<LayerWeights<'a>>,
    pub embed_size: usize,
    pub hidden_size: usize,
    pub vocab_size: usize,
}

/// Runs `f` on the data of `extra` (float32 CPU tensors the caller reads along with the decoder)
/// and on the decoder's weights, all read in place.
pub(crate) fn with_decoder_weights<R>(
    decoder: &LstmDecoderTensors,
    extra: &[&Tensor],
    f: impl FnOnce(&[&[f32]], DecoderWeights) -> Result<R>,
) -> Result<R> {
    let mut tensors: Vec<&Tensor> = extra.to_vec();
    tensors.extend(decoder.parameters.iter().map(|(_, tensor)| tensor));
    let (embed_size, hidden_size, vocab_size) = decoder.sizes()?;
    with_host_slices(&tensors, |slices| {
        let (extra, slices) = slices.split_at(extra.len());
        let layers = slices[3..]
            .chunks_exact(4)
            .map(|w| LayerWeights { w_ih: w[0], w_hh: w[1], b_ih: w[2], b_hh: w[3] })
            .collect();
        let weights = DecoderWeights {
            embed: slices[0],
            linear_weight: slices[1],
            linear_bias: slices[2],
            layers,
            embed_size,
            hidden_size,
            vocab_size,
        };
        f(extra, weights)
    })
}
