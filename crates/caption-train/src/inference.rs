//! [`Captioner`]: a trained model ready to caption, loaded from a run, a checkpoint folder, or the
//! PyTorch original's imported weights with its vocabulary.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use caption_data::{ImageTransform, PreparedDataset, Progress};
use caption_model::{BeamConfig, DECODER_PREFIX, DecoderConfig};
use caption_text::Vocabulary;
use image::RgbImage;

use crate::TrainError;
use crate::checkpoint::{self, TRAINER_FILE};
use crate::model::TrainModel;
use crate::run_folder::BEST_DIR;

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
    /// Summed log-probability of the chosen words.
    pub log_prob: f32,
}

/// A model and its vocabulary, in eval mode.
pub struct Captioner {
    /// The model.
    pub model: TrainModel,
    /// The vocabulary.
    pub vocabulary: Vocabulary,
    /// The eval transform (resize to the training image size, normalise).
    pub transform: ImageTransform,
    /// Longest caption.
    pub max_length: usize,
    /// Images per forward.
    pub batch_size: usize,
}

impl Captioner {
    /// Loads from a run folder (its `best/` checkpoint, else the newest valid one) or from a
    /// checkpoint folder.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] when nothing loadable is there.
    pub fn from_run_or_checkpoint(path: &Path, device: &Device) -> Result<Self, TrainError> {
        let dir = if path.join(TRAINER_FILE).is_file() {
            path.to_path_buf()
        } else if path.join(BEST_DIR).join(TRAINER_FILE).is_file() {
            path.join(BEST_DIR)
        } else {
            checkpoint::list_checkpoints(path).into_iter().next().ok_or_else(|| TrainError::Checkpoint {
                path: path.display().to_string(),
                problem: "no checkpoint here (expected a run folder or a checkpoint folder with trainer.json)".into(),
            })?
        };
        let checkpoint = checkpoint::read_checkpoint(&dir)?;
        let config = &checkpoint.state.config;
        let decoder = DecoderConfig {
            embed_size: config.embed_size,
            hidden_size: config.hidden_size,
            vocab_size: checkpoint.vocabulary.len(),
            num_layers: config.num_layers,
        };
        let model = TrainModel::uninitialized(decoder, config.transform_input, device)?;
        model.load_state_dict(&checkpoint.model, &dir.display().to_string())?;
        Ok(Self {
            model,
            vocabulary: checkpoint.vocabulary,
            transform: ImageTransform::eval(config.image_size),
            max_length: config.max_length,
            batch_size: config.batch_size,
        })
    }

    /// Loads the PyTorch original's weights (a state dict with its names, e.g. from
    /// `cargo xtask import-checkpoint` or read from `my_checkpoint.pth.tar`) with the vocabulary
    /// it was trained with (seed ordering over its captions.txt). Sizes come from the tensors;
    /// the original's inference setup applies (299 × 299, `transform_input`, 50 words).
    ///
    /// # Errors
    /// [`TrainError::Weights`] when a tensor is missing or the vocabulary does not fit.
    pub fn from_original(
        tensors: &HashMap<String, Tensor>,
        vocabulary: Vocabulary,
        source: &str,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let dims = |name: &str| -> Result<Vec<usize>, TrainError> {
            tensors.get(name).map(|t| t.dims().to_vec()).ok_or_else(|| {
                TrainError::Weights(format!("{source}: no tensor {name} (not the original's CNNtoRNN?)"))
            })
        };
        let embed = dims(&format!("{DECODER_PREFIX}embed.weight"))?;
        let hidden = dims(&format!("{DECODER_PREFIX}lstm.weight_hh_l0"))?;
        let num_layers =
            (0..).take_while(|l| tensors.contains_key(&format!("{DECODER_PREFIX}lstm.weight_hh_l{l}"))).count();
        if embed[0] != vocabulary.len() {
            return Err(TrainError::Weights(format!(
                "{source} was trained with a vocabulary of {} ids, the one given has {} (build it with --ordering original from the captions file it was trained on)",
                embed[0],
                vocabulary.len()
            )));
        }
        let decoder = DecoderConfig { embed_size: embed[1], hidden_size: hidden[1], vocab_size: embed[0], num_layers };
        let model = TrainModel::uninitialized(decoder, true, device)?;
        let mut complete = tensors.clone();
        // Older state dicts may lack BatchNorm's counters; they are not model state here.
        complete.retain(|name, _| !name.ends_with("num_batches_tracked"));
        model.load_state_dict(&complete, source)?;
        Ok(Self { model, vocabulary, transform: ImageTransform::eval(299), max_length: 50, batch_size: 32 })
    }

    /// Encoder outputs (eval mode) of decoded pictures.
    ///
    /// # Errors
    /// A candle error.
    pub fn encode_images(&self, images: &[RgbImage]) -> Result<Tensor, TrainError> {
        let side = self.transform.output_size() as usize;
        let pixels = self
            .transform
            .apply_batch(images, 0, Ok::<_, std::convert::Infallible>)
            .expect("images at hand always load");
        let batch = Tensor::from_vec(pixels, (images.len(), 3, side, side), &self.model.device)?;
        self.encode_tensor(&batch)
    }

    fn encode_tensor(&self, images: &Tensor) -> Result<Tensor, TrainError> {
        let encoder = &self.model.model.encoder;
        let pooled = encoder.inception().forward_t(images, false)?.pooled.detach();
        Ok(encoder.features_from_pooled(&pooled, None)?.detach())
    }

    /// Captions for encoder outputs.
    ///
    /// # Errors
    /// A candle error.
    pub fn decode(&self, features: &Tensor, decoding: Decoding) -> Result<Vec<Generated>, TrainError> {
        let raw: Vec<(Vec<u32>, f32)> = match decoding {
            Decoding::Greedy => self.model.model.decoder.greedy(features, self.max_length, Vocabulary::EOS)?,
            Decoding::Beam { size, length_penalty } => self
                .model
                .model
                .decoder
                .beam_search(
                    features,
                    BeamConfig { beam_size: size, max_length: self.max_length, length_penalty, eos: Vocabulary::EOS },
                )?
                .into_iter()
                .map(|h| (h.ids, h.log_prob))
                .collect(),
        };
        Ok(raw
            .into_iter()
            .map(|(ids, log_prob)| {
                let ids: Vec<u32> = ids.into_iter().filter(|&id| id >= Vocabulary::UNK).collect();
                let words = self.vocabulary.decode(&ids);
                Generated { ids, words, log_prob }
            })
            .collect())
    }

    /// Captions for pictures, in batches.
    ///
    /// # Errors
    /// A candle error.
    pub fn caption_images(&self, images: &[RgbImage], decoding: Decoding) -> Result<Vec<Generated>, TrainError> {
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
    ) -> Result<Vec<Generated>, TrainError> {
        let mut out = Vec::with_capacity(image_rows.len());
        progress.start("captioning", image_rows.len() as u64);
        for chunk in image_rows.chunks(self.batch_size.max(1)) {
            let images = crate::features::images_tensor(dataset, chunk, &self.transform, 0, &self.model.device)?;
            out.extend(self.decode(&self.encode_tensor(&images)?, decoding)?);
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        Ok(out)
    }
}
