//! [`EncoderCNN`] and [`CNNtoRNN`]: the PyTorch original's model, with its parameter names
//! (`encoderCNN.inception.*`, `encoderCNN.inception.fc.*`, `decoderRNN.embed.weight`,
//! `decoderRNN.lstm.weight_ih_l0`, …), so checkpoints move between the two unchanged.

use candle_core::{IndexOp, Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::backend::views::HeadTensors;
use crate::backend::{self, HeadGradients, SampledForward};
use crate::loss::{counted_positions, masked_cross_entropy};
use crate::{DecoderConfig, DecoderRNN, Dropout, Inception3, InceptionConfig, Targets};

/// The encoder's module name in the original's `CNNtoRNN`.
pub const ENCODER: &str = "encoderCNN";
/// The decoder's module name in the original's `CNNtoRNN`.
pub const DECODER: &str = "decoderRNN";
/// The prefix of Inception v3's parameters in the original's state dict.
pub const INCEPTION_PREFIX: &str = "encoderCNN.inception.";
/// The prefix of the encoder's `fc` (the image embedding) in the original's state dict.
pub const FC_PREFIX: &str = "encoderCNN.inception.fc.";
/// The prefix of the decoder's parameters in the original's state dict.
pub const DECODER_PREFIX: &str = "decoderRNN.";

/// The original's encoder: Inception v3 whose `fc` is `Linear(2048, embed)`, then ReLU and
/// dropout 0.5 (Inception's own dropout 0.5 before `fc` applies too, in train mode).
#[derive(Debug, Clone)]
pub struct EncoderCNN {
    inception: Inception3,
}

impl EncoderCNN {
    /// Loads `inception.*` from `vb`; `transform_input` as the checkpoint was trained
    /// (torchvision's pretrained weights turn it on).
    pub fn new(vb: VarBuilder, embed_size: usize, transform_input: bool) -> Result<Self> {
        let config = InceptionConfig { num_classes: Some(embed_size), aux_logits: false, transform_input };
        Ok(Self { inception: Inception3::new(vb.pp("inception"), config)? })
    }

    /// The network inside.
    pub fn inception(&self) -> &Inception3 {
        &self.inception
    }

    /// Image features (batch × embed). With `train` (a [`Dropout`] of 0.5, as `model.train()`
    /// in the original) BatchNorm uses batch statistics and both dropouts are active.
    pub fn forward_t(&self, images: &Tensor, train: Option<&mut Dropout>) -> Result<Tensor> {
        let pooled = self.inception.forward_t(images, train.is_some())?.pooled;
        self.features_from_pooled(&pooled, train)
    }

    /// `dropout(relu(fc(dropout(pooled))))`: the encoder's head on 2048-d pooled features (what
    /// a frozen encoder caches); the dropouts only when `dropout` is given.
    pub fn features_from_pooled(&self, pooled: &Tensor, dropout: Option<&mut Dropout>) -> Result<Tensor> {
        let fc = self.inception.fc().expect("the encoder always has its fc");
        match dropout {
            Some(dropout) => {
                let hidden = fc.forward(&dropout.apply(pooled)?)?.relu()?;
                dropout.apply(&hidden)
            }
            None => fc.forward(pooled)?.relu(),
        }
    }
}

/// The original's `CNNtoRNN`.
#[derive(Debug, Clone)]
pub struct CNNtoRNN {
    /// `encoderCNN`.
    pub encoder: EncoderCNN,
    /// `decoderRNN`.
    pub decoder: DecoderRNN,
}

impl CNNtoRNN {
    /// The probability of every dropout in the original's model (Inception's before `fc`, the
    /// encoder's after it, the decoder's on the word embeddings).
    pub const DROPOUT: f32 = 0.5;

    /// Loads `encoderCNN.*` and `decoderRNN.*` from `vb`.
    pub fn new(vb: VarBuilder, config: DecoderConfig, transform_input: bool) -> Result<Self> {
        Ok(Self {
            encoder: EncoderCNN::new(vb.pp(ENCODER), config.embed_size, transform_input)?,
            decoder: DecoderRNN::new(vb.pp(DECODER), config)?,
        })
    }

    /// The original's forward: logits ((time + 1) × batch × vocab) for teacher-forced `captions`
    /// (time × batch ids; the original passes `captions[:-1]`).
    /// With `train` the model is in training mode (BatchNorm batch statistics, the dropouts
    /// drawing from the given generator).
    pub fn forward_t(&self, images: &Tensor, captions: &Tensor, mut train: Option<&mut Dropout>) -> Result<Tensor> {
        let features = self.encoder.forward_t(images, train.as_deref_mut())?;
        self.decoder.forward(&features, captions, train)
    }

    /// The training step's loss and gradients for the head, from 2048-d `pooled` features (batch
    /// × 2048; no gradient flows back into them: frozen and original-setup training) and
    /// `captions` (length × batch token ids, `<SOS>` … `<EOS>`, PAD-padded), by a backend: the
    /// original's `dropout(relu(fc(dropout(pooled))))` as time step 0, then as
    /// [`DecoderRNN::loss_gradients`]. `dropout` draws the three masks in the order
    /// [`head_loss`](Self::head_loss) does (p = 0 turns them off). The gradients carry the
    /// original's state-dict names (`encoderCNN.inception.fc.weight`, `decoderRNN.embed.weight`, …).
    ///
    /// `None` when no backend covers the tensors (see [`DecoderRNN::loss_gradients`]; also when
    /// `pooled` tracks a gradient, as in fine-tuning): the caller then uses candle's autograd on
    /// [`head_loss`](Self::head_loss) (no mask has been drawn).
    ///
    /// # Errors
    /// Shapes that do not fit the model, or a token id outside the vocabulary.
    pub fn head_gradients(
        &self,
        pooled: &Tensor,
        targets: Targets,
        dropout: &mut Dropout,
    ) -> Result<Option<HeadGradients>> {
        backend::lstm_head_gradients(&self.head_tensors()?, pooled, targets, dropout)
    }

    /// [`head_gradients`](Self::head_gradients) without dropout (the samples were drawn without
    /// it) for `targets` whose captions [`DecoderRNN::sample_keeping_forward`] drew (one `pooled`
    /// row each, in the order drawn; weighted by self-critical training's advantages): the
    /// backward pass from the forward pass the sampling kept. `None` where no backend covers the
    /// tensors (then `head_gradients` on the same targets).
    ///
    /// # Errors
    /// Shapes that do not fit the model, captions the sampling did not draw, or a token id
    /// outside the vocabulary.
    pub fn sampled_head_gradients(
        &self,
        pooled: &Tensor,
        targets: Targets,
        forward: &SampledForward,
    ) -> Result<Option<HeadGradients>> {
        backend::lstm_sampled_head_gradients(&self.head_tensors()?, pooled, targets, forward)
    }

    /// What trains on top of the encoder (`fc` and the decoder) as the backends read it, under the
    /// original's state-dict names.
    ///
    /// # Errors
    /// An `fc` or output layer without a bias.
    pub fn head_tensors(&self) -> Result<HeadTensors> {
        let Some(fc) = self.encoder.inception().fc() else { candle_core::bail!("the encoder has no fc") };
        let Some(fc_bias) = fc.bias() else { candle_core::bail!("the original's fc has a bias") };
        let mut decoder = self.decoder.tensors()?;
        for (name, _) in &mut decoder.parameters {
            *name = format!("{DECODER_PREFIX}{name}");
        }
        Ok(HeadTensors {
            fc_weight: (format!("{FC_PREFIX}weight"), fc.weight().clone()),
            fc_bias: (format!("{FC_PREFIX}bias"), fc_bias.clone()),
            decoder,
        })
    }

    /// The training loss of a teacher-forced batch on candle's operations (what autograd
    /// differentiates where no backend covers the tensors): `pooled` (batch × 2048) through
    /// [`EncoderCNN::features_from_pooled`] with `dropout`, the decoder on `captions[:-1]`
    /// (length × batch ids, `pad`-padded), and the mean cross-entropy over targets that are not
    /// `pad`, each weighed by its caption's weight when `targets` has weights. Draws `dropout`'s
    /// masks as [`head_gradients`](Self::head_gradients) does.
    ///
    /// # Errors
    /// Shapes that do not fit the model, or not one weight per caption.
    pub fn head_loss(&self, pooled: &Tensor, targets: Targets, dropout: &mut Dropout) -> Result<Tensor> {
        let Targets { captions, pad, .. } = targets;
        let caption_weights = targets.checked_weights(captions.dim(1)?)?;
        let features = self.encoder.features_from_pooled(pooled, Some(dropout))?;
        let inputs = captions.i(..captions.dim(0)? - 1)?;
        let hiddens = self.decoder.hiddens(&features, &inputs, Some(dropout))?;
        let (steps, batch, hidden) = hiddens.dims3()?;
        let hiddens = hiddens.reshape((steps * batch, hidden))?;
        // Only positions whose target is not PAD reach the output layer: PAD targets add nothing to
        // the loss or its gradient, and they are a third or more of a padded batch of real captions.
        let all_targets = captions.flatten_all()?;
        let ids: Vec<u32> = all_targets.to_vec1()?;
        let counted = counted_positions(&ids, pad);
        // Each counted target's weight: its caption's (time-major rows: caption = row % batch).
        let weights: Option<Vec<f32>> = caption_weights.map(|w| counted.iter().map(|&r| w[r % batch]).collect());
        let (hiddens, targets) = if counted.len() == ids.len() {
            (hiddens, all_targets)
        } else {
            let kept: Vec<u32> = counted.iter().map(|&position| ids[position]).collect();
            let positions: Vec<u32> = counted.iter().map(|&position| position as u32).collect();
            let positions = Tensor::new(positions, hiddens.device())?;
            (hiddens.index_select(&positions, 0)?, Tensor::new(kept, hiddens.device())?)
        };
        Ok(masked_cross_entropy(&self.decoder.logits(&hiddens)?, &targets, pad, weights.as_deref())?.0)
    }

    /// The teacher-forced cross-entropy (eval mode) of `captions` (length × batch, `pad`-padded)
    /// given the image embeddings `features` (batch × embed), with the number of targets counted.
    ///
    /// # Errors
    /// Shapes that do not fit the decoder.
    pub fn teacher_forced_loss(&self, features: &Tensor, captions: &Tensor, pad: u32) -> Result<(Tensor, usize)> {
        let logits = self.decoder.forward(features, &captions.i(..captions.dim(0)? - 1)?, None)?;
        masked_cross_entropy(&logits, captions, pad, None)
    }

    /// The original's `caption_image` for a batch: eval-mode features, then greedy decoding
    /// (ids up to and including `eos`, with their summed log-probability).
    pub fn caption_images(&self, images: &Tensor, max_length: usize, eos: u32) -> Result<Vec<(Vec<u32>, f32)>> {
        let features = self.encoder.forward_t(images, None)?;
        self.decoder.greedy(&features, max_length, eos)
    }
}
