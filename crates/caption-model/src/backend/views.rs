//! The model's tensors as the backends read them: views that name no model type. The model files
//! build them (`DecoderRNN::tensors`, `CNNtoRNN::head_tensors`,
//! `DecoderWithAttention::tensors`) and hand them to the operations of [`backend`](super); the
//! gradients a backend returns carry the names the view gave.

use candle_core::{Result, Tensor};

/// An LSTM decoder's parameters (the original's `DecoderRNN`): embedding, output layer and the
/// stacked LSTM.
#[derive(Debug, Clone)]
pub struct LstmDecoderTensors {
    /// `(name, tensor)` in this order: the embedding (vocab × embed), the output layer's weight
    /// (vocab × hidden) and bias, then per layer `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`
    /// (PyTorch's layouts and gate order).
    pub parameters: Vec<(String, Tensor)>,
}

impl LstmDecoderTensors {
    /// The embedding.
    pub fn embed(&self) -> &Tensor {
        &self.parameters[0].1
    }

    /// The output layer's weight.
    pub fn linear_weight(&self) -> &Tensor {
        &self.parameters[1].1
    }

    /// LSTM layers.
    pub fn layers(&self) -> usize {
        (self.parameters.len() - 3) / 4
    }

    /// (embed, hidden, vocab).
    ///
    /// # Errors
    /// Parameters that are not matrices.
    pub fn sizes(&self) -> Result<(usize, usize, usize)> {
        let (vocab, hidden) = self.linear_weight().dims2()?;
        let (_, embed) = self.embed().dims2()?;
        Ok((embed, hidden, vocab))
    }
}

/// What trains on top of the original's encoder: its `fc` (embed × 2048, with a bias) and the LSTM
/// decoder.
#[derive(Debug, Clone)]
pub struct HeadTensors {
    /// `fc`'s weight, by name.
    pub fc_weight: (String, Tensor),
    /// `fc`'s bias, by name.
    pub fc_bias: (String, Tensor),
    /// The decoder.
    pub decoder: LstmDecoderTensors,
}

/// The attention decoder's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionSizes {
    /// Channels of the grid.
    pub encoder: usize,
    /// The attention network's hidden size.
    pub attention: usize,
    /// The word embedding's size.
    pub embed: usize,
    /// The LSTM cell's size.
    pub decoder: usize,
    /// Words.
    pub vocab: usize,
}

/// The attention decoder's parameters (sgrvinod's `DecoderWithAttention`), in its
/// `named_parameters` order: `attention.encoder_att`, `attention.decoder_att`,
/// `attention.full_att` (weight, bias each), `embedding.weight`, `decode_step` (`weight_ih`,
/// `weight_hh`, `bias_ih`, `bias_hh`), `init_h`, `init_c`, `f_beta`, `fc` (weight, bias each).
#[derive(Debug, Clone)]
pub struct AttentionDecoderTensors {
    /// `(name, tensor)` in that order.
    pub parameters: Vec<(String, Tensor)>,
    /// Its sizes.
    pub sizes: AttentionSizes,
}

/// A batch norm layer's tensors (PyTorch's `BatchNorm2d`): the affine weight and bias, the running
/// statistics (train mode moves them in place), ε and the momentum.
#[derive(Debug, Clone, Copy)]
pub struct BatchNormTensors<'a> {
    /// γ.
    pub weight: &'a Tensor,
    /// β.
    pub bias: &'a Tensor,
    /// The running mean.
    pub running_mean: &'a Tensor,
    /// The running variance.
    pub running_var: &'a Tensor,
    /// ε.
    pub eps: f64,
    /// How far train mode moves the running statistics towards the batch's.
    pub momentum: f64,
}

/// Captions as the attention decoder's training pass reads them (row by row, as the tutorial's
/// decoder takes them).
#[derive(Debug, Clone, Copy)]
pub struct AttentionTargets<'a> {
    /// batch × tokens ids, `<SOS>` first.
    pub ids: &'a Tensor,
    /// How many tokens of each caption count (`<SOS>` included).
    pub lengths: &'a [usize],
    /// Each caption's weight on its tokens' loss (`None`: 1), as [`Targets::weights`](crate::Targets::weights).
    pub weights: Option<&'a [f32]>,
}
