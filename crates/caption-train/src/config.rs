//! [`TrainConfig`]: every setting of a run, read from TOML with command-line overrides and saved
//! with the run.

use std::path::PathBuf;

use caption_infer::checkpoint_files::{AttentionSizes, ModelConfig};
use caption_model::{DecoderKind, HeadInput, NetworkConfig};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// What trains and what the encoder sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The encoder's pooled features are computed once (eval mode) and cached; `fc` and the
    /// decoder train on them. The default: an epoch costs the decoder's time only.
    Frozen,
    /// The original's setup: every batch runs Inception v3 in train mode (BatchNorm batch
    /// statistics, running statistics updated) on random crops; only `fc` and the decoder train.
    /// Written `original`; `seed`, its name before, still reads.
    #[serde(alias = "seed")]
    Original,
    /// As `original`, but the whole network trains: Inception v3 too, with its own (lower) learning
    /// rate, `cnn_learning_rate`.
    Finetune,
}

/// Where the Inception v3 weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderWeights {
    /// Random weights from the seed (offline); BatchNorm statistics recalibrated on training
    /// images before features are computed.
    Random,
    /// torchvision's ImageNet weights from the Hugging Face Hub (timm/inception_v3.tv_in1k).
    Hub,
    /// A safetensors file with torchvision names.
    File(PathBuf),
}

impl std::str::FromStr for EncoderWeights {
    type Err = std::convert::Infallible;

    /// `hub`, `random`, or any other text as the path of a weights file.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "hub" => Self::Hub,
            "random" => Self::Random,
            path => Self::File(PathBuf::from(path)),
        })
    }
}

/// A setting's value from its name in config.toml (`"frozen"`, `"adamw"`, …; the names serde
/// reads there, aliases included), for command-line options that set it.
///
/// # Errors
/// A message naming the value that is not one of the setting's.
pub fn parse_setting<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, String> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name)).map_err(|e| e.to_string())
}

/// Optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (the original: lr 3e-4, no weight decay); weight decay added to the gradient.
    Adam,
    /// AdamW: decoupled weight decay.
    AdamW,
}

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Cosine decay from the learning rate to zero over all steps.
    Cosine,
}

/// The attention decoder's settings (the `[attention]` table; `decoder = "attention"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttentionSettings {
    /// Word embedding size (the tutorial: 512).
    pub embed_dim: usize,
    /// The attention network's size (512).
    pub attention_dim: usize,
    /// The LSTM cell's size (512).
    pub decoder_dim: usize,
    /// Dropout before the output layer (0.5).
    pub dropout: f64,
    /// Weight of the doubly stochastic regularisation `alpha_c · mean((1 − Σ_t α_t)²)` (1).
    pub alpha_c: f64,
    /// Frozen mode: store the cached grids as float16 (half the disk and page cache; each value
    /// rounded to 11 significant bits) instead of float32.
    pub cache_float16: bool,
}

impl Default for AttentionSettings {
    fn default() -> Self {
        let size = caption_model::attention::TUTORIAL_SIZE;
        Self {
            embed_dim: size,
            attention_dim: size,
            decoder_dim: size,
            dropout: 0.5,
            alpha_c: 1.0,
            cache_float16: false,
        }
    }
}

/// What a run optimises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Cross-entropy of the reference captions, teacher-forced (the original's training).
    #[default]
    #[serde(alias = "xe")]
    CrossEntropy,
    /// Self-critical sequence training on CIDEr-D, from a cross-entropy model (`[scst]`).
    Scst,
}

/// What a sample's reward is compared with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// The reward of the greedy caption of the same image (Rennie et al. 2017).
    Greedy,
    /// The mean reward of the image's other samples (Luo 2020); needs two samples or more.
    #[default]
    Mean,
}

/// Self-critical training's settings (the `[scst]` table; `objective = "scst"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScstSettings {
    /// The cross-entropy model it starts from: a run or a checkpoint folder (its weights; the
    /// run's settings are the new run's starting settings).
    pub from: Option<PathBuf>,
    /// Captions sampled per image.
    pub samples: usize,
    /// Sampling temperature (1: the model's distribution).
    pub temperature: f64,
    /// What each reward is compared with.
    pub baseline: Baseline,
    /// Weight of BLEU-4 (pycocoevalcap's, per caption) added to CIDEr-D in the reward.
    pub bleu_weight: f64,
}

impl Default for ScstSettings {
    fn default() -> Self {
        Self { from: None, samples: 5, temperature: 1.0, baseline: Baseline::Mean, bleu_weight: 0.0 }
    }
}

impl ScstSettings {
    /// Checks the settings of a run with `objective`.
    ///
    /// # Errors
    /// What is wrong, as text.
    pub fn validate(&self, objective: Objective) -> Result<(), String> {
        if objective == Objective::CrossEntropy {
            if self.from.is_some() {
                return Err("scst.from (--from) is the model self-critical training starts from: it needs \
                            objective = \"scst\" (--objective scst)"
                    .into());
            }
            return Ok(());
        }
        if self.from.is_none() {
            return Err("self-critical training starts from a cross-entropy model: give scst.from (--from \
                        RUN_OR_CHECKPOINT)"
                .into());
        }
        if !(1..=1000).contains(&self.samples) {
            return Err(format!("scst.samples must be 1 to 1000, got {}", self.samples));
        }
        if self.baseline == Baseline::Mean && self.samples < 2 {
            return Err("the mean baseline compares each sample with the image's other samples: scst.samples must \
                        be at least 2 (or use the greedy baseline)"
                .into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!("scst.temperature must be a positive number, got {}", self.temperature));
        }
        if !(self.bleu_weight >= 0.0 && self.bleu_weight.is_finite()) {
            return Err(format!("scst.bleu_weight must be 0 or more, got {}", self.bleu_weight));
        }
        Ok(())
    }
}

/// Every setting of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Which decoder: `lstm` (the original's `CNNtoRNN`, the default) or `attention` (Show,
    /// Attend and Tell over Inception v3's 8 × 8 grid; its sizes in `[attention]`).
    pub decoder: DecoderKind,
    /// What trains.
    pub mode: Mode,
    /// Epochs.
    pub epochs: usize,
    /// Captions per batch.
    pub batch_size: usize,
    /// Embedding size (and the encoder's output size).
    pub embed_size: usize,
    /// LSTM hidden size.
    pub hidden_size: usize,
    /// LSTM layers.
    pub num_layers: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// Finetune mode: Inception v3's learning rate (default: a tenth of `learning_rate`). It
    /// follows the same schedule.
    pub cnn_learning_rate: Option<f64>,
    /// Weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value.
    pub clip_grad_norm: Option<f64>,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of weights, shuffles and dropout.
    pub seed: u64,
    /// Encoder weights.
    pub encoder: EncoderWeights,
    /// torchvision's `transform_input` (on for ImageNet weights as the original loads them).
    pub transform_input: bool,
    /// Side of the image the encoder sees (the original: 299).
    pub image_size: u32,
    /// Original mode: side images are resized to before the random crop of `image_size` (the
    /// original: 356).
    pub train_resize: u32,
    /// Longest generated caption.
    pub max_length: usize,
    /// Score BLEU-1..4 on the validation split after each epoch (greedy, pycocoevalcap profile).
    pub validation_bleu: bool,
    /// Stop after this many epochs without a better validation score.
    pub early_stopping: Option<usize>,
    /// Keep this many newest epoch checkpoints (the best is always kept).
    pub keep_last: usize,
    /// Also checkpoint every this many steps within an epoch.
    pub checkpoint_every: Option<usize>,
    /// Training images used to recalibrate BatchNorm statistics of random encoder weights.
    pub calibration_images: usize,
    /// The attention decoder's sizes and loss (with `decoder = "attention"`).
    pub attention: AttentionSettings,
    /// What the run optimises: `cross-entropy` (the default) or `scst` (self-critical training
    /// from a cross-entropy model, with `[scst]`; `batch_size` then counts images).
    pub objective: Objective,
    /// Self-critical training's settings (with `objective = "scst"`).
    pub scst: ScstSettings,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Frozen,
            epochs: 100,
            batch_size: 32,
            embed_size: 256,
            hidden_size: 256,
            num_layers: 1,
            optimizer: OptimizerKind::Adam,
            learning_rate: 3e-4,
            cnn_learning_rate: None,
            weight_decay: 0.0,
            clip_grad_norm: None,
            schedule: Schedule::Constant,
            seed: 0,
            encoder: EncoderWeights::Hub,
            transform_input: true,
            image_size: 299,
            train_resize: 356,
            max_length: 50,
            validation_bleu: true,
            early_stopping: None,
            keep_last: 2,
            checkpoint_every: None,
            calibration_images: 256,
            decoder: DecoderKind::default(),
            attention: AttentionSettings::default(),
            objective: Objective::default(),
            scst: ScstSettings::default(),
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file (missing keys take their defaults).
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the file and the problem.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, TrainError> {
        // A settings file is a few hundred bytes; a device or FIFO is refused without being read.
        let bytes = caption_data::read_input_file(path, 1 << 20)
            .map_err(|e| TrainError::Config(format!("cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| TrainError::Config(format!("{}: not UTF-8 text: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// The TOML error as text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("the config always serialises")
    }

    /// Checks values that cannot work.
    ///
    /// # Errors
    /// What is wrong, as text.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("embed_size", self.embed_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("max_length", self.max_length),
            ("attention.embed_dim", self.attention.embed_dim),
            ("attention.attention_dim", self.attention.attention_dim),
            ("attention.decoder_dim", self.attention.decoder_dim),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        // Upper bounds, checked before anything is allocated: beyond them a typo asks for
        // terabytes (a hidden size of 10^6 is 4·10^12 LSTM weights).
        let bounded = [
            ("embed_size", self.embed_size, 16_384),
            ("hidden_size", self.hidden_size, 16_384),
            ("num_layers", self.num_layers, 64),
            ("max_length", self.max_length, 10_000),
            ("batch_size", self.batch_size, 1 << 20),
            ("image_size", self.image_size as usize, 2048),
            ("train_resize", self.train_resize as usize, 2048),
            ("attention.embed_dim", self.attention.embed_dim, 16_384),
            ("attention.attention_dim", self.attention.attention_dim, 16_384),
            ("attention.decoder_dim", self.attention.decoder_dim, 16_384),
        ];
        if let Some((name, value, limit)) = bounded.iter().find(|(_, value, limit)| value > limit) {
            return Err(format!("{name} {value} is larger than the {limit} accepted"));
        }
        for (name, rate) in [("learning_rate", Some(self.learning_rate)), ("cnn_learning_rate", self.cnn_learning_rate)]
        {
            if let Some(rate) = rate.filter(|r| !(*r > 0.0 && r.is_finite())) {
                return Err(format!("{name} must be positive, got {rate}"));
            }
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!("weight_decay must be 0 or more, got {}", self.weight_decay));
        }
        if let Some(norm) = self.clip_grad_norm.filter(|n| !(*n > 0.0 && n.is_finite())) {
            return Err(format!(
                "clip_grad_norm must be positive, got {norm} (leave it out for no clipping; 0 would zero every step)"
            ));
        }
        // Zero would stop at the first epoch, or checkpoint at no step at all: leave them out instead.
        for (name, value) in [("early_stopping", self.early_stopping), ("checkpoint_every", self.checkpoint_every)] {
            if value == Some(0) {
                return Err(format!("{name} must be at least 1 (leave it out for never)"));
            }
        }
        if self.attention.cache_float16 && self.decoder.head_input() != HeadInput::Grid {
            return Err("attention.cache_float16 applies to the attention decoder's grid cache; the LSTM decoder's \
                        features are cached as they are: leave it out"
                .into());
        }
        if self.image_size < 75 {
            return Err(format!(
                "image_size must be at least 75 (Inception v3's smallest input), got {}",
                self.image_size
            ));
        }
        let attention = &self.attention;
        if !(0.0..1.0).contains(&attention.dropout) {
            return Err(format!("attention.dropout must be at least 0 and below 1, got {}", attention.dropout));
        }
        if !(attention.alpha_c >= 0.0 && attention.alpha_c.is_finite()) {
            return Err(format!("attention.alpha_c must be 0 or more, got {}", attention.alpha_c));
        }
        if self.mode != Mode::Frozen && self.train_resize < self.image_size {
            return Err("train_resize must be at least image_size".into());
        }
        self.scst.validate(self.objective)
    }

    /// Inception v3's learning rate in finetune mode.
    pub fn cnn_learning_rate(&self) -> f64 {
        self.cnn_learning_rate.unwrap_or(self.learning_rate / 10.0)
    }

    /// Settings a resumed run may change: how long it goes on, its learning rates, what it
    /// checkpoints and validates. The others (sizes, mode, batch size, seed, weights, images,
    /// schedule, optimizer) fix what the run is and stay as saved.
    pub const CHANGEABLE_ON_RESUME: [&'static str; 10] = [
        "epochs",
        "learning_rate",
        "cnn_learning_rate",
        "weight_decay",
        "clip_grad_norm",
        "early_stopping",
        "keep_last",
        "checkpoint_every",
        "validation_bleu",
        "max_length",
    ];

    /// The config a resumed run continues with: `self` (the run's, as saved) with the changeable
    /// settings of `requested` ([`TrainConfig::CHANGEABLE_ON_RESUME`]), and the changes made.
    /// `calibration_images` only matters when a run starts and is ignored.
    ///
    /// # Errors
    /// Every other setting that differs, as [`TrainError::ResumeConflict`].
    pub fn resumed_with(&self, requested: &TrainConfig) -> Result<(TrainConfig, Vec<SettingChange>), TrainError> {
        // Keys of nested tables as `table.key`, so that a difference names the setting itself.
        let flat = |config: &TrainConfig| {
            let mut flat = serde_json::Map::new();
            let serde_json::Value::Object(map) = serde_json::to_value(config).expect("a config serialises") else {
                unreachable!("a config serialises to an object")
            };
            for (key, value) in map {
                match value {
                    serde_json::Value::Object(table) => {
                        flat.extend(table.into_iter().map(|(inner, value)| (format!("{key}.{inner}"), value)));
                    }
                    value => {
                        flat.insert(key, value);
                    }
                }
            }
            flat
        };
        let (saved, asked) = (flat(self), flat(requested));
        let serde_json::Value::Object(mut merged) = serde_json::to_value(self).expect("a config serialises") else {
            unreachable!("a config serialises to an object")
        };
        let (mut changes, mut conflicts) = (Vec::new(), Vec::new());
        for (key, value) in &asked {
            let before = saved.get(key).cloned().unwrap_or(serde_json::Value::Null);
            if *value == before || key == "calibration_images" {
                continue;
            }
            let change = SettingChange { key: key.clone(), saved: show(&before), requested: show(value) };
            if Self::CHANGEABLE_ON_RESUME.contains(&key.as_str()) {
                merged.insert(key.clone(), value.clone());
                changes.push(change);
            } else {
                conflicts.push(change);
            }
        }
        if !conflicts.is_empty() {
            return Err(TrainError::ResumeConflict(conflicts));
        }
        let merged: TrainConfig =
            serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| TrainError::Config(e.to_string()))?;
        merged.validate().map_err(TrainError::Config)?;
        Ok((merged, changes))
    }

    /// Whether two configs describe the same network (what a checkpoint must match).
    pub fn same_architecture(&self, other: &Self) -> bool {
        self.architecture() == other.architecture()
    }

    /// The network these settings build, for people: the decoder and its sizes.
    pub fn architecture(&self) -> String {
        self.network(0).describe()
    }

    /// The model's part of these settings, as a checkpoint's trainer.json holds it for captioning.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            decoder: self.decoder,
            attention: AttentionSizes {
                embed_dim: self.attention.embed_dim,
                attention_dim: self.attention.attention_dim,
                decoder_dim: self.attention.decoder_dim,
            },
            embed_size: self.embed_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            image_size: self.image_size,
            transform_input: self.transform_input,
            max_length: self.max_length,
            batch_size: self.batch_size,
        }
    }

    /// The network these settings train, with a vocabulary of `vocab_size` ids.
    pub fn network(&self, vocab_size: usize) -> NetworkConfig {
        NetworkConfig { dropout: self.attention.dropout as f32, ..self.model_config().network(vocab_size) }
    }
}

/// One setting that differs between a run's saved config and the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// The config key (as in config.toml; `table.key` inside a table).
    pub key: String,
    /// The run's value.
    pub saved: String,
    /// The value asked for.
    pub requested: String,
}

impl std::fmt::Display for SettingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (the run's {}, asked {})", self.key, self.saved, self.requested)
    }
}

/// A config value for people: strings without quotes, `none` for a missing value.
fn show(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "none".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_takes_the_changeable_settings_and_refuses_the_others_by_name() {
        let saved = TrainConfig { epochs: 5, batch_size: 32, ..TrainConfig::default() };
        let (merged, changes) =
            saved.resumed_with(&TrainConfig { epochs: 9, learning_rate: 1e-3, ..saved.clone() }).unwrap();
        assert_eq!((merged.epochs, merged.learning_rate, merged.batch_size), (9, 1e-3, 32));
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["epochs", "learning_rate"]);
        let error =
            saved.resumed_with(&TrainConfig { batch_size: 4, hidden_size: 8, epochs: 9, ..saved.clone() }).unwrap_err();
        let TrainError::ResumeConflict(conflicts) = &error else { panic!("{error}") };
        let keys: Vec<&str> = conflicts.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["batch_size", "hidden_size"]);
        assert!(error.to_string().contains("batch_size (the run's 32, asked 4)"), "{error}");
        assert_eq!(saved.resumed_with(&saved).unwrap(), (saved.clone(), Vec::new()));
    }

    #[test]
    fn the_original_setup_reads_under_its_old_name_and_is_written_under_its_new_one() {
        let old = TrainConfig::default().to_toml().replace("mode = \"frozen\"", "mode = \"seed\"");
        assert!(old.contains("mode = \"seed\""), "the premise: the saved config names the mode");
        let config = TrainConfig::from_toml(&old).unwrap();
        assert_eq!(config.mode, Mode::Original);
        assert!(config.to_toml().contains("mode = \"original\""));
    }
}
