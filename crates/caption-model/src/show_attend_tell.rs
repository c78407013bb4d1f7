//! [`ShowAttendTell`]: Inception v3 without its classifier as the encoder of a
//! [`DecoderWithAttention`], with the parameter names `encoder.inception.*` (torchvision's names
//! below it) and `decoder.*` (sgrvinod's `DecoderWithAttention`'s), as the tutorial's
//! checkpoints hold an `encoder` and a `decoder` module.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::{AttentionConfig, DecoderWithAttention, Inception3, InceptionConfig};

/// The prefix of Inception v3's parameters in a [`ShowAttendTell`] state dict.
pub const ATTENTION_INCEPTION_PREFIX: &str = "encoder.inception.";
/// The prefix of the attention decoder's parameters in a [`ShowAttendTell`] state dict.
pub const ATTENTION_DECODER_PREFIX: &str = "decoder.";

/// The encoder's grid and the attention decoder over it.
#[derive(Debug, Clone)]
pub struct ShowAttendTell {
    /// `encoder.inception`: Inception v3 up to its last mixed block (no `fc`).
    pub encoder: Inception3,
    /// `decoder`.
    pub decoder: DecoderWithAttention,
}

impl ShowAttendTell {
    /// Loads `encoder.inception.*` and `decoder.*` from `vb`; `transform_input` as the encoder's
    /// weights expect (torchvision's pretrained weights turn it on).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn new(vb: VarBuilder, config: AttentionConfig, transform_input: bool) -> Result<Self> {
        let inception = InceptionConfig { num_classes: None, aux_logits: false, transform_input };
        Ok(Self {
            encoder: Inception3::new(vb.pp("encoder").pp("inception"), inception)?,
            decoder: DecoderWithAttention::new(vb.pp("decoder"), config)?,
        })
    }

    /// The grid the decoder attends over (batch × positions × 2048) for normalised images, in
    /// eval mode or (with `train`) with BatchNorm batch statistics and a backward pass.
    ///
    /// # Errors
    /// A shape error.
    pub fn encode(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        DecoderWithAttention::grid(&self.encoder.forward_t(images, train)?.spatial)
    }
}
