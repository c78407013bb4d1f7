//! [`Network`]: the one interface to a captioning model, whichever it is. Everything that trains,
//! validates, captions, evaluates or exports a model goes through it; the kind of model
//! ([`DecoderKind`]) is matched here, where a model is built from its configuration
//! ([`NetworkConfig`]), and nowhere else.
//!
//! A network is Inception v3 and a head that trains on top of it. The head reads a **head
//! input** from Inception's output ([`Network::head_input`]: the pooled 2048-d features for the
//! original's `CNNtoRNN`, the spatial grid for `ShowAttendTell`; frozen mode caches exactly
//! this), turns it into what the decoder reads ([`Network::encode_head_input`]) and decodes
//! captions from that ([`Network::greedy`], [`Network::beam_search_n_best`]). Training is the
//! teacher-forced pass: [`Network::head_gradients`] (a backend's hand-written forward and
//! backward) or, where no backend covers it, [`Network::head_loss`] for candle's autograd.
//!
//! # Adding a network
//! Its model file (layers, teacher-forced loss, decoding), a [`DecoderKind`] variant with its
//! PyTorch class name and parameter prefixes, a [`Network`] variant, and one arm in each method
//! below.

use std::fmt;
use std::str::FromStr;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::attention::{ENCODER_DIM, TUTORIAL_SIZE};
use crate::beam::{BeamStep, Continued};
use crate::show_attend_tell::{ATTENTION_DECODER_PREFIX, ATTENTION_INCEPTION_PREFIX};
use crate::{
    AttentionConfig, BeamConfig, CNNtoRNN, DECODER_PREFIX, DecoderConfig, DecoderWithAttention, Dropout, FC_PREFIX,
    HeadGradients, Hypothesis, INCEPTION_PREFIX, Inception3, InceptionOutput, SampledForward, ShowAttendTell, Targets,
};

/// Which captioning network a model is: its name in settings and flags (`lstm`, `attention`) and,
/// through [`architecture`](Self::architecture), in checkpoint files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// The original's `CNNtoRNN`: the pooled image embedding, then an LSTM.
    #[default]
    Lstm,
    /// Show, Attend and Tell ([`ShowAttendTell`]): attention over the encoder's grid at every word.
    Attention,
}

/// What a network's head reads from Inception v3 (and what frozen mode caches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadInput {
    /// The pooled features (batch × 2048).
    Pooled,
    /// The spatial grid (batch × positions × 2048).
    Grid,
}

impl DecoderKind {
    /// Every kind, in the order flags and messages list them.
    pub const ALL: [Self; 2] = [Self::Lstm, Self::Attention];

    /// Its name in settings and flags.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lstm => "lstm",
            Self::Attention => "attention",
        }
    }

    /// The PyTorch class name a checkpoint of this kind is described by.
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Lstm => "CNNtoRNN",
            Self::Attention => "ShowAttendTell",
        }
    }

    /// The kind whose [`architecture`](Self::architecture) is `name`.
    pub fn from_architecture(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.architecture() == name)
    }

    /// What the head reads from Inception v3.
    pub fn head_input(self) -> HeadInput {
        match self {
            Self::Lstm => HeadInput::Pooled,
            Self::Attention => HeadInput::Grid,
        }
    }

    /// Whether it attends over the grid, so that each word has weights over the image.
    pub fn has_attention(self) -> bool {
        self.head_input() == HeadInput::Grid
    }

    /// The prefix of Inception v3's parameters in this model's state dict.
    pub fn inception_prefix(self) -> &'static str {
        match self {
            Self::Lstm => INCEPTION_PREFIX,
            Self::Attention => ATTENTION_INCEPTION_PREFIX,
        }
    }

    /// Whether a parameter belongs to what trains on top of the encoder: the original's `fc`
    /// and decoder, or the attention decoder.
    pub fn is_head(self, name: &str) -> bool {
        match self {
            Self::Lstm => name.starts_with(FC_PREFIX) || name.starts_with(DECODER_PREFIX),
            Self::Attention => name.starts_with(ATTENTION_DECODER_PREFIX),
        }
    }

    /// Whether a parameter is one of Inception v3's own (below the original's replaced `fc`).
    pub fn is_encoder(self, name: &str) -> bool {
        name.starts_with(self.inception_prefix()) && !self.is_head(name)
    }
}

impl fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DecoderKind {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|kind| kind.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|kind| kind.name()).collect();
            format!("no decoder {name:?} (the decoders are {})", names.join(", "))
        })
    }
}

/// A network's sizes, as settings and checkpoint metadata give them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkConfig {
    /// Which network.
    pub kind: DecoderKind,
    /// Words, specials included.
    pub vocab_size: usize,
    /// Word embedding size (the original's also the image embedding's).
    pub embed_size: usize,
    /// The LSTM's hidden size (the attention decoder's `decoder_dim`).
    pub hidden_size: usize,
    /// LSTM layers (the attention decoder's cell is one).
    pub num_layers: usize,
    /// The attention network's size (the attention decoder's; [`TUTORIAL_SIZE`] when not given).
    pub attention_dim: Option<usize>,
    /// The attention decoder's dropout before its output layer (the original's model drops 0.5,
    /// as it always has).
    pub dropout: f32,
}

impl NetworkConfig {
    /// The original's `CNNtoRNN` of these sizes (as its `DecoderRNN` takes them).
    pub fn cnn_to_rnn(decoder: DecoderConfig) -> Self {
        let DecoderConfig { embed_size, hidden_size, vocab_size, num_layers } = decoder;
        let (kind, attention_dim, dropout) = (DecoderKind::Lstm, None, CNNtoRNN::DROPOUT);
        Self { kind, vocab_size, embed_size, hidden_size, num_layers, attention_dim, dropout }
    }

    /// How the network is described in logs and in a resumed run's checks, e.g. `CNNtoRNN with
    /// embed 256, hidden 256, layers 1`.
    pub fn describe(&self) -> String {
        let Self { kind, embed_size, hidden_size, num_layers, .. } = *self;
        let name = kind.architecture();
        match kind {
            DecoderKind::Lstm => format!("{name} with embed {embed_size}, hidden {hidden_size}, layers {num_layers}"),
            DecoderKind::Attention => format!(
                "{name} with embed {embed_size}, attention {}, decoder {hidden_size}",
                self.attention_dim.unwrap_or(TUTORIAL_SIZE)
            ),
        }
    }
}

/// A network's decoding steps ([`Network::decoding_steps`]).
pub type DecodingSteps<'a> = dyn FnMut(Option<Continued<'_>>) -> Result<BeamStep> + 'a;

/// A captioning model of either kind.
#[derive(Debug, Clone)]
pub enum Network {
    /// The original's model.
    CNNtoRNN(CNNtoRNN),
    /// The attention model.
    ShowAttendTell(ShowAttendTell),
}

impl Network {
    /// The network `config` describes, its tensors from `vb` (under their PyTorch names);
    /// `transform_input` as Inception's weights expect (torchvision's pretrained ones turn it on).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn new(vb: VarBuilder, config: &NetworkConfig, transform_input: bool) -> Result<Self> {
        let NetworkConfig { kind, vocab_size, embed_size, hidden_size, num_layers, attention_dim, dropout } = *config;
        Ok(match kind {
            DecoderKind::Lstm => {
                let decoder = DecoderConfig { embed_size, hidden_size, vocab_size, num_layers };
                Self::CNNtoRNN(CNNtoRNN::new(vb, decoder, transform_input)?)
            }
            DecoderKind::Attention => {
                let attention = AttentionConfig {
                    encoder_dim: ENCODER_DIM,
                    attention_dim: attention_dim.unwrap_or(TUTORIAL_SIZE),
                    embed_dim: embed_size,
                    decoder_dim: hidden_size,
                    vocab_size,
                    dropout,
                };
                Self::ShowAttendTell(ShowAttendTell::new(vb, attention, transform_input)?)
            }
        })
    }

    /// Which kind it is.
    pub fn kind(&self) -> DecoderKind {
        match self {
            Self::CNNtoRNN(_) => DecoderKind::Lstm,
            Self::ShowAttendTell(_) => DecoderKind::Attention,
        }
    }

    /// Its Inception v3.
    pub fn inception(&self) -> &Inception3 {
        match self {
            Self::CNNtoRNN(model) => model.encoder.inception(),
            Self::ShowAttendTell(model) => &model.encoder,
        }
    }

    /// The dropout probability a training run draws its masks with.
    pub fn dropout_probability(&self) -> f32 {
        match self {
            Self::CNNtoRNN(_) => CNNtoRNN::DROPOUT,
            Self::ShowAttendTell(model) => model.decoder.config().dropout,
        }
    }

    /// What the head reads from an Inception v3 output ([`DecoderKind::head_input`]).
    ///
    /// # Errors
    /// A shape error.
    pub fn head_input(&self, output: &InceptionOutput) -> Result<Tensor> {
        match self {
            Self::CNNtoRNN(_) => Ok(output.pooled.clone()),
            Self::ShowAttendTell(_) => DecoderWithAttention::grid(&output.spatial),
        }
    }

    /// What the decoder reads, in eval mode, from a head input: the original's image embedding
    /// (`relu(fc(pooled))`, batch × embed), the attention model's grid as it is.
    ///
    /// # Errors
    /// A shape error.
    pub fn encode_head_input(&self, head_input: &Tensor) -> Result<Tensor> {
        match self {
            Self::CNNtoRNN(model) => model.encoder.features_from_pooled(head_input, None),
            Self::ShowAttendTell(_) => Ok(head_input.clone()),
        }
    }

    /// What the decoder reads for normalised images (batch × 3 × H × W), in eval mode, detached.
    ///
    /// # Errors
    /// A shape error.
    pub fn encode(&self, images: &Tensor) -> Result<Tensor> {
        let output = self.inception().forward_t(images, false)?;
        Ok(self.encode_head_input(&self.head_input(&output)?)?.detach())
    }

    /// The training loss of a teacher-forced batch and every head parameter's gradient (by its
    /// state-dict name), computed by a backend: `head_input` ([`head_input`](Self::head_input))
    /// and `targets` (length × batch ids, `<SOS>` … `<EOS>`, `pad`-padded; with per-caption
    /// weights, each caption's tokens weighed, as self-critical training's loss); `dropout` draws the
    /// masks in the order [`head_loss`](Self::head_loss) does; `alpha_c` weighs the attention
    /// model's doubly stochastic term. `None` when no backend covers the tensors (the reference
    /// path: then [`head_loss`](Self::head_loss) and candle's autograd, no mask drawn).
    ///
    /// # Errors
    /// Shapes that do not fit the model, or a token id outside the vocabulary.
    pub fn head_gradients(
        &self,
        head_input: &Tensor,
        targets: Targets,
        dropout: &mut Dropout,
        alpha_c: f64,
    ) -> Result<Option<HeadGradients>> {
        match self {
            Self::CNNtoRNN(model) => model.head_gradients(head_input, targets, dropout),
            Self::ShowAttendTell(model) => model.head_gradients(head_input, targets, dropout, alpha_c),
        }
    }

    /// The training loss of a teacher-forced batch on the reference path (candle's operations,
    /// for autograd), from the same inputs as [`head_gradients`](Self::head_gradients).
    ///
    /// # Errors
    /// Shapes that do not fit the model.
    pub fn head_loss(
        &self,
        head_input: &Tensor,
        targets: Targets,
        dropout: &mut Dropout,
        alpha_c: f64,
    ) -> Result<Tensor> {
        match self {
            Self::CNNtoRNN(model) => model.head_loss(head_input, targets, dropout),
            Self::ShowAttendTell(model) => model.head_loss(head_input, targets, dropout, alpha_c),
        }
    }

    /// The teacher-forced cross-entropy (eval mode, mean per counted token, nothing added) of
    /// `captions` (length × batch, `pad`-padded) given the decoder's input `encoded`
    /// ([`encode`](Self::encode)), with the number of tokens it counted.
    ///
    /// # Errors
    /// Shapes that do not fit the model.
    pub fn teacher_forced_loss(&self, encoded: &Tensor, captions: &Tensor, pad: u32) -> Result<(Tensor, usize)> {
        match self {
            Self::CNNtoRNN(model) => model.teacher_forced_loss(encoded, captions, pad),
            Self::ShowAttendTell(model) => model.teacher_forced_loss(encoded, captions, pad),
        }
    }

    /// Greedy decoding of each row of `encoded` ([`encode`](Self::encode)): from `sos` (for a
    /// decoder that reads it), the most likely word until `eos` or `max_length` words, with the
    /// summed log-probability and (attention) each word's weights over the grid.
    ///
    /// # Errors
    /// A shape error.
    pub fn greedy(&self, encoded: &Tensor, max_length: usize, sos: u32, eos: u32) -> Result<Vec<Hypothesis>> {
        match self {
            Self::CNNtoRNN(model) => Ok(model
                .decoder
                .greedy(encoded, max_length, eos)?
                .into_iter()
                .map(|(ids, log_prob)| Hypothesis { finished: false, ids, log_prob, alphas: Vec::new() })
                .collect()),
            Self::ShowAttendTell(model) => Ok(model
                .decoder
                .greedy(encoded, max_length, sos, eos)?
                .into_iter()
                .map(|c| Hypothesis { finished: false, ids: c.ids, log_prob: c.log_prob as f32, alphas: c.alphas })
                .collect()),
        }
    }

    /// Decoding one word at a time for each row of `encoded` ([`encode`](Self::encode)), from
    /// `sos` for a decoder that reads it: the steps [`beam::search`](crate::beam::search) is written
    /// on, once for both networks (and any other search over words, such as sampling). The first
    /// call (`None`) starts one row per image; each later call continues the rows it is given;
    /// every call answers each row's log-probability of every word (and its attention weights).
    ///
    /// # Errors
    /// A shape error.
    pub fn decoding_steps<'a>(&'a self, encoded: &'a Tensor, sos: u32) -> Result<Box<DecodingSteps<'a>>> {
        Ok(match self {
            Self::CNNtoRNN(model) => Box::new(model.decoder.decoding_steps(encoded)),
            Self::ShowAttendTell(model) => Box::new(model.decoder.decoding_steps(encoded, sos)?),
        })
    }

    /// `samples` captions for each row of `encoded` ([`encode`](Self::encode)) drawn from the
    /// model's distribution as `sampling` says ([`sampling::sample`](crate::sampling::sample):
    /// row `i`'s from `seeds[i]`, each to `eos` or `max_length` words), over
    /// [`decoding_steps`](Self::decoding_steps) (the LSTM decoder's
    /// [`DecoderRNN::sample`](crate::DecoderRNN::sample) on the CPU).
    ///
    /// # Errors
    /// Sampling settings out of range, or a shape error.
    pub fn sample(
        &self,
        encoded: &Tensor,
        seeds: &[u64],
        samples: usize,
        max_length: usize,
        (sos, eos): (u32, u32),
        sampling: crate::Sampling,
    ) -> Result<Vec<Vec<Hypothesis>>> {
        match self {
            Self::CNNtoRNN(model) => model.decoder.sample(encoded, (seeds, samples), (max_length, eos), sampling),
            Self::ShowAttendTell(model) => {
                let steps = model.decoder.decoding_steps(encoded, sos)?;
                crate::sampling::sample(seeds, samples, max_length, eos, sampling, steps)
            }
        }
    }

    /// [`sample`](Self::sample) (temperature only), keeping what the backend's sampling loop
    /// computed forward, for [`sampled_head_gradients`](Self::sampled_head_gradients): the LSTM
    /// decoder's CPU loop keeps it; `None` elsewhere (the attention decoder, another device, top-k
    /// or top-p), where [`sample`](Self::sample) and the teacher-forced pass run instead.
    ///
    /// # Errors
    /// Sampling settings out of range, or a shape error.
    pub fn sample_keeping_forward(
        &self,
        encoded: &Tensor,
        (seeds, samples): (&[u64], usize),
        max_length: usize,
        eos: u32,
        sampling: crate::Sampling,
    ) -> Result<Option<(Vec<Vec<Hypothesis>>, SampledForward)>> {
        match self {
            Self::CNNtoRNN(model) => {
                model.decoder.sample_keeping_forward(encoded, (seeds, samples), (max_length, eos), sampling)
            }
            Self::ShowAttendTell(_) => Ok(None),
        }
    }

    /// [`head_gradients`](Self::head_gradients) without dropout for `targets` whose captions
    /// [`sample_keeping_forward`](Self::sample_keeping_forward) drew
    /// ([`teacher_forcing_captions`](Self::teacher_forcing_captions) of them, one `head_input`
    /// row each): only the backward pass runs, from the kept forward pass. `None` where no
    /// backend covers it (then `head_gradients` on the same targets).
    ///
    /// # Errors
    /// Shapes that do not fit the model, captions the sampling did not draw, or a token id
    /// outside the vocabulary.
    pub fn sampled_head_gradients(
        &self,
        head_input: &Tensor,
        targets: Targets,
        forward: &SampledForward,
    ) -> Result<Option<HeadGradients>> {
        match self {
            Self::CNNtoRNN(model) => model.sampled_head_gradients(head_input, targets, forward),
            Self::ShowAttendTell(_) => Ok(None),
        }
    }

    /// The teacher-forced captions (length × batch, `pad`-padded, on `device`) whose targets are
    /// the tokens of `samples` as decoding gave them (each up to its end token, or cut): the
    /// original's decoder starts from the image and emits every token, the first included; the
    /// attention decoder reads `sos` first and emits the rest. What a training pass needs to
    /// score sampled captions ([`head_gradients`](Self::head_gradients) with weights).
    ///
    /// # Errors
    /// No sample, or an empty one.
    pub fn teacher_forcing_captions(
        &self,
        samples: &[Vec<u32>],
        (sos, pad): (u32, u32),
        device: &candle_core::Device,
    ) -> Result<Tensor> {
        let start: &[u32] = match self {
            Self::CNNtoRNN(_) => &[],
            Self::ShowAttendTell(_) => &[sos],
        };
        if samples.is_empty() || samples.iter().any(Vec::is_empty) {
            candle_core::bail!("teacher forcing needs at least one sample, each of one token or more");
        }
        let length = start.len() + samples.iter().map(Vec::len).max().unwrap_or(0);
        let batch = samples.len();
        let mut ids = vec![pad; length * batch];
        for (b, sample) in samples.iter().enumerate() {
            for (t, &id) in start.iter().chain(sample).enumerate() {
                ids[t * batch + b] = id;
            }
        }
        Tensor::from_vec(ids, (length, batch), device)
    }

    /// Beam search for each row of `encoded`: up to `n` hypotheses each, ranked as
    /// [`DecoderRNN::beam_search_n_best`](crate::DecoderRNN::beam_search_n_best) ranks them.
    ///
    /// # Errors
    /// A shape error.
    pub fn beam_search_n_best(
        &self,
        encoded: &Tensor,
        config: BeamConfig,
        sos: u32,
        n: usize,
    ) -> Result<Vec<Vec<Hypothesis>>> {
        match self {
            Self::CNNtoRNN(model) => model.decoder.beam_search_n_best(encoded, config, n),
            Self::ShowAttendTell(model) => model.decoder.beam_search_n_best(encoded, config, sos, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::beam;

    /// A small seeded network of `kind` and encoder outputs for two images.
    fn network(kind: DecoderKind) -> (Network, Tensor) {
        let config = NetworkConfig {
            kind,
            vocab_size: 12,
            embed_size: 8,
            hidden_size: 8,
            num_layers: 1,
            attention_dim: Some(8),
            dropout: 0.0,
        };
        let varmap = VarMap::new();
        let network = Network::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), &config, false).unwrap();
        crate::init::initialize(&varmap, 7, |_| true).unwrap();
        let shape: &[usize] = if kind.has_attention() { &[2, 4, ENCODER_DIM] } else { &[2, 8] };
        (network, Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap())
    }

    #[test]
    fn a_kinds_name_is_the_one_settings_files_hold() {
        for kind in DecoderKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.name()));
            assert_eq!(kind.name().parse::<DecoderKind>(), Ok(kind));
            assert_eq!(DecoderKind::from_architecture(kind.architecture()), Some(kind));
        }
        assert!("gru".parse::<DecoderKind>().unwrap_err().contains("lstm, attention"));
    }

    #[test]
    fn beam_search_over_the_networks_decoding_steps_is_their_beam_search() {
        for kind in DecoderKind::ALL {
            let (network, encoded) = network(kind);
            let config = BeamConfig { beam_size: 3, max_length: 6, length_penalty: 0.5, eos: 2 };
            let steps = network.decoding_steps(&encoded, 1).unwrap();
            let over_steps = beam::search(2, config, 3, steps).unwrap();
            assert_eq!(over_steps, network.beam_search_n_best(&encoded, config, 1, 3).unwrap(), "{kind}");
            assert_eq!(over_steps.len(), 2);
            assert_eq!(over_steps[0][0].alphas.is_empty(), !kind.has_attention(), "{kind}");
        }
    }

    /// The captions that score samples: the LSTM's targets are the samples themselves, the
    /// attention decoder's follow `<SOS>`; PAD after each.
    #[test]
    fn teacher_forcing_captions_put_each_networks_targets_where_its_loss_reads_them() {
        let samples = vec![vec![1, 7, 2], vec![9]];
        let captions = |kind| {
            let (network, _) = network(kind);
            let tensor = network.teacher_forcing_captions(&samples, (1, 0), &Device::Cpu).unwrap();
            tensor.to_vec2::<u32>().unwrap()
        };
        assert_eq!(captions(DecoderKind::Lstm), [[1, 9], [7, 0], [2, 0]]);
        assert_eq!(captions(DecoderKind::Attention), [[1, 1], [1, 9], [7, 0], [2, 0]]);
        let (network, _) = network(DecoderKind::Lstm);
        assert!(network.teacher_forcing_captions(&[vec![]], (1, 0), &Device::Cpu).is_err());
    }

    /// The backward pass from the forward pass sampling kept gives the gradients of the
    /// teacher-forced pass over the same captions (PAD drawn mid-caption, captions of every
    /// length, two layers, two threads' shares of units and vocabulary blocks), and keeping it
    /// changes nothing drawn.
    #[test]
    fn gradients_from_the_kept_forward_pass_equal_the_teacher_forced_pass() {
        let config = NetworkConfig {
            kind: DecoderKind::Lstm,
            vocab_size: 300,
            embed_size: 16,
            hidden_size: 64,
            num_layers: 2,
            attention_dim: None,
            dropout: 0.0,
        };
        let varmap = VarMap::new();
        let network = Network::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), &config, false).unwrap();
        crate::init::initialize(&varmap, 5, |_| true).unwrap();
        let (pad, eos) = (0u32, 2u32);
        {
            // Ends and PADs likely enough to be drawn.
            let vars = varmap.data().lock().unwrap();
            let bias = &vars[&format!("{DECODER_PREFIX}linear.bias")];
            let mut values = bias.to_vec1::<f32>().unwrap();
            (values[eos as usize], values[pad as usize]) = (4.5, 2.5);
            bias.set(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap();
        }
        let pooled = Tensor::randn(0f32, 1.0, (3, 2048), &Device::Cpu).unwrap().relu().unwrap();
        let encoded = network.encode_head_input(&pooled).unwrap();
        let (seeds, samples, sampling) = ([4, 5, 6], 4, crate::Sampling { temperature: 1.3, ..Default::default() });
        let (drawn, forward) =
            network.sample_keeping_forward(&encoded, (&seeds, samples), 7, eos, sampling).unwrap().unwrap();
        assert_eq!(drawn, network.sample(&encoded, &seeds, samples, 7, (1, eos), sampling).unwrap());
        let ids: Vec<Vec<u32>> = drawn.iter().flatten().map(|caption| caption.ids.clone()).collect();
        let lengths: std::collections::HashSet<usize> = ids.iter().map(Vec::len).collect();
        assert!(lengths.len() >= 3 && ids.iter().flatten().any(|&id| id == pad), "{ids:?}");
        let weights: Vec<f32> = (0..ids.len()).map(|i| (i as f32 * 0.37).sin()).collect();
        let rows: Vec<u32> = (0..3).flat_map(|i| std::iter::repeat_n(i, samples)).collect();
        let repeated = pooled.index_select(&Tensor::new(rows.as_slice(), &Device::Cpu).unwrap(), 0).unwrap();
        let captions = |ids: &[Vec<u32>]| network.teacher_forcing_captions(ids, (1, pad), &Device::Cpu).unwrap();
        let drawn_captions = captions(&ids);
        let targets = Targets::new(&drawn_captions, pad).weighted(&weights);
        let kept = network.sampled_head_gradients(&repeated, targets, &forward).unwrap().unwrap();
        let full = network.head_gradients(&repeated, targets, &mut Dropout::new(0.0, 0), 0.0).unwrap().unwrap();
        assert_eq!(kept.counted, full.counted);
        assert!((kept.loss - full.loss).abs() <= 1e-5 * full.loss.abs().max(1.0), "{} vs {}", kept.loss, full.loss);
        assert_eq!(kept.gradients.len(), full.gradients.len());
        for ((name, a), (full_name, b)) in kept.gradients.iter().zip(&full.gradients) {
            assert_eq!(name, full_name);
            let difference = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(scale > 0.0 && difference <= 1e-5 * scale.max(1e-3), "{name}: {difference} (scale {scale})");
        }
        // Captions the sampling did not draw are refused, not scored.
        let longer: Vec<Vec<u32>> = ids.iter().map(|caption| [caption.as_slice(), &[5]].concat()).collect();
        let mut other = ids.clone();
        other[3][0] = (other[3][0] + 1) % 300;
        for wrong in [longer, other] {
            let wrong = captions(&wrong);
            let targets = Targets::new(&wrong, pad).weighted(&weights);
            assert!(network.sampled_head_gradients(&repeated, targets, &forward).is_err());
        }
    }

    /// 100,000 samples of each network's first word for one image: their frequencies match the
    /// probabilities of its first decoding step (chi-square below the 0.999 quantile of 11
    /// degrees of freedom, 31.26); a sample's log-probability is its words' under the model.
    #[test]
    fn sampled_first_words_follow_each_networks_probabilities() {
        let n = 100_000;
        for kind in DecoderKind::ALL {
            let (network, encoded) = network(kind);
            let first = encoded.narrow(0, 0, 1).unwrap();
            let mut steps = network.decoding_steps(&first, 1).unwrap();
            let probabilities: Vec<f64> =
                steps(None).unwrap().next_words[0].iter().map(|&(_, lp)| f64::from(lp).exp()).collect();
            let drawn = network.sample(&first, &[3], n, 1, (1, 2), crate::Sampling::default()).unwrap().remove(0);
            let mut counts = vec![0usize; probabilities.len()];
            for caption in &drawn {
                counts[caption.ids[0] as usize] += 1;
                let expected = probabilities[caption.ids[0] as usize].ln() as f32;
                assert!((caption.log_prob - expected).abs() < 1e-5, "{kind}");
            }
            let statistic: f64 = counts
                .iter()
                .zip(&probabilities)
                .map(|(&c, &p)| (c as f64 - n as f64 * p).powi(2) / (n as f64 * p))
                .sum();
            assert!(statistic < 31.26, "{kind}: chi-square {statistic}, {counts:?}");
            // Longer captions: every one ends at <EOS> or at the longest length.
            let captions = network.sample(&encoded, &[1, 2], 5, 6, (1, 2), crate::Sampling::default()).unwrap();
            for caption in captions.iter().flatten() {
                assert!(caption.finished == (caption.ids.last() == Some(&2)) && caption.ids.len() <= 6, "{kind}");
                assert!(caption.finished || caption.ids.len() == 6, "{kind}");
                assert_eq!(caption.alphas.len(), if kind.has_attention() { caption.ids.len() } else { 0 }, "{kind}");
            }
            // An image's samples are its seed's alone, whatever else is sampled beside it (rows
            // end at different steps: the last ones run with few others): bit for bit on the
            // LSTM's CPU loop; the same words through candle's products (the attention decoder),
            // which sum a lone row in another order.
            let alone =
                network.sample(&encoded.narrow(0, 1, 1).unwrap(), &[2], 5, 6, (1, 2), crate::Sampling::default());
            let alone = alone.unwrap().remove(0);
            if kind.has_attention() {
                for (a, b) in alone.iter().zip(&captions[1]) {
                    assert_eq!((&a.ids, a.finished), (&b.ids, b.finished), "{kind}");
                    assert!((a.log_prob - b.log_prob).abs() <= 1e-6 * b.log_prob.abs(), "{kind}");
                }
            } else {
                assert_eq!(alone, captions[1], "{kind}");
            }
        }
    }
}
