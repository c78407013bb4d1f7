//! What a checkpoint folder holds, as far as captioning needs it, and how a run folder is searched
//! for one. caption-train writes these folders (adding the optimizer's and the trainer's state)
//! and reads them back through the same functions.
//!
//! ```text
//! RUN/checkpoints/step-N/   model.safetensors  tokenizer.json  trainer.json  (optimizer.safetensors)
//! RUN/best/                 the same files: the best validation score's checkpoint
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::Device;
use caption_model::{DecoderKind, NetworkConfig};
use caption_text::Vocabulary;

use crate::InferError;
use crate::frozen_weights::{FROZEN_WEIGHTS_METADATA_KEY, FrozenWeights};
use serde::{Deserialize, Serialize};

pub use crate::run_layout::{
    BEST_DIR, CHECKPOINT_FILES, CHECKPOINTS_DIR, MODEL_FILE, OPTIMIZER_FILE, TOKENIZER_FILE, TRAINER_FILE,
};
/// The key of model.safetensors' metadata that holds the vocabulary it was trained with: a JSON
/// array of the words by id (specials included). PyTorch's `safe_open(...).metadata()` reads it.
pub const VOCABULARY_METADATA_KEY: &str = "caption.vocabulary";

/// The key of model.safetensors' metadata that holds the model's configuration: a JSON
/// [`ModelMetadata`] (sizes, image size and normalisation, `transform_input`, specials), so that
/// the file alone says how to build the original's `CNNtoRNN` for it.
pub const CONFIG_METADATA_KEY: &str = "caption.config";

pub use crate::safetensors_file::{MAX_MODEL_FILE_BYTES, Tensors, safetensors_problem, serialize_sorted};

/// What model.safetensors holds: tensors, and in its metadata the vocabulary and configuration
/// it was trained with.
pub struct ModelFile {
    /// The tensors, under the original's names.
    pub tensors: Tensors,
    /// The words by id (none in files written before vocabularies were bound, or by others).
    pub vocabulary: Option<Vec<String>>,
    /// The configuration (none in files written before it was stored, or by others).
    pub config: Option<ModelMetadata>,
}

/// A model as a checkpoint's model file describes it, stored in its metadata under
/// [`CONFIG_METADATA_KEY`] and written as `config.json` by an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// The PyTorch class the tensors load into: `CNNtoRNN` (the original's) or `ShowAttendTell`
    /// (Inception v3 as `encoder.inception`, sgrvinod's `DecoderWithAttention` as `decoder`):
    /// [`DecoderKind::architecture`].
    pub architecture: String,
    /// Embedding size (for `CNNtoRNN` also the encoder's output size).
    pub embed_size: usize,
    /// LSTM hidden size (the attention decoder's `decoder_dim`).
    pub hidden_size: usize,
    /// LSTM layers (1 for the attention decoder's cell).
    pub num_layers: usize,
    /// The attention network's size (`ShowAttendTell` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_dim: Option<usize>,
    /// Words, specials included.
    pub vocab_size: usize,
    /// Images are resized to `image_size` × `image_size` (bilinear, antialiased:
    /// torchvision's `Resize((S, S))` on a PIL image).
    pub image_size: u32,
    /// Then scaled to 0..1 and normalised with this mean and standard deviation per channel.
    pub normalize_mean: [f64; 3],
    /// See `normalize_mean`.
    pub normalize_std: [f64; 3],
    /// Whether Inception v3 re-normalises its input as torchvision's ImageNet weights expect
    /// (`inception.transform_input`).
    pub transform_input: bool,
    /// Longest caption generated, in tokens (the original's `max_length`).
    pub max_length: usize,
    /// The special tokens' ids.
    pub specials: BTreeMap<String, u32>,
    /// The training step the weights are from.
    pub step: Option<u64>,
    /// The epochs completed then.
    pub epoch: Option<usize>,
}

impl ModelMetadata {
    /// The description of a model of `config` with a vocabulary of `vocab_size` ids.
    pub fn new(config: &ModelConfig, vocab_size: usize, step: Option<u64>, epoch: Option<usize>) -> Self {
        let specials = Vocabulary::SPECIALS.iter().zip(0u32..).map(|(word, id)| ((*word).to_string(), id)).collect();
        let NetworkConfig { embed_size, hidden_size, num_layers, attention_dim, .. } = config.network(vocab_size);
        Self {
            architecture: config.decoder.architecture().into(),
            embed_size,
            hidden_size,
            num_layers,
            attention_dim,
            vocab_size,
            image_size: config.image_size,
            normalize_mean: [0.5; 3],
            normalize_std: [0.5; 3],
            transform_input: config.transform_input,
            max_length: config.max_length,
            specials,
            step,
            epoch,
        }
    }

    /// The kind of model it describes.
    ///
    /// # Errors
    /// A message naming its architecture and the ones this program knows.
    pub fn kind(&self) -> Result<DecoderKind, String> {
        DecoderKind::from_architecture(&self.architecture).ok_or_else(|| {
            let known: Vec<&str> = DecoderKind::ALL.iter().map(|kind| kind.architecture()).collect();
            format!(
                "holds a {} model; this program trains and captions with {}",
                self.architecture,
                known.join(" and ")
            )
        })
    }

    /// The metadata of a model file holding `vocabulary` and this configuration (with
    /// `"format": "pt"`, which Hugging Face loaders look for).
    pub fn file_metadata(&self, vocabulary: &Vocabulary) -> HashMap<String, String> {
        HashMap::from([
            (VOCABULARY_METADATA_KEY.to_string(), serde_json::to_string(vocabulary.words()).expect("words serialise")),
            (CONFIG_METADATA_KEY.to_string(), serde_json::to_string(self).expect("the configuration serialises")),
            ("format".to_string(), "pt".to_string()),
        ])
    }
}

/// Writes model.safetensors: `tensors` (sorted by name) with `metadata`.
///
/// # Errors
/// A message when the tensors cannot be serialised, or the I/O error.
pub fn write_model_file(path: &Path, tensors: &Tensors, metadata: HashMap<String, String>) -> Result<(), String> {
    let bytes = serialize_sorted(tensors, Some(metadata))?;
    caption_io::write_synced(path, |file| std::io::Write::write_all(file, &bytes)).map_err(|e| e.to_string())
}

/// The first tensor (by name) holding a value that is not a finite number, with that value: a
/// model that diverged in training. Float tensors only; integer counters pass.
///
/// # Errors
/// A candle error reading a tensor.
pub fn first_non_finite(tensors: &Tensors) -> Result<Option<(String, f32)>, candle_core::Error> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let tensor = &tensors[name];
        if !tensor.dtype().is_float() {
            continue;
        }
        let values = tensor.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        if let Some(value) = values.into_iter().find(|v| !v.is_finite()) {
            return Ok(Some((name.clone(), value)));
        }
    }
    Ok(None)
}

/// [`first_non_finite`] as a refusal to use the model of `source`.
///
/// # Errors
/// [`InferError::Checkpoint`] naming the tensor, or a candle error.
pub fn refuse_non_finite(tensors: &Tensors, source: &Path) -> Result<(), InferError> {
    match first_non_finite(tensors)? {
        None => Ok(()),
        Some((name, value)) => Err(InferError::Checkpoint {
            path: source.display().to_string(),
            problem: format!(
                "{name} holds {value}: the model diverged in training and cannot caption, score or export; use \
                 an earlier checkpoint"
            ),
        }),
    }
}

/// Reads model.safetensors: its tensors (with the run's frozen weights when its metadata names
/// them, [`FrozenWeights`]), and the vocabulary and configuration in its metadata.
///
/// # Errors
/// A message saying what is wrong with the file.
pub fn read_model_file(path: &Path) -> Result<ModelFile, String> {
    // A regular file only (a FIFO would block, a device never end), of a size a model can have.
    let bytes = caption_data::read_input_file(path, MAX_MODEL_FILE_BYTES).map_err(|e| e.to_string())?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| safetensors_problem(&bytes, &e))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let vocabulary = match metadata.get(VOCABULARY_METADATA_KEY) {
        Some(words) => Some(
            serde_json::from_str::<Vec<String>>(words)
                .map_err(|e| format!("its metadata {VOCABULARY_METADATA_KEY:?} is not a list of words: {e}"))?,
        ),
        None => None,
    };
    let config = match metadata.get(CONFIG_METADATA_KEY) {
        Some(config) => Some(
            serde_json::from_str::<ModelMetadata>(config)
                .map_err(|e| format!("its metadata {CONFIG_METADATA_KEY:?} is not a model configuration: {e}"))?,
        ),
        None => None,
    };
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| e.to_string())?;
    if let Some(reference) = metadata.get(FROZEN_WEIGHTS_METADATA_KEY) {
        let frozen: FrozenWeights = serde_json::from_str(reference)
            .map_err(|e| format!("its metadata {FROZEN_WEIGHTS_METADATA_KEY:?} does not name a file: {e}"))?;
        let (shared, from) = frozen.load(path)?;
        for (name, tensor) in shared {
            if tensors.insert(name.clone(), tensor).is_some() {
                return Err(format!("{name} is both in it and in its frozen weights {}", from.display()));
            }
        }
    }
    Ok(ModelFile { tensors, vocabulary, config })
}

/// Refuses a tokenizer.json whose words or ids differ from those the model was trained with
/// (`bound`), naming the first id that differs.
///
/// # Errors
/// A message naming the first difference.
pub fn check_bound_vocabulary(bound: &[String], vocabulary: &Vocabulary) -> Result<(), String> {
    let words = vocabulary.words();
    if let Some(id) = (0..bound.len().min(words.len())).find(|&id| bound[id] != words[id]) {
        return Err(format!(
            "{TOKENIZER_FILE} is not the vocabulary the model was trained with: id {id} is {:?} there but {:?} in \
             {MODEL_FILE} (a tokenizer.json from another dataset, or edited); put back the one written with the model",
            words[id], bound[id]
        ));
    }
    if bound.len() != words.len() {
        return Err(format!(
            "{TOKENIZER_FILE} has {} ids but the model was trained with {} (the first {} agree); put back the \
             tokenizer.json written with the model",
            words.len(),
            bound.len(),
            bound.len().min(words.len())
        ));
    }
    Ok(())
}

/// A checkpoint folder's model tensors and the vocabulary they were trained with: model.safetensors
/// and tokenizer.json, refused when tokenizer.json is not the vocabulary bound in the model's
/// metadata ([`check_bound_vocabulary`]) or has another size than `vocab_size` (trainer.json's).
///
/// # Errors
/// A message naming the file that is unreadable or does not fit.
pub fn read_model_and_vocabulary(dir: &Path, vocab_size: usize) -> Result<(Tensors, Vocabulary), String> {
    let file = read_model_file(&dir.join(MODEL_FILE)).map_err(|e| format!("{MODEL_FILE}: {e}"))?;
    let vocabulary = Vocabulary::load(&dir.join(TOKENIZER_FILE)).map_err(|e| e.to_string())?;
    if let Some(bound) = &file.vocabulary {
        check_bound_vocabulary(bound, &vocabulary)?;
    }
    if vocabulary.len() != vocab_size {
        return Err(format!("{TOKENIZER_FILE} has {} ids but {TRAINER_FILE} says {vocab_size}", vocabulary.len()));
    }
    Ok((file.tensors, vocabulary))
}

/// A trained model read from its files: weights, vocabulary and configuration.
pub struct TrainedModel {
    /// The tensors, under the original's names.
    pub tensors: Tensors,
    /// The vocabulary it was trained with.
    pub vocabulary: Vocabulary,
    /// Its configuration.
    pub metadata: ModelMetadata,
    /// Images per forward (the run's batch size; 32 for a model file alone).
    pub batch_size: usize,
    /// The checkpoint folder or model file it was read from.
    pub path: PathBuf,
    /// Its model.safetensors.
    pub model_file: PathBuf,
}

/// Reads the trained model at `path`: a run folder (its `best/` checkpoint, else the newest
/// `checkpoints/step-N`), a checkpoint folder (model.safetensors, the tokenizer.json bound to it,
/// trainer.json), an export folder, or a model.safetensors that describes itself (the vocabulary
/// and configuration in its metadata, as every checkpoint's model file stores them).
///
/// A model whose weights are not all finite numbers (it diverged in training) is refused.
///
/// # Errors
/// [`InferError::Checkpoint`] naming the file that is missing, unreadable or inconsistent, or the
/// tensor that is not finite.
pub fn read_trained_model(path: &Path) -> Result<TrainedModel, InferError> {
    let model = read_trained_model_files(path)?;
    refuse_non_finite(&model.tensors, &model.model_file)?;
    Ok(model)
}

/// [`read_trained_model`] before the weights' values are checked.
fn read_trained_model_files(path: &Path) -> Result<TrainedModel, InferError> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let refuse =
        |problem: &str| Err(InferError::Checkpoint { path: path.display().to_string(), problem: problem.into() });
    if !path.exists() {
        return refuse("no such file or folder");
    }
    if path.is_file() && [".pth.tar", ".pth", ".pt", ".tar", ".ckpt"].iter().any(|end| name.ends_with(end)) {
        return refuse(
            "a PyTorch checkpoint: give it with `--original FILE --captions CAPTIONS` (the captions file it was \
             trained on), or convert it with `cargo xtask import-checkpoint`",
        );
    }
    if path.is_file() {
        return read_described_model_file(path);
    }
    let dir = find_checkpoint(path).ok_or_else(|| InferError::Checkpoint {
        path: path.display().to_string(),
        problem: "no checkpoint here (expected a run folder, a checkpoint folder with trainer.json, or a folder \
                  with a model.safetensors written by caption)"
            .into(),
    })?;
    let problem = |problem: String| InferError::Checkpoint { path: dir.display().to_string(), problem };
    if !dir.join(TRAINER_FILE).is_file() && dir.join(MODEL_FILE).is_file() {
        let mut model = read_described_model_file(&dir.join(MODEL_FILE)).map_err(|e| match e {
            InferError::Checkpoint { problem: detail, .. } => {
                problem(format!("{TRAINER_FILE} is missing, and {MODEL_FILE} cannot stand alone: {detail}"))
            }
            other => other,
        })?;
        model.path = dir;
        return Ok(model);
    }
    for file in [MODEL_FILE, TOKENIZER_FILE, TRAINER_FILE] {
        if !dir.join(file).is_file() {
            return Err(problem(format!("{file} is missing")));
        }
    }
    let settings = read_model_settings(&dir.join(TRAINER_FILE)).map_err(|e| problem(format!("{TRAINER_FILE}: {e}")))?;
    let (tensors, vocabulary) = read_model_and_vocabulary(&dir, settings.vocab_size).map_err(problem)?;
    let metadata = ModelMetadata::new(&settings.config, vocabulary.len(), settings.step, settings.epoch);
    Ok(TrainedModel {
        tensors,
        vocabulary,
        metadata,
        batch_size: settings.config.batch_size,
        model_file: dir.join(MODEL_FILE),
        path: dir,
    })
}

/// A model.safetensors with its vocabulary and configuration in its metadata.
fn read_described_model_file(path: &Path) -> Result<TrainedModel, InferError> {
    let problem = |problem: String| InferError::Checkpoint { path: path.display().to_string(), problem };
    let file = read_model_file(path).map_err(problem)?;
    let original_names = !file.tensors.is_empty()
        && file.tensors.keys().all(|name| name.starts_with("encoderCNN.") || name.starts_with("decoderRNN."));
    let missing = |key: &str| {
        if original_names {
            return problem(
                "the PyTorch original's weights without their vocabulary (as import-checkpoint writes them): caption \
                 with `--original FILE --captions CAPTIONS` (the captions file it was trained on)"
                    .into(),
            );
        }
        problem(format!(
            "its metadata has no {key:?} (a model file from an older caption, or another program's): give its \
             checkpoint folder instead"
        ))
    };
    let words = file.vocabulary.ok_or_else(|| missing(VOCABULARY_METADATA_KEY))?;
    let metadata = file.config.ok_or_else(|| missing(CONFIG_METADATA_KEY))?;
    metadata.kind().map_err(problem)?;
    let specials = Vocabulary::SPECIALS.len();
    if words.len() < specials || words[..specials] != Vocabulary::SPECIALS {
        return Err(problem(format!(
            "its vocabulary does not start with {} (not a vocabulary of the original's ids)",
            Vocabulary::SPECIALS.join(", ")
        )));
    }
    // The threshold and ordering it was built with are not stored: 0 (unknown) and frequency, as a
    // tokenizer.json written elsewhere reads.
    let vocabulary = Vocabulary::from_words(words[specials..].to_vec(), 0, caption_text::Ordering::Frequency)
        .map_err(|e| problem(e.to_string()))?;
    if vocabulary.len() != metadata.vocab_size {
        return Err(problem(format!(
            "its vocabulary has {} ids but its configuration says {}",
            vocabulary.len(),
            metadata.vocab_size
        )));
    }
    Ok(TrainedModel {
        tensors: file.tensors,
        vocabulary,
        metadata,
        batch_size: 32,
        path: path.to_path_buf(),
        model_file: path.to_path_buf(),
    })
}

/// The settings in a checkpoint's trainer.json that captioning needs (its `config`, in
/// caption-train's `TrainConfig` names, and the vocabulary size).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelSettings {
    /// The decoder's sizes and the encoder's input.
    pub config: ModelConfig,
    /// The vocabulary size the model was trained with.
    pub vocab_size: usize,
    /// The training step the checkpoint was written at.
    #[serde(default)]
    pub step: Option<u64>,
    /// The epochs completed when it was written.
    #[serde(default)]
    pub epoch: Option<usize>,
}

/// The model's part of a run's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Which decoder (runs from before there was a choice have the LSTM).
    #[serde(default)]
    pub decoder: DecoderKind,
    /// The attention decoder's sizes (`decoder = "attention"`).
    #[serde(default)]
    pub attention: AttentionSizes,
    /// Embedding size (also the image feature size).
    pub embed_size: usize,
    /// LSTM hidden size.
    pub hidden_size: usize,
    /// LSTM layers.
    pub num_layers: usize,
    /// The side images are resized to.
    pub image_size: u32,
    /// Whether Inception v3 re-normalises its input as torchvision's pretrained weights expect.
    pub transform_input: bool,
    /// The longest caption generated.
    pub max_length: usize,
    /// Images per forward.
    pub batch_size: usize,
}

/// The attention decoder's sizes in a run's configuration (its `[attention]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttentionSizes {
    /// Word embedding size.
    pub embed_dim: usize,
    /// The attention network's size.
    pub attention_dim: usize,
    /// The LSTM cell's size.
    pub decoder_dim: usize,
}

impl ModelConfig {
    /// The network these settings describe, with a vocabulary of `vocab_size` ids (no dropout:
    /// what trains sets its own).
    pub fn network(&self, vocab_size: usize) -> NetworkConfig {
        let attention = &self.attention;
        let (embed_size, hidden_size, num_layers, attention_dim) = match self.decoder {
            DecoderKind::Lstm => (self.embed_size, self.hidden_size, self.num_layers, None),
            DecoderKind::Attention => (attention.embed_dim, attention.decoder_dim, 1, Some(attention.attention_dim)),
        };
        NetworkConfig {
            kind: self.decoder,
            vocab_size,
            embed_size,
            hidden_size,
            num_layers,
            attention_dim,
            dropout: 0.0,
        }
    }
}

impl Default for AttentionSizes {
    /// The tutorial's: 512 each.
    fn default() -> Self {
        let size = caption_model::attention::TUTORIAL_SIZE;
        Self { embed_dim: size, attention_dim: size, decoder_dim: size }
    }
}

/// Reads trainer.json's [`ModelSettings`].
///
/// # Errors
/// A message saying what is wrong with the file.
pub fn read_model_settings(path: &Path) -> Result<ModelSettings, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Whether `dir` holds a checkpoint, complete or not: one of its files (a folder holding only
/// what somebody else put there is not one).
pub fn is_checkpoint_folder(dir: &Path) -> bool {
    CHECKPOINT_FILES.iter().any(|file| dir.join(file).is_file())
}

/// The `checkpoints/step-N` folders of a run, newest (highest step) first.
pub fn list_checkpoints(run: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(run.join(CHECKPOINTS_DIR)) else { return Vec::new() };
    let mut dirs: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = crate::run_layout::checkpoint_step(&name)?;
            is_checkpoint_folder(&e.path()).then(|| (step, e.path()))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// The checkpoint to caption with at `path`: `path` itself when it is a checkpoint folder (or a
/// folder with only a model.safetensors that describes itself, such as an export), else the
/// run's `best/`, else its newest `checkpoints/step-N`.
pub fn find_checkpoint(path: &Path) -> Option<PathBuf> {
    if path.join(TRAINER_FILE).is_file() || (path.join(MODEL_FILE).is_file() && !path.join(BEST_DIR).exists()) {
        return Some(path.to_path_buf());
    }
    let best = path.join(BEST_DIR);
    if best.join(TRAINER_FILE).is_file() {
        return Some(best);
    }
    list_checkpoints(path).into_iter().next()
}
