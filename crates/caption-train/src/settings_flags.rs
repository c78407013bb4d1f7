//! The training settings as command-line options (feature `cli`): one flag per [`TrainConfig`]
//! key, applied over the settings a run starts from ([`starting_settings`]), and the flag that
//! sets a key, for messages that name it.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::{Baseline, Objective};
use crate::config::{EncoderWeights, Mode, OptimizerKind, Schedule, SettingChange, TrainConfig, parse_setting};
use crate::run_folder::{settings_of_model, starting_settings};
use crate::{DecoderKind, TrainError};

/// Flags that override the settings of a run (each unset flag leaves the setting as the file,
/// the resumed run or the defaults have it).
#[derive(Args, Debug, Clone, Default)]
pub struct SettingFlags {
    /// What trains: `frozen` (cached encoder features; fc + decoder train), `original` (the
    /// original's setup; also spelled `seed`, its name before) or `finetune` (the original's
    /// setup with Inception v3 training too, at --cnn-lr) [default: frozen].
    #[arg(long, value_name = "frozen|original|finetune", value_parser = parse_setting::<Mode>)]
    pub mode: Option<Mode>,
    /// The decoder: `lstm` (the original's LSTM on the pooled image embedding) or `attention`
    /// (Show, Attend and Tell: attention over the encoder's grid at every word) [default: lstm].
    #[arg(long, value_name = "lstm|attention", value_parser = str::parse::<DecoderKind>)]
    pub decoder: Option<DecoderKind>,
    /// Inception v3 weights: `hub` (ImageNet, timm/inception_v3.tv_in1k), `random` (offline), or a
    /// safetensors file with torchvision names [default: hub].
    #[arg(long, value_name = "hub|random|FILE", value_parser = str::parse::<EncoderWeights>)]
    pub encoder: Option<EncoderWeights>,
    /// Epochs [default: 100].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Captions per batch [default: 32].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate [default: 0.0003].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Finetune mode: Inception v3's learning rate [default: a tenth of --lr].
    #[arg(long)]
    pub cnn_lr: Option<f64>,
    /// Optimizer: `adam` or `adamw` [default: adam].
    #[arg(long, value_name = "adam|adamw", value_parser = parse_setting::<OptimizerKind>)]
    pub optimizer: Option<OptimizerKind>,
    /// Weight decay [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to this value [default: no clipping].
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// Use a cosine learning-rate schedule.
    #[arg(long)]
    pub cosine: bool,
    /// Embedding size [default: 256].
    #[arg(long)]
    pub embed_size: Option<usize>,
    /// LSTM hidden size [default: 256].
    #[arg(long)]
    pub hidden_size: Option<usize>,
    /// LSTM layers [default: 1].
    #[arg(long)]
    pub num_layers: Option<usize>,
    /// Attention decoder: word embedding size [default: 512].
    #[arg(long)]
    pub attention_embed_dim: Option<usize>,
    /// Attention decoder: the attention network's size [default: 512].
    #[arg(long)]
    pub attention_dim: Option<usize>,
    /// Attention decoder: the LSTM cell's size [default: 512].
    #[arg(long)]
    pub decoder_dim: Option<usize>,
    /// Attention decoder: dropout before the output layer [default: 0.5].
    #[arg(long)]
    pub attention_dropout: Option<f64>,
    /// Attention decoder: weight of the doubly stochastic regularisation [default: 1].
    #[arg(long)]
    pub alpha_c: Option<f64>,
    /// Attention decoder, frozen mode: cache the grids as float16 (half the size).
    #[arg(long)]
    pub cache_float16: bool,
    /// Side of the encoder's input, 75 to 2048 (the original's) [default: 299].
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Seed of weights, shuffles and dropout [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after N epochs without a better validation score [default: never].
    #[arg(long, value_name = "N")]
    pub early_stopping: Option<usize>,
    /// Also checkpoint every N steps [default: at each epoch's end only].
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Keep the newest N checkpoints (the best is always kept) [default: 2].
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Skip BLEU on the validation split (loss only).
    #[arg(long)]
    pub no_validation_bleu: bool,
    /// What training optimises: `cross-entropy` (teacher forcing on the reference captions) or
    /// `scst` (self-critical training on CIDEr-D, from the model --from names; --batch-size then
    /// counts images) [default: cross-entropy; scst with --from].
    #[arg(long, value_name = "cross-entropy|scst", value_parser = parse_setting::<Objective>)]
    pub objective: Option<Objective>,
    /// Self-critical training: the cross-entropy model to start from, a run folder (its best
    /// checkpoint) or a checkpoint folder; its settings are the new run's, these flags change them.
    #[arg(long, value_name = "RUN_OR_CHECKPOINT")]
    pub from: Option<PathBuf>,
    /// Self-critical training: captions sampled per image [default: 5].
    #[arg(long, value_name = "K")]
    pub samples: Option<usize>,
    /// Self-critical training: sampling temperature (words drawn from softmax(log p / T))
    /// [default: 1].
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// Self-critical training: what each sample's reward is compared with, `greedy` (the greedy
    /// caption's reward, Rennie et al. 2017) or `mean` (the mean reward of the image's other
    /// samples, Luo 2020) [default: mean].
    #[arg(long, value_name = "greedy|mean", value_parser = parse_setting::<Baseline>)]
    pub baseline: Option<Baseline>,
    /// Self-critical training: weight of BLEU-4 added to CIDEr-D in the reward [default: 0].
    #[arg(long, value_name = "W")]
    pub bleu_weight: Option<f64>,
}

impl SettingFlags {
    /// The settings a run trains with: those it starts from ([`starting_settings`]: `file`, the
    /// run's own when resuming, or the defaults) with these flags applied, checked.
    ///
    /// # Errors
    /// A settings file that does not read, or settings that are not valid together.
    pub fn resolve(&self, run: &Path, file: Option<&Path>, resume: bool) -> Result<TrainConfig, TrainError> {
        let (mut config, from_file) = match (&self.from, resume) {
            (Some(_), false) if file.is_some() => {
                return Err(TrainError::Config(
                    "--from starts from the settings of the model it names: give --config or --from, not both".into(),
                ));
            }
            (Some(from), false) => {
                let source = settings_of_model(from).ok_or_else(|| {
                    TrainError::Config(format!(
                        "--from {}: not a run or checkpoint folder of `cargo xtask train` (no config.toml or \
                         trainer.json that reads)",
                        from.display()
                    ))
                })?;
                // Its settings for what it is (network, images, weights); the schedule of the
                // run it came from is not this one's.
                let fresh = TrainConfig::default();
                (TrainConfig { early_stopping: None, checkpoint_every: None, scst: fresh.scst, ..source }, true)
            }
            _ => starting_settings(run, file, resume)?,
        };
        self.apply(&mut config);
        if config.encoder == EncoderWeights::Random && !from_file {
            // Random weights were never trained with torchvision's input transform.
            config.transform_input = false;
        }
        config.validate().map_err(|problem| TrainError::Config(format!("invalid training settings: {problem}")))?;
        Ok(config)
    }

    /// Sets every setting a flag was given for.
    pub fn apply(&self, config: &mut TrainConfig) {
        fn set<T: Clone>(field: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *field = value.clone();
            }
        }
        fn set_some<T: Clone>(field: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        set(&mut config.mode, &self.mode);
        set(&mut config.decoder, &self.decoder);
        set(&mut config.encoder, &self.encoder);
        set(&mut config.epochs, &self.epochs);
        set(&mut config.batch_size, &self.batch_size);
        set(&mut config.learning_rate, &self.lr);
        set_some(&mut config.cnn_learning_rate, &self.cnn_lr);
        set(&mut config.optimizer, &self.optimizer);
        set(&mut config.weight_decay, &self.weight_decay);
        set_some(&mut config.clip_grad_norm, &self.clip_grad_norm);
        set(&mut config.embed_size, &self.embed_size);
        set(&mut config.hidden_size, &self.hidden_size);
        set(&mut config.num_layers, &self.num_layers);
        set(&mut config.image_size, &self.image_size);
        set(&mut config.seed, &self.seed);
        set_some(&mut config.early_stopping, &self.early_stopping);
        set_some(&mut config.checkpoint_every, &self.checkpoint_every);
        set(&mut config.keep_last, &self.keep_last);
        let attention = &mut config.attention;
        set(&mut attention.embed_dim, &self.attention_embed_dim);
        set(&mut attention.attention_dim, &self.attention_dim);
        set(&mut attention.decoder_dim, &self.decoder_dim);
        set(&mut attention.dropout, &self.attention_dropout);
        set(&mut attention.alpha_c, &self.alpha_c);
        if self.cache_float16 {
            attention.cache_float16 = true;
        }
        if self.cosine {
            config.schedule = Schedule::Cosine;
        }
        if self.no_validation_bleu {
            config.validation_bleu = false;
        }
        if self.from.is_some() {
            config.objective = Objective::Scst;
        }
        set(&mut config.objective, &self.objective);
        let scst = &mut config.scst;
        set_some(&mut scst.from, &self.from);
        set(&mut scst.samples, &self.samples);
        set(&mut scst.temperature, &self.temperature);
        set(&mut scst.baseline, &self.baseline);
        set(&mut scst.bleu_weight, &self.bleu_weight);
    }

    /// The flag that sets a config key (`learning_rate` → `--lr`, `attention.embed_dim` →
    /// `--attention-embed-dim`).
    pub fn flag_of(key: &str) -> String {
        match key {
            "learning_rate" => "--lr".into(),
            "cnn_learning_rate" => "--cnn-lr".into(),
            "schedule" => "--cosine".into(),
            "validation_bleu" => "--no-validation-bleu".into(),
            "transform_input" => "--encoder".into(),
            "attention.embed_dim" => "--attention-embed-dim".into(),
            "attention.dropout" => "--attention-dropout".into(),
            other => {
                let key = other.trim_start_matches("attention.").trim_start_matches("scst.");
                format!("--{}", key.replace('_', "-"))
            }
        }
    }

    /// What to tell someone whose `--resume` of `run` asked to change settings that fix what the
    /// run is: each named by its flag.
    pub fn resume_conflict_message(run: &Path, conflicts: &[SettingChange]) -> String {
        let named: Vec<String> = conflicts.iter().map(|c| format!("{} {c}", Self::flag_of(&c.key))).collect();
        format!(
            "--resume continues {} with its own settings, and these options differ from them: {}. Drop them, or \
             start a new run in another folder",
            run.display(),
            named.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: SettingFlags,
    }

    fn flags(args: &[&str]) -> SettingFlags {
        Cli::try_parse_from(std::iter::once("train").chain(args.iter().copied())).unwrap().flags
    }

    /// Every key of a config (as config.toml and resume conflicts name it) that a flag sets has
    /// that flag: `flag_of` names an option that exists.
    #[test]
    fn every_key_names_an_existing_flag() {
        let command = Cli::command();
        let longs: Vec<String> =
            command.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect();
        let config = serde_json::to_value(TrainConfig::default()).unwrap();
        let mut keys = Vec::new();
        for (key, value) in config.as_object().unwrap() {
            match value.as_object() {
                Some(table) => keys.extend(table.keys().map(|inner| format!("{key}.{inner}"))),
                None => keys.push(key.clone()),
            }
        }
        // Set by a settings file only.
        let file_only = ["train_resize", "max_length", "calibration_images"];
        for key in keys.iter().filter(|key| !file_only.contains(&key.as_str())) {
            let flag = SettingFlags::flag_of(key);
            assert!(longs.contains(&flag), "{key} → {flag}, which is not an option");
        }
    }

    #[test]
    fn flags_override_and_unset_flags_keep() {
        let mut config = TrainConfig { epochs: 7, weight_decay: 0.5, ..TrainConfig::default() };
        flags(&["--lr", "0.01", "--decoder", "attention", "--alpha-c", "2", "--encoder", "w.safetensors", "--cosine"])
            .apply(&mut config);
        assert_eq!(config.learning_rate, 0.01);
        assert_eq!(config.decoder, DecoderKind::Attention);
        assert_eq!(config.attention.alpha_c, 2.0);
        assert_eq!(config.encoder, EncoderWeights::File("w.safetensors".into()));
        assert_eq!(config.schedule, Schedule::Cosine);
        assert_eq!((config.epochs, config.weight_decay), (7, 0.5));
    }

    /// --from starts from the settings of the run it names (not the defaults), as a self-critical
    /// run; the other flags still apply, and --config beside it is refused.
    #[test]
    fn from_starts_from_the_source_runs_settings() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("xe");
        std::fs::create_dir(&source).unwrap();
        let saved = TrainConfig { embed_size: 48, image_size: 107, early_stopping: Some(3), ..TrainConfig::default() };
        std::fs::write(source.join(crate::CONFIG_FILE), saved.to_toml()).unwrap();
        let run = dir.path().join("scst");
        let from = source.to_str().unwrap();
        let config = flags(&["--from", from, "--samples", "4", "--epochs", "2"]).resolve(&run, None, false).unwrap();
        assert_eq!((config.embed_size, config.image_size, config.epochs), (48, 107, 2));
        assert_eq!(config.objective, Objective::Scst);
        assert_eq!((config.scst.from.as_deref(), config.scst.samples), (Some(source.as_path()), 4));
        assert_eq!(config.early_stopping, None, "the source run's schedule is not this one's");
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, "epochs = 3\n").unwrap();
        let error = flags(&["--from", from]).resolve(&run, Some(&file), false).unwrap_err();
        assert!(error.to_string().contains("not both"), "{error}");
        let nowhere = dir.path().join("nowhere");
        let error = flags(&["--from", nowhere.to_str().unwrap()]).resolve(&run, None, false).unwrap_err();
        assert!(error.to_string().contains("not a run or checkpoint folder"), "{error}");
    }

    #[test]
    fn random_weights_drop_the_input_transform_unless_a_file_set_it() {
        let run = tempfile::tempdir().unwrap();
        let config = flags(&["--encoder", "random"]).resolve(run.path(), None, false).unwrap();
        assert!(!config.transform_input);
        let file = run.path().join("settings.toml");
        std::fs::write(&file, "encoder = \"random\"\ntransform_input = true\n").unwrap();
        assert!(flags(&[]).resolve(run.path(), Some(&file), false).unwrap().transform_input);
        let error = flags(&["--epochs", "0"]).resolve(run.path(), None, false).unwrap_err();
        assert!(error.to_string().contains("invalid training settings"), "{error}");
    }
}
