//! The decoder's parameters borrowed as slices, in place under their storages' read locks (a
//! trainer's in-place update waits): what greedy decoding and the training pass read.

use candle_core::{Result, Tensor};

use super::with_host_slices;
use crate::DecoderRNN;

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

impl DecoderRNN {
    /// The decoder's parameters with their names in the original's `DecoderRNN` (`embed.weight`,
    /// `linear.weight`, `linear.bias`, then `lstm.weight_ih_l{k}`, `lstm.weight_hh_l{k}`,
    /// `lstm.bias_ih_l{k}`, `lstm.bias_hh_l{k}` for each layer), in the order
    /// [`with_decoder_weights`] reads them.
    pub(crate) fn named_parameters(&self) -> Result<Vec<(String, Tensor)>> {
        let Some(bias) = self.linear_bias() else { candle_core::bail!("the original's output layer has a bias") };
        let mut parameters = vec![
            ("embed.weight".to_string(), self.embed_weights().clone()),
            ("linear.weight".to_string(), self.linear_weight().clone()),
            ("linear.bias".to_string(), bias.clone()),
        ];
        for k in 0..self.lstm().num_layers() {
            let weights = self.lstm().layer_weights(k)?;
            for (name, tensor) in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].iter().zip(weights) {
                parameters.push((format!("lstm.{name}_l{k}"), tensor));
            }
        }
        Ok(parameters)
    }
}

/// Runs `f` on the data of `extra` (float32 CPU tensors the caller reads along with the decoder)
/// and on the decoder's weights, all read in place.
pub(crate) fn with_decoder_weights<R>(
    decoder: &DecoderRNN,
    extra: &[&Tensor],
    f: impl FnOnce(&[&[f32]], DecoderWeights) -> Result<R>,
) -> Result<R> {
    let parameters = decoder.named_parameters()?;
    let mut tensors: Vec<&Tensor> = extra.to_vec();
    tensors.extend(parameters.iter().map(|(_, tensor)| tensor));
    let (vocab_size, hidden_size) = decoder.linear_weight().dims2()?;
    let (_, embed_size) = decoder.embed_weights().dims2()?;
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
