//! `cargo xtask train`.

use caption_train::outputs::{FolderKind, claim_folder_place};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use caption_data::PreparedDataset;
use caption_model::parse_device;
use caption_train::parse_setting;
use caption_train::run_folder::starting_settings;
use caption_train::{
    DecoderKind, EncoderWeights, Mode, OptimizerKind, RunSummary, Schedule, TrainConfig, TrainOptions, train,
};
use clap::Args;

use crate::progress::Bars;

/// Train the Inception v3 + LSTM captioner (or, with --decoder attention, Show, Attend and Tell)
/// on a prepared dataset.
///
/// Modes: `frozen` (default) computes the encoder's pooled features once, in eval mode, and trains
/// `fc` and the decoder on them every epoch; `original` (formerly `seed`) is the original's setup
/// (Inception in train mode on random 299 crops of 356 resizes every batch, only `fc` and the
/// decoder train); `finetune` is `original` with the whole network training, Inception v3 at
/// --cnn-lr.
/// --decoder attention trains sgrvinod's DecoderWithAttention (additive attention over Inception
/// v3's 8 × 8 grid at every word, the doubly stochastic regularisation weighted by --alpha-c) in
/// any mode; frozen mode caches the grids in a memory-mapped file in the run folder (4.2 GB for
/// Flickr8k in float32, half with --cache-float16).
/// Settings come from --config (TOML; keys as in the run's saved config.toml) with the flags below
/// overriding them. After each epoch the validation split is scored (loss, BLEU-1..4 of greedy
/// captions, pycocoevalcap profile), a checkpoint is written atomically to
/// RUN/checkpoints/step-N/ (the newest --keep-last kept) and the best is copied to RUN/best/.
/// Ctrl-C saves a checkpoint and exits; --resume continues from the newest valid checkpoint,
/// skipping a damaged one.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  cargo xtask train --data datasets/shapes --run runs/shapes --encoder random --epochs 15
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k --device cuda
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k-attention --decoder attention
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k --resume --epochs 30")]
pub struct TrainArgs {
    /// The prepared dataset (from `cargo xtask prepare-data`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The run folder: config, metrics.jsonl, checkpoints.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Settings file (TOML).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Continue the run from its newest valid checkpoint, with its own settings (RUN/config.toml);
    /// --epochs, --lr, --cnn-lr, --weight-decay, --clip-grad-norm, --early-stopping, --keep-last,
    /// --checkpoint-every and --no-validation-bleu may change them, the other settings may not.
    /// Starts the run when it holds no checkpoint yet.
    #[arg(long)]
    pub resume: bool,
    /// `auto` (CUDA when built with it and present), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Let float32 matrix products and convolutions on CUDA use TF32 tensor cores: faster on
    /// Ampere and later GPUs, but results then differ from the CPU's and from PyTorch's strict
    /// float32 in the third or fourth digit (the run says so when it starts). Off by default;
    /// CAPTION_ALLOW_TF32=1 turns it on as well. The CPU never uses TF32.
    #[arg(long)]
    pub allow_tf32: bool,
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
    #[arg(long, value_name = "hub|random|FILE")]
    pub encoder: Option<String>,
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
    /// Print only the epoch summaries.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The config the arguments describe: the file (or defaults) with the flags applied.
pub fn resolve_config(args: &TrainArgs) -> Result<TrainConfig> {
    let (mut config, from_file) = starting_settings(&args.run, args.config.as_deref(), args.resume)?;
    if let Some(mode) = args.mode {
        config.mode = mode;
    }
    if let Some(decoder) = args.decoder {
        config.decoder = decoder;
    }
    let attention = &mut config.attention;
    for (field, value) in [
        (&mut attention.embed_dim, args.attention_embed_dim),
        (&mut attention.attention_dim, args.attention_dim),
        (&mut attention.decoder_dim, args.decoder_dim),
    ] {
        if let Some(value) = value {
            *field = value;
        }
    }
    for (field, value) in [(&mut attention.dropout, args.attention_dropout), (&mut attention.alpha_c, args.alpha_c)] {
        if let Some(value) = value {
            *field = value;
        }
    }
    if args.cache_float16 {
        attention.cache_float16 = true;
    }
    if let Some(encoder) = &args.encoder {
        config.encoder = match encoder.as_str() {
            "hub" => EncoderWeights::Hub,
            "random" => EncoderWeights::Random,
            path => EncoderWeights::File(PathBuf::from(path)),
        };
    }
    if config.encoder == EncoderWeights::Random && !from_file {
        // Random weights were never trained with torchvision's input transform.
        config.transform_input = false;
    }
    macro_rules! set {
        ($($field:ident = $value:expr),*) => { $(if let Some(v) = $value { config.$field = v; })* };
    }
    set!(
        epochs = args.epochs,
        batch_size = args.batch_size,
        learning_rate = args.lr,
        weight_decay = args.weight_decay,
        embed_size = args.embed_size,
        hidden_size = args.hidden_size,
        num_layers = args.num_layers,
        image_size = args.image_size,
        seed = args.seed,
        keep_last = args.keep_last
    );
    if let Some(optimizer) = args.optimizer {
        config.optimizer = optimizer;
    }
    if args.clip_grad_norm.is_some() {
        config.clip_grad_norm = args.clip_grad_norm;
    }
    if args.cnn_lr.is_some() {
        config.cnn_learning_rate = args.cnn_lr;
    }
    if args.cosine {
        config.schedule = Schedule::Cosine;
    }
    if args.early_stopping.is_some() {
        config.early_stopping = args.early_stopping;
    }
    if args.checkpoint_every.is_some() {
        config.checkpoint_every = args.checkpoint_every;
    }
    if args.no_validation_bleu {
        config.validation_bleu = false;
    }
    config.validate().map_err(anyhow::Error::msg).context("invalid training settings")?;
    Ok(config)
}

/// Runs `cargo xtask train`.
pub fn run(args: &TrainArgs) -> Result<RunSummary> {
    if args.allow_tf32 {
        caption_model::backend::set_allow_tf32(true);
    }
    let config = resolve_config(args)?;
    let dataset = PreparedDataset::open(&args.data)?;
    train_and_report(config, &dataset, &args.run, args.resume, &args.device, args.quiet)
}

/// Trains `config` on `dataset` in `run` with progress bars (unless `quiet`), saving a checkpoint
/// and stopping on Ctrl-C, and prints how the run ended: what `train` and the demo run once their
/// settings are known.
pub fn train_and_report(
    config: TrainConfig,
    dataset: &PreparedDataset,
    run: &Path,
    resume: bool,
    device: &str,
    quiet: bool,
) -> Result<RunSummary> {
    claim_folder_place(run, FolderKind::Other)?;
    let device = parse_device(device)?;
    if caption_model::backend::allow_tf32() {
        println!(
            "{}",
            if device.is_cuda() {
                "TF32 allowed: float32 products and convolutions on the GPU use TF32 tensor cores (results differ \
                 from strict float32 in the third or fourth digit)"
            } else {
                "TF32 allowed, but this run is on the CPU, which never uses it: results are strict float32"
            }
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // A second Ctrl-C while the checkpoint is being written is ignored; the write is atomic anyway.
    let _ = ctrlc::set_handler(move || {
        if !flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping after this step: saving a checkpoint");
        }
    });
    let bars = Bars::new(quiet);
    let summary = train(TrainOptions {
        config,
        dataset,
        run_dir: run.to_path_buf(),
        resume,
        device,
        progress: &bars,
        stop: &stop,
        log: &|line| println!("{line}"),
    })
    .map_err(|error| match error {
        caption_train::TrainError::ResumeConflict(conflicts) => {
            let named: Vec<String> = conflicts.iter().map(|c| format!("{} {c}", flag_of(&c.key))).collect();
            anyhow::anyhow!(
                "--resume continues {} with its own settings, and these options differ from them: {}. Drop them, \
                 or start a new run in another folder",
                run.display(),
                named.join("; ")
            )
        }
        other => other.into(),
    })?;
    println!("{summary}");
    Ok(summary)
}

/// The command-line option that sets a config key.
fn flag_of(key: &str) -> String {
    match key {
        "learning_rate" => "--lr".into(),
        "cnn_learning_rate" => "--cnn-lr".into(),
        "schedule" => "--cosine".into(),
        "validation_bleu" => "--no-validation-bleu".into(),
        "transform_input" => "--encoder".into(),
        "attention.embed_dim" => "--attention-embed-dim".into(),
        "attention.dropout" => "--attention-dropout".into(),
        "attention.attention_dim" | "attention.decoder_dim" | "attention.alpha_c" | "attention.cache_float16" => {
            format!("--{}", key.trim_start_matches("attention.").replace('_', "-"))
        }
        other => format!("--{}", other.replace('_', "-")),
    }
}
