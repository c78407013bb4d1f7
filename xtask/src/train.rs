//! `cargo xtask train`.

use caption_train::outputs::{FolderKind, claim_folder_place};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use caption_data::PreparedDataset;
use caption_model::parse_device;
use caption_train::{RunSummary, SettingFlags, TrainConfig, TrainOptions, train};
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
///
/// Self-critical training (--objective scst --from RUN): fine-tunes a cross-entropy model on
/// CIDEr-D (Rennie et al. 2017). Per batch of --batch-size images it samples --samples captions
/// of each, rewards each with CIDEr-D against the image's references (document frequencies of the
/// training split's references; plus --bleu-weight × BLEU-4), subtracts a baseline (--baseline
/// mean: the image's other samples' mean reward; greedy: the greedy caption's) and descends
/// −Σ (reward − baseline) · log p(word) / words. metrics.jsonl logs the mean reward, baseline,
/// greedy CIDEr-D and the share of samples above their baseline; validation scores CIDEr-D, and
/// the best checkpoint is the best CIDEr-D. The run starts from --from's settings (network,
/// images, mode); a lower --lr than cross-entropy's suits it (5e-5 to 2e-4).
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  cargo xtask train --data datasets/shapes --run runs/shapes --encoder random --epochs 15
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k --device cuda
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k-attention --decoder attention
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k --resume --epochs 30
  cargo xtask train --data datasets/flickr8k --run runs/flickr8k-scst --from runs/flickr8k --lr 5e-5")]
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
    /// The settings.
    #[command(flatten)]
    pub settings: SettingFlags,
    /// Print only the epoch summaries.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `cargo xtask train`.
pub fn run(args: &TrainArgs) -> Result<RunSummary> {
    if args.allow_tf32 {
        caption_model::backend::set_allow_tf32(true);
    }
    let config = args.settings.resolve(&args.run, args.config.as_deref(), args.resume)?;
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
    if let Some(notice) = caption_model::backend::tf32_notice(&device) {
        println!("{notice}");
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
            anyhow::anyhow!(SettingFlags::resume_conflict_message(run, &conflicts))
        }
        other => other.into(),
    })?;
    println!("{summary}");
    Ok(summary)
}
