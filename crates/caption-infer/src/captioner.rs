//! [`Captioner`]: a trained model ready to caption, loaded from a run, a checkpoint folder, or the
//! PyTorch original's imported weights with its vocabulary.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use caption_data::{ImageTransform, PreparedDataset, Progress};
use caption_model::{
    BeamConfig, DECODER_PREFIX, DecoderConfig, DecoderKind, Hypothesis, Network, NetworkConfig, Sampling,
};
use caption_text::Vocabulary;
use image::RgbImage;

use crate::InferError;
use crate::attention_map::GridGeometry;
use crate::checkpoint_files::{TrainedModel, read_trained_model};
use crate::images::{dataset_images, pictures};

/// How captions are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoding {
    /// The most likely word at each step (the original's `caption_image`).
    Greedy,
    /// Beam search with this many hypotheses and length normalisation exponent.
    Beam {
        /// Hypotheses kept per image.
        size: usize,
        /// Length normalisation exponent (0: none).
        length_penalty: f32,
    },
}

/// A generated caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Word ids, specials removed.
    pub ids: Vec<u32>,
    /// The words.
    pub words: Vec<String>,
    /// Summed log-probability of the chosen words (`<EOS>` included when it was chosen).
    pub log_prob: f32,
    /// Whether the caption ended with `<EOS>` (not cut at the longest caption).
    pub finished: bool,
    /// An attention model's weights over the encoder's grid for each of `words` (row-major
    /// cells × cells, summing to 1); empty for the original's model.
    pub alphas: Vec<Vec<f32>>,
    /// Where the grid's cells look in the image (with `alphas`; set by a [`Captioner`], which
    /// knows the encoder's input size).
    pub grid: Option<GridGeometry>,
}

impl Generated {
    /// The caption a decoder's output is (ids ending with `<EOS>` when finished): the specials
    /// and their attention weights removed, the words looked up.
    pub fn of(vocabulary: &Vocabulary, hypothesis: Hypothesis) -> Self {
        let Hypothesis { ids, log_prob, alphas, .. } = hypothesis;
        let finished = ids.last() == Some(&Vocabulary::EOS);
        let kept: Vec<bool> = ids.iter().map(|&id| id >= Vocabulary::UNK).collect();
        let alphas = alphas.into_iter().zip(&kept).filter(|(_, keep)| **keep).map(|(alpha, _)| alpha).collect();
        let ids: Vec<u32> = ids.into_iter().filter(|&id| id >= Vocabulary::UNK).collect();
        let words = vocabulary.decode(&ids);
        Self { ids, words, log_prob, finished, alphas, grid: None }
    }

    /// The caption as a person writes it ("a dog's ball.", [`caption_text::detokenize`]), or with
    /// `tokens` the model's tokens separated by spaces ("a dog 's ball .").
    pub fn text(&self, tokens: bool) -> String {
        if tokens { self.words.join(" ") } else { caption_text::detokenize(&self.words) }
    }

    /// The caption as JSON: `caption` ([`text`](Self::text)), `tokens`, `log_prob`, `finished`.
    pub fn to_json(&self, tokens: bool) -> serde_json::Value {
        serde_json::json!({"caption": self.text(tokens), "tokens": self.words, "log_prob": self.log_prob,
                           "finished": self.finished})
    }
}

/// A model and its vocabulary, in eval mode.
pub struct Captioner {
    /// The model: the original's, or the attention model.
    pub model: Network,
    /// The model's sizes.
    pub config: NetworkConfig,
    /// Where it runs.
    pub device: Device,
    /// The vocabulary.
    pub vocabulary: Vocabulary,
    /// The eval transform (resize to the training image size, normalise).
    pub transform: ImageTransform,
    /// Longest caption.
    pub max_length: usize,
    /// Images per forward.
    pub batch_size: usize,
    /// Where the weights came from, for reports: the checkpoint folder (with its step and epoch)
    /// or the original's file.
    pub source: String,
}

impl Captioner {
    /// Loads from a run folder (its `best/` checkpoint, else the newest valid one), a checkpoint
    /// folder, an export folder, or a model.safetensors that describes itself
    /// ([`read_trained_model`]).
    ///
    /// # Errors
    /// [`InferError::Checkpoint`] when nothing loadable is there, or the model, its vocabulary and
    /// its settings disagree.
    pub fn from_run_or_checkpoint(path: &Path, device: &Device) -> Result<Self, InferError> {
        Self::new(read_trained_model(path)?, device)
    }

    /// A captioner of a trained model read from its files.
    ///
    /// # Errors
    /// [`InferError::Weights`] when a tensor is missing or misshapen.
    pub fn new(trained: TrainedModel, device: &Device) -> Result<Self, InferError> {
        let metadata = &trained.metadata;
        let source = trained.model_file.display().to_string();
        let kind = metadata.kind().map_err(|problem| InferError::Checkpoint { path: source.clone(), problem })?;
        let config = NetworkConfig {
            kind,
            vocab_size: trained.vocabulary.len(),
            embed_size: metadata.embed_size,
            hidden_size: metadata.hidden_size,
            num_layers: metadata.num_layers,
            attention_dim: metadata.attention_dim,
            dropout: 0.0,
        };
        let model = load_model(trained.tensors, &config, metadata.transform_input, device, &source)?;
        let at = match (metadata.step, metadata.epoch) {
            (Some(step), Some(epoch)) => format!(" (step {step}, epoch {epoch})"),
            _ => String::new(),
        };
        Ok(Self {
            model,
            config,
            device: device.clone(),
            vocabulary: trained.vocabulary,
            transform: ImageTransform::eval(metadata.image_size),
            max_length: metadata.max_length,
            batch_size: trained.batch_size,
            source: format!("{}{at}", trained.path.display()),
        })
    }

    /// Loads the PyTorch original's weights (a state dict with its names, e.g. from
    /// `cargo xtask import-checkpoint` or read from `my_checkpoint.pth.tar`) with the vocabulary
    /// it was trained with (the original ordering over its captions.txt). Sizes come from the tensors;
    /// the original's inference setup applies (299 × 299, `transform_input`, 50 words).
    ///
    /// # Errors
    /// [`InferError::Weights`] when a tensor is missing or the vocabulary does not fit.
    pub fn from_original(
        tensors: &HashMap<String, Tensor>,
        vocabulary: Vocabulary,
        source: &str,
        device: &Device,
    ) -> Result<Self, InferError> {
        let dims = |name: &str| -> Result<Vec<usize>, InferError> {
            tensors.get(name).map(|t| t.dims().to_vec()).ok_or_else(|| {
                InferError::Weights(format!("{source}: no tensor {name} (not the original's CNNtoRNN?)"))
            })
        };
        let embed = dims(&format!("{DECODER_PREFIX}embed.weight"))?;
        let hidden = dims(&format!("{DECODER_PREFIX}lstm.weight_hh_l0"))?;
        let num_layers =
            (0..).take_while(|l| tensors.contains_key(&format!("{DECODER_PREFIX}lstm.weight_hh_l{l}"))).count();
        if embed[0] != vocabulary.len() {
            return Err(InferError::Weights(format!(
                "{source} was trained with a vocabulary of {} ids, the one given has {} (build it with --ordering original from the captions file it was trained on)",
                embed[0],
                vocabulary.len()
            )));
        }
        let decoder = DecoderConfig { embed_size: embed[1], hidden_size: hidden[1], vocab_size: embed[0], num_layers };
        crate::checkpoint_files::refuse_non_finite(tensors, Path::new(source))?;
        let config = NetworkConfig::cnn_to_rnn(decoder);
        let model = load_model(tensors.clone(), &config, true, device, source)?;
        let (transform, max_length, batch_size) = (ImageTransform::eval(299), 50, 32);
        let source = format!("{source} (the PyTorch original's weights)");
        Ok(Self { model, config, device: device.clone(), vocabulary, transform, max_length, batch_size, source })
    }

    /// Loads the PyTorch original's checkpoint file (its `my_checkpoint.pth.tar`, or a
    /// safetensors file with its names) with the vocabulary the original builds from `captions`
    /// (its captions.txt) at `threshold`: [`from_original`](Self::from_original).
    ///
    /// # Errors
    /// [`InferError`] naming the file that cannot be read or does not fit.
    pub fn from_original_files(
        checkpoint: &Path,
        captions: &Path,
        threshold: usize,
        device: &Device,
    ) -> Result<Self, InferError> {
        let vocabulary = crate::original_vocabulary(captions, threshold)?;
        let tensors = if checkpoint.extension().is_some_and(|e| e == "safetensors") {
            candle_core::safetensors::load(checkpoint, &Device::Cpu)
                .map_err(|e| InferError::Weights(format!("{}: {e}", checkpoint.display())))?
        } else {
            // Its errors name the file.
            caption_model::read_original_checkpoint(checkpoint).map_err(|e| InferError::Weights(e.to_string()))?
        };
        Self::from_original(&tensors, vocabulary, &checkpoint.display().to_string(), device)
    }

    /// Checks that the model gives each word weights over the image (an attention model), for
    /// `what` asks for them.
    ///
    /// # Errors
    /// [`InferError::Evaluation`] naming the model's architecture and those that have attention.
    pub fn check_attention(&self, what: &str) -> Result<(), InferError> {
        let kind = self.model.kind();
        if kind.has_attention() {
            return Ok(());
        }
        let attending: Vec<&str> =
            DecoderKind::ALL.iter().filter(|k| k.has_attention()).map(|k| k.architecture()).collect();
        Err(InferError::Evaluation(format!(
            "{what} needs an attention model ({}); {} holds a {} model, which has no attention weights",
            attending.join(", "),
            self.source,
            kind.architecture()
        )))
    }

    /// Checks a beam width against the model: at least 1, and fewer hypotheses than the
    /// vocabulary has ids (a wider beam holds nothing more, and the search needs a word to
    /// extend each hypothesis with).
    ///
    /// # Errors
    /// [`InferError::Evaluation`] saying the bound.
    pub fn check_beam_width(&self, size: usize) -> Result<(), InferError> {
        check_beam_width(self.vocabulary.len(), size)
    }

    /// Encoder outputs (eval mode) of decoded pictures: the image embeddings (images × embed)
    /// for the original's model, the grids (images × positions × 2048) for the attention model.
    ///
    /// # Errors
    /// A candle error.
    pub fn encode_images(&self, images: &[RgbImage]) -> Result<Tensor, InferError> {
        self.encode_tensor(&pictures(images, &self.transform, &self.device)?)
    }

    /// The encoder in eval mode on an images tensor.
    fn encode_tensor(&self, images: &Tensor) -> Result<Tensor, InferError> {
        Ok(self.model.encode(images)?)
    }

    /// Captions for encoder outputs ([`encode_images`](Self::encode_images)).
    ///
    /// # Errors
    /// A candle error.
    pub fn decode(&self, encoded: &Tensor, decoding: Decoding) -> Result<Vec<Generated>, InferError> {
        let generated = decode(&self.model, &self.vocabulary, encoded, decoding, self.max_length)?;
        Ok(generated.into_iter().map(|g| self.located(g)).collect())
    }

    /// `generated` with the geometry of the grid its weights are over (Inception v3's at the
    /// captioner's image size).
    fn located(&self, mut generated: Generated) -> Generated {
        if let Some(first) = generated.alphas.first() {
            let cells = (first.len() as f64).sqrt().round() as usize;
            generated.grid = Some(GridGeometry::inception_v3(self.transform.resize, cells));
        }
        generated
    }

    /// The `n` best captions of each picture by beam search with `beam_size` hypotheses, best
    /// first ([`DecoderRNN::beam_search_n_best`](caption_model::DecoderRNN::beam_search_n_best):
    /// finished captions by score, then unfinished ones; the attention model's search ranks them
    /// alike), in batches.
    ///
    /// # Errors
    /// [`InferError::Evaluation`] when `n` is 0 or above `beam_size`; a candle error.
    pub fn caption_images_n_best(
        &self,
        images: &[RgbImage],
        beam_size: usize,
        length_penalty: f32,
        n: usize,
    ) -> Result<Vec<Vec<Generated>>, InferError> {
        if n == 0 || n > beam_size {
            return Err(InferError::Evaluation(format!(
                "{n} captions per image asked from a beam of {beam_size}: the beam keeps at most {beam_size} (ask 1 to {beam_size}, or widen the beam)"
            )));
        }
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch_size.max(1)) {
            out.extend(self.decode_n_best(&self.encode_images(chunk)?, beam_size, length_penalty, n)?);
        }
        Ok(out)
    }

    /// [`caption_images_n_best`](Self::caption_images_n_best) for encoder outputs
    /// ([`encode_images`](Self::encode_images)); `n` is not checked against the beam here.
    ///
    /// # Errors
    /// A candle error.
    pub fn decode_n_best(
        &self,
        encoded: &Tensor,
        beam_size: usize,
        length_penalty: f32,
        n: usize,
    ) -> Result<Vec<Vec<Generated>>, InferError> {
        let config = BeamConfig { beam_size, max_length: self.max_length, length_penalty, eos: Vocabulary::EOS };
        let ranked = self.model.beam_search_n_best(encoded, config, Vocabulary::SOS, n)?;
        Ok(ranked
            .into_iter()
            .map(|r| r.into_iter().map(|h| self.located(Generated::of(&self.vocabulary, h))).collect())
            .collect())
    }

    /// `n` captions of each picture drawn from the model's distribution as `sampling` says
    /// ([`Network::sample`](caption_model::Network::sample)), picture `i`'s from `seeds[i]` (the
    /// same seed, the same captions, whatever the batch), each in the order drawn, in batches.
    ///
    /// # Errors
    /// [`InferError::Evaluation`] when `n` is 0, the seeds are not one per picture, or a
    /// sampling setting is out of range; a candle error.
    pub fn caption_images_sampled(
        &self,
        images: &[RgbImage],
        seeds: &[u64],
        n: usize,
        sampling: Sampling,
    ) -> Result<Vec<Vec<Generated>>, InferError> {
        if n == 0 {
            return Err(InferError::Evaluation("sampling 0 captions per image: ask for at least 1".into()));
        }
        if seeds.len() != images.len() {
            return Err(InferError::Evaluation(format!("{} seeds for {} images", seeds.len(), images.len())));
        }
        sampling.check().map_err(InferError::Evaluation)?;
        let batch = self.batch_size.max(1);
        let mut out = Vec::with_capacity(images.len());
        for (chunk, seeds) in images.chunks(batch).zip(seeds.chunks(batch)) {
            out.extend(self.decode_sampled(&self.encode_images(chunk)?, seeds, n, sampling)?);
        }
        Ok(out)
    }

    /// [`caption_images_sampled`](Self::caption_images_sampled) for encoder outputs
    /// ([`encode_images`](Self::encode_images)), row `i` drawing from `seeds[i]`.
    ///
    /// # Errors
    /// Sampling settings out of range, or a candle error.
    pub fn decode_sampled(
        &self,
        encoded: &Tensor,
        seeds: &[u64],
        n: usize,
        sampling: Sampling,
    ) -> Result<Vec<Vec<Generated>>, InferError> {
        let specials = (Vocabulary::SOS, Vocabulary::EOS);
        let drawn = self.model.sample(encoded, seeds, n, self.max_length, specials, sampling)?;
        Ok(drawn
            .into_iter()
            .map(|d| d.into_iter().map(|h| self.located(Generated::of(&self.vocabulary, h))).collect())
            .collect())
    }

    /// Captions for pictures, in batches.
    ///
    /// # Errors
    /// A candle error.
    pub fn caption_images(&self, images: &[RgbImage], decoding: Decoding) -> Result<Vec<Generated>, InferError> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch_size.max(1)) {
            out.extend(self.decode(&self.encode_images(chunk)?, decoding)?);
        }
        Ok(out)
    }

    /// Captions for dataset images (by image row), in batches, with progress.
    ///
    /// # Errors
    /// A data or candle error.
    pub fn caption_dataset(
        &self,
        dataset: &PreparedDataset,
        image_rows: &[usize],
        decoding: Decoding,
        progress: &dyn Progress,
    ) -> Result<Vec<Generated>, InferError> {
        let mut out = Vec::with_capacity(image_rows.len());
        progress.start_counting("captioning", image_rows.len() as u64, "images");
        for chunk in image_rows.chunks(self.batch_size.max(1)) {
            let images = dataset_images(dataset, chunk, &self.transform, 0, &self.device)?;
            out.extend(self.decode(&self.encode_tensor(&images)?, decoding)?);
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        Ok(out)
    }
}

/// The model of `config` from `tensors` (its state dict names; other tensors, such as BatchNorm's
/// `num_batches_tracked`, are ignored), in float32 on `device`.
fn load_model(
    tensors: HashMap<String, Tensor>,
    config: &NetworkConfig,
    transform_input: bool,
    device: &Device,
    source: &str,
) -> Result<Network, InferError> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Network::new(vb, config, transform_input).map_err(|e| InferError::Weights(format!("{source}: {e}")))
}

/// [`Captioner::check_beam_width`] for a vocabulary of `ids` ids.
///
/// # Errors
/// [`InferError::Evaluation`] saying the bound.
pub fn check_beam_width(ids: usize, size: usize) -> Result<(), InferError> {
    if size == 0 || size >= ids {
        return Err(InferError::Evaluation(format!(
            "a beam of {size}: the model's vocabulary has {ids} ids, so a beam keeps 1 to {} hypotheses",
            ids.saturating_sub(1).max(1)
        )));
    }
    Ok(())
}

/// Captions (at most `max_length` words) for encoder outputs (`encoded`: what
/// [`Captioner::encode_images`] returns for `model`) by `decoding`, with `<SOS>`, `<EOS>` and
/// `<PAD>` removed and the words looked up: what a [`Captioner`] and a trainer's validation both
/// run.
///
/// # Errors
/// A candle error.
pub fn decode(
    model: &Network,
    vocabulary: &Vocabulary,
    encoded: &Tensor,
    decoding: Decoding,
    max_length: usize,
) -> Result<Vec<Generated>, InferError> {
    let raw: Vec<Hypothesis> = match decoding {
        Decoding::Greedy => model.greedy(encoded, max_length, Vocabulary::SOS, Vocabulary::EOS)?,
        Decoding::Beam { size, length_penalty } => {
            let config = BeamConfig { beam_size: size, max_length, length_penalty, eos: Vocabulary::EOS };
            caption_model::beam::best_of(model.beam_search_n_best(encoded, config, Vocabulary::SOS, 1)?)
        }
    };
    Ok(raw.into_iter().map(|hypothesis| Generated::of(vocabulary, hypothesis)).collect())
}
