//! What the training passes of every backend return: the loss of a teacher-forced batch and each
//! parameter's gradient by name.

use candle_core::Tensor;

use super::cpu::decoding::ForwardRecord;

/// What a backend's sampling computed forward and kept
/// ([`Network::sample_keeping_forward`](crate::Network::sample_keeping_forward)): its training
/// pass over the sampled captions starts from it instead of computing it again
/// ([`Network::sampled_head_gradients`](crate::Network::sampled_head_gradients)).
pub struct SampledForward(pub(crate) ForwardRecord);

/// The loss of a teacher-forced batch and its gradients, from [`DecoderRNN::loss_gradients`].
#[derive(Debug, Clone)]
pub struct DecoderGradients {
    /// The mean cross-entropy over targets that are not PAD.
    pub loss: f32,
    /// How many targets counted.
    pub counted: usize,
    /// The gradient of `loss` for each of the decoder's parameters, by its name in the original's
    /// `DecoderRNN` (`embed.weight`, `lstm.weight_ih_l0`, …, `linear.bias`), shaped like it.
    pub gradients: Vec<(String, Tensor)>,
    /// The gradient of `loss` for the image features (batch × embed).
    pub features: Tensor,
}

/// The loss of a teacher-forced batch and its gradients, from [`CNNtoRNN::head_gradients`].
#[derive(Debug, Clone)]
pub struct HeadGradients {
    /// The mean cross-entropy over targets that are not PAD.
    pub loss: f32,
    /// How many targets counted.
    pub counted: usize,
    /// The gradient of `loss` for each parameter of `fc` and the decoder, by the parameter's name in
    /// the original's state_dict (`encoderCNN.inception.fc.weight`, `decoderRNN.embed.weight`,
    /// `decoderRNN.lstm.weight_ih_l0`, …, `decoderRNN.linear.bias`), shaped like the parameter.
    pub gradients: Vec<(String, Tensor)>,
}

/// The loss of a teacher-forced batch and every parameter's gradient, from
/// [`DecoderWithAttention::loss_gradients`].
#[derive(Debug, Clone)]
pub struct AttentionGradients {
    /// The cross-entropy (mean over the decoded tokens) plus α_c times the doubly stochastic term.
    pub loss: f32,
    /// Tokens the cross-entropy counted (the sum of the decode lengths).
    pub counted: usize,
    /// The gradient of `loss` for each parameter, by its name in the tutorial's
    /// `DecoderWithAttention` (`attention.encoder_att.weight`, …, `fc.bias`), shaped like it.
    pub gradients: Vec<(String, Tensor)>,
}
