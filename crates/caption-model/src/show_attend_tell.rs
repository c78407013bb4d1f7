//! [`ShowAttendTell`]: Inception v3 without its classifier as the encoder of a
//! [`DecoderWithAttention`], with the parameter names `encoder.inception.*` (torchvision's names
//! below it) and `decoder.*` (sgrvinod's `DecoderWithAttention`'s), as the tutorial's
//! checkpoints hold an `encoder` and a `decoder` module.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use crate::attention::attention_loss;
use crate::backend::views::AttentionTargets;
use crate::{AttentionConfig, DecoderWithAttention, Dropout, HeadGradients, Inception3, InceptionConfig, Targets};

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

    /// The training loss and gradients of a teacher-forced batch computed by a backend, the
    /// gradients under their state-dict names (`decoder.*`): `grid` (batch × positions × 2048)
    /// and `targets` (length × batch ids, `pad`-padded, weighed when weights are given), as
    /// [`DecoderWithAttention::loss_gradients`]. `None` on the reference path.
    ///
    /// # Errors
    /// Shapes that do not fit the decoder.
    pub fn head_gradients(
        &self,
        grid: &Tensor,
        targets: Targets,
        dropout: &mut Dropout,
        alpha_c: f64,
    ) -> Result<Option<HeadGradients>> {
        let (by_caption, lengths) = captions_by_row(targets.captions, targets.pad)?;
        let captions = AttentionTargets { ids: &by_caption, lengths: &lengths, weights: targets.weights };
        let Some(pass) = self.decoder.loss_gradients(grid, captions, dropout, alpha_c)? else {
            return Ok(None);
        };
        let gradients =
            pass.gradients.into_iter().map(|(name, gradient)| (format!("{ATTENTION_DECODER_PREFIX}{name}"), gradient));
        Ok(Some(HeadGradients { loss: pass.loss, counted: pass.counted, gradients: gradients.collect() }))
    }

    /// The tutorial's training loss ([`attention_loss`]) of a teacher-forced batch on candle's
    /// operations, `dropout` before the output layer; inputs as [`head_gradients`](Self::head_gradients).
    ///
    /// # Errors
    /// Shapes that do not fit the decoder.
    pub fn head_loss(&self, grid: &Tensor, targets: Targets, dropout: &mut Dropout, alpha_c: f64) -> Result<Tensor> {
        let (by_caption, lengths) = captions_by_row(targets.captions, targets.pad)?;
        let output = self.decoder.forward(grid, &by_caption, &lengths, Some(dropout))?;
        attention_loss(&output, &by_caption, targets.pad, targets.weights, alpha_c)
    }

    /// The cross-entropy alone (eval mode, no attention term, so comparable with the original
    /// model's) of `captions` (length × batch, `pad`-padded) given `grid`, with the tokens counted.
    ///
    /// # Errors
    /// Shapes that do not fit the decoder.
    pub fn teacher_forced_loss(&self, grid: &Tensor, captions: &Tensor, pad: u32) -> Result<(Tensor, usize)> {
        let (by_caption, lengths) = captions_by_row(captions, pad)?;
        let output = self.decoder.forward(grid, &by_caption, &lengths, None)?;
        let tokens = output.decode_lengths.iter().sum();
        Ok((attention_loss(&output, &by_caption, pad, None, 0.0)?, tokens))
    }
}

/// `captions` (length × batch, `pad`-padded) as the attention decoder reads them: batch × length,
/// with each caption's length in tokens (its tokens that are not `pad`).
fn captions_by_row(captions: &Tensor, pad: u32) -> Result<(Tensor, Vec<usize>)> {
    let by_caption = captions.t()?.contiguous()?;
    let rows: Vec<Vec<u32>> = by_caption.to_dtype(DType::U32)?.to_vec2()?;
    let lengths = rows.iter().map(|row| row.iter().filter(|&&id| id != pad).count()).collect();
    Ok((by_caption, lengths))
}
