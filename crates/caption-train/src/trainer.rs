//! The training loop: seeded batches, the masked loss, Adam, validation after each epoch,
//! checkpoints (every epoch, optionally every N steps, and on a stop request), resume.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use caption_data::progress::{duration, per_second};
use caption_data::{ImageTransform, PreparedDataset, Progress, Split, loader};
use caption_model::Dropout;
use serde_json::json;

use crate::TrainError;
use crate::adam::{Adam, AdamConfig};
use crate::checkpoint::{self, Best, TrainerState};
use crate::config::{EncoderWeights, Mode, Schedule, TrainConfig};
use crate::error::io;
use crate::features;
use crate::model::TrainModel;
use crate::run_folder::RunFolder;
use crate::step::optimizer_step;
use crate::validation::{self, Validation};

/// What a run is asked to do.
pub struct TrainOptions<'a> {
    /// Settings.
    pub config: TrainConfig,
    /// The prepared dataset.
    pub dataset: &'a PreparedDataset,
    /// The run folder (config, metrics, checkpoints).
    pub run_dir: PathBuf,
    /// Continue from the newest valid checkpoint in `run_dir`.
    pub resume: bool,
    /// Device.
    pub device: Device,
    /// Progress of long steps.
    pub progress: &'a dyn Progress,
    /// Set to stop: the run saves a checkpoint and returns.
    pub stop: &'a AtomicBool,
    /// Receives one line per event worth telling (epoch summaries, skipped checkpoints).
    pub log: &'a dyn Fn(&str),
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The best validation score.
    pub best: Option<Best>,
    /// The last validation.
    pub last_validation: Option<Validation>,
    /// Stopped by request (a checkpoint was saved).
    pub interrupted: bool,
    /// Stopped because the validation score stopped improving.
    pub stopped_early: bool,
    /// The newest checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// The best checkpoint.
    pub best_checkpoint: Option<PathBuf>,
    /// metrics.jsonl.
    pub metrics: PathBuf,
}

/// File of the run's configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// File of the run's metrics, one JSON object per line.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Trains (or resumes) a run.
///
/// # Errors
/// [`TrainError`]: bad config, unusable dataset or weights, a checkpoint that does not fit, I/O.
pub fn train(options: TrainOptions<'_>) -> Result<RunSummary, TrainError> {
    let TrainOptions { config, dataset, run_dir, resume, device, progress, stop, log } = options;
    config.validate().map_err(TrainError::Config)?;
    crate::flush_denormals_to_zero();
    let _run_folder = RunFolder::lock(&run_dir)?;
    let vocabulary = &dataset.vocabulary;
    let dataset_hash = dataset.manifest.content_hash();

    let has_state =
        !checkpoint::list_checkpoints(&run_dir).is_empty() || checkpoint::is_checkpoint_folder(&run_dir.join("best"));
    if !resume && has_state {
        return Err(TrainError::Config(format!(
            "{} already holds checkpoints: pass --resume to continue it, or choose another run folder",
            run_dir.display()
        )));
    }
    let point = if resume { checkpoint::resume_point(&run_dir) } else { checkpoint::ResumePoint::default() };
    if resume && point.checkpoint.is_none() && !point.damaged.is_empty() {
        let reasons: Vec<String> = point.damaged.iter().map(|(_, why)| why.clone()).collect();
        return Err(TrainError::Checkpoint {
            path: run_dir.display().to_string(),
            problem: format!(
                "nothing to resume from: no checkpoint reads back ({}); nothing was changed. Start a new run in \
                 another folder, or move the damaged checkpoints away to start this one over",
                reasons.join("; ")
            ),
        });
    }
    if resume && point.checkpoint.is_none() {
        log(&format!("{} holds no checkpoint yet: starting the run", run_dir.display()));
    }
    let resumed = point.checkpoint;
    if resumed.is_some() {
        for (dir, why) in &point.damaged {
            let aside = checkpoint::move_aside(&run_dir, dir)?;
            log(&format!("moved the damaged checkpoint {} to {} ({why})", dir.display(), aside.display()));
        }
    }
    let config = match &resumed {
        Some(c) => {
            checkpoint::check_compatible(c, &config, vocabulary, &dataset_hash)?;
            let (merged, changes) = c.state.config.resumed_with(&config)?;
            for change in &changes {
                log(&format!("resuming with {} {} (was {})", change.key, change.requested, change.saved));
            }
            merged
        }
        None => config,
    };
    let model = TrainModel::new(&config, vocabulary.len(), &device)?;
    let mut state = match &resumed {
        Some(c) => {
            model.load_state_dict(&c.model, &c.path.display().to_string())?;
            log(&format!("resuming from {} (epoch {}, step {})", c.path.display(), c.state.epoch, c.state.step));
            let mut state = c.state.clone();
            // best/ may hold a better score than this checkpoint knew (it fell back past newer
            // ones): only a model better than best/'s may replace it.
            if let Some(best) = point.best.filter(|b| state.best.is_none_or(|s| b.score > s.score)) {
                state.best = Some(best);
            }
            state
        }
        None => {
            model.load_encoder_weights(&config.encoder)?;
            TrainerState {
                epoch: 0,
                batch_in_epoch: 0,
                step: 0,
                dropout: Dropout::new(0.5, config.seed ^ 0x0d50_0d50).state(),
                best: None,
                epochs_since_best: 0,
                config: config.clone(),
                dataset_hash: dataset_hash.clone(),
                vocab_size: vocabulary.len(),
                created_by: format!("caption-train {}", env!("CARGO_PKG_VERSION")),
            }
        }
    };
    state.config = config.clone();
    write_atomically(&run_dir.join(CONFIG_FILE), config.to_toml().as_bytes())?;
    write_atomically(&run_dir.join("tokenizer.json"), vocabulary.to_tokenizer_json().as_bytes())?;

    let train_images = dataset.images_in(Split::Train);
    let validation_images = dataset.images_in(Split::Validation);
    if train_images.is_empty() {
        return Err(TrainError::Config("the dataset has no training images".into()));
    }
    let eval_transform = ImageTransform::eval(config.image_size);

    // Frozen mode: the encoder runs once; its pooled features are cached in the run folder.
    let pooled = if config.mode == Mode::Frozen {
        if resumed.is_none() && config.encoder == EncoderWeights::Random {
            let calibration = loader::epoch_order(&train_images, Some((config.seed, u64::MAX)));
            let calibration = &calibration[..config.calibration_images.clamp(1, calibration.len())];
            features::recalibrate_batch_norm(&model, dataset, calibration, &eval_transform, progress)?;
        }
        let cache = run_dir.join(format!("features-{}.safetensors", features::cache_key(&config, &dataset_hash)));
        let all: Vec<usize> = (0..dataset.images.len()).collect();
        let pooled = match features::load_cache(&cache, all.len()) {
            Some(pooled) => pooled,
            None => {
                let pooled = features::pooled_features(&model, dataset, &all, &eval_transform, progress)?;
                features::save_cache(&cache, &pooled)?;
                pooled
            }
        };
        Some(pooled.to_device(&device)?)
    } else {
        None
    };

    let mut groups = vec![(model.trained_vars(), 1.0)];
    if config.mode == Mode::Finetune {
        groups.push((model.encoder_vars(), config.cnn_learning_rate() / config.learning_rate));
    }
    let mut optimizer = Adam::with_groups(
        groups,
        AdamConfig { kind: config.optimizer, weight_decay: config.weight_decay, ..AdamConfig::default() },
    )?;
    if let Some(c) = &resumed {
        optimizer
            .load_state(&c.optimizer, c.state.step)
            .map_err(|problem| TrainError::Checkpoint { path: c.path.display().to_string(), problem })?;
    }
    let mut dropout = Dropout::from_state(0.5, state.dropout);
    let train_rows = dataset.captions_in(Split::Train);
    let batches_per_epoch = train_rows.len().div_ceil(config.batch_size);
    let total_steps = (batches_per_epoch * config.epochs) as u64;
    let metrics_path = run_dir.join(METRICS_FILE);
    // Each step once: rows past the state training continues from are dropped (a run killed or
    // resumed from an older checkpoint wrote them), as is a torn last line.
    keep_metrics_up_to(&metrics_path, state.step)?;
    let mut metrics = OpenOptions::new().create(true).append(true).open(&metrics_path).map_err(io(&metrics_path))?;
    let train_transform = ImageTransform::train(config.train_resize, config.image_size);
    let context = StepContext { model: &model, dataset, config: &config, pooled: pooled.as_ref(), train_transform };

    let mut summary = RunSummary {
        epochs: state.epoch,
        steps: state.step,
        best: state.best,
        last_validation: None,
        interrupted: false,
        stopped_early: false,
        checkpoint: checkpoint::list_checkpoints(&run_dir).first().cloned(),
        best_checkpoint: checkpoint::is_checkpoint_folder(&run_dir.join("best")).then(|| run_dir.join("best")),
        metrics: metrics_path.clone(),
    };
    let save = |state: &TrainerState, optimizer: &Adam| -> Result<PathBuf, TrainError> {
        let dir = checkpoint::checkpoint_dir(&run_dir, state.step);
        checkpoint::write_checkpoint(&dir, state, &model.state_dict()?, &optimizer.state_tensors()?, vocabulary)?;
        checkpoint::prune(&run_dir, config.keep_last, &dir);
        Ok(dir)
    };

    // The estimate of the time left covers the whole run: every step so far in this process
    // (validation included) and the steps still to go.
    let (run_started, first_step) = (Instant::now(), state.step);
    let time_left = |step: u64| {
        let done = step.saturating_sub(first_step).max(1) as f64;
        run_started.elapsed().as_secs_f64() / done * total_steps.saturating_sub(step) as f64
    };
    while state.epoch < config.epochs {
        let epoch = state.epoch;
        let order = loader::epoch_order(&train_rows, Some((config.seed, epoch as u64)));
        let batches = loader::caption_batches(dataset, &order, config.batch_size);
        progress.start(&format!("epoch {}/{}", epoch + 1, config.epochs), batches.len() as u64);
        progress.advance(state.batch_in_epoch as u64);
        let (mut loss_sum, mut loss_count) = (0.0, 0usize);
        let started = Instant::now();
        let mut samples = 0usize;
        for batch in &batches[state.batch_in_epoch.min(batches.len())..] {
            let lr = learning_rate(&config, state.step, total_steps);
            let loss = context.step(batch, &mut dropout, &mut optimizer, lr, state.step)?;
            state.step += 1;
            state.batch_in_epoch += 1;
            samples += batch.len();
            loss_sum += loss * batch.len() as f64;
            loss_count += batch.len();
            let rate = samples as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let line = json!({"step": state.step, "epoch": epoch + 1, "loss": loss, "lr": lr, "samples_per_s": rate});
            writeln!(metrics, "{line}").map_err(io(&metrics_path))?;
            progress.note(&format!(
                "loss {:.4}, run {} left",
                loss_sum / loss_count.max(1) as f64,
                duration(time_left(state.step))
            ));
            progress.advance(1);
            let due = config.checkpoint_every.is_some_and(|n| state.step % n as u64 == 0);
            if due || stop.load(Ordering::SeqCst) {
                state.dropout = dropout.state();
                summary.checkpoint = Some(save(&state, &optimizer)?);
            }
            if stop.load(Ordering::SeqCst) {
                progress.finish();
                metrics.flush().map_err(io(&metrics_path))?;
                summary.steps = state.step;
                summary.interrupted = true;
                log(&format!("stopped at step {}; checkpoint saved, continue with --resume", state.step));
                return Ok(summary);
            }
        }
        progress.finish();
        let train_seconds = started.elapsed().as_secs_f64();
        state.epoch += 1;
        state.batch_in_epoch = 0;
        state.dropout = dropout.state();

        let validation = if validation_images.is_empty() {
            None
        } else {
            Some(validation::validate(&context.evaluator(), dataset, &validation_images, config.validation_bleu)?)
        };
        let mut improved = false;
        if let Some(v) = &validation {
            let score = v.score();
            if state.best.is_none_or(|b| score > b.score) {
                state.best = Some(Best { epoch: state.epoch, score });
                state.epochs_since_best = 0;
                improved = true;
            } else {
                state.epochs_since_best += 1;
            }
        }
        let dir = save(&state, &optimizer)?;
        if improved || (validation.is_none() && state.epoch == config.epochs) {
            checkpoint::copy_checkpoint(&dir, &run_dir.join("best"))?;
            summary.best_checkpoint = Some(run_dir.join("best"));
        }
        summary.checkpoint = Some(dir);
        let mean_loss = loss_sum / loss_count.max(1) as f64;
        let mut line = json!({
            "epoch": state.epoch, "step": state.step, "train_loss": mean_loss,
            "samples_per_s": samples as f64 / train_seconds.max(1e-9), "seconds": train_seconds,
        });
        let mut text = format!("epoch {}/{}: train loss {mean_loss:.4}", state.epoch, config.epochs);
        if let Some(v) = &validation {
            line["validation_loss"] = json!(v.loss);
            text += &format!(", validation loss {:.4}", v.loss);
            if let Some(bleu) = v.bleu {
                for (n, b) in bleu.iter().enumerate() {
                    line[format!("bleu_{}", n + 1)] = json!(b);
                }
                text += &format!(", BLEU-4 {:.4}", bleu[3]);
            }
            if improved {
                text += " (best)";
            }
        }
        text += &format!(", {} samples/s", per_second(samples as f64 / train_seconds.max(1e-9)));
        if state.epoch < config.epochs {
            text += &format!(", about {} left", duration(time_left(state.step)));
        }
        writeln!(metrics, "{line}").map_err(io(&metrics_path))?;
        metrics.flush().map_err(io(&metrics_path))?;
        crate::plots::write_plots(&run_dir)?;
        log(&text);
        summary.epochs = state.epoch;
        summary.steps = state.step;
        summary.best = state.best;
        summary.last_validation = validation;
        if config.early_stopping.is_some_and(|patience| state.epochs_since_best >= patience) {
            summary.stopped_early = true;
            log(&format!("no better validation score for {} epochs: stopping early", state.epochs_since_best));
            break;
        }
    }
    Ok(summary)
}

/// Rewrites metrics.jsonl (atomically) without the rows of steps after `step` and without
/// lines that do not parse; nothing happens when there is nothing to drop.
fn keep_metrics_up_to(path: &Path, step: u64) -> Result<(), TrainError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let keep = |line: &&str| {
        serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|row| row.get("step").and_then(serde_json::Value::as_u64).is_some_and(|s| s <= step))
    };
    let kept: Vec<&str> = text.lines().filter(keep).collect();
    if kept.len() == text.lines().count() && (text.is_empty() || text.ends_with('\n')) {
        return Ok(());
    }
    let mut rewritten = kept.join("\n");
    if !rewritten.is_empty() {
        rewritten.push('\n');
    }
    write_atomically(path, rewritten.as_bytes())
}

/// The learning rate at `step`.
fn learning_rate(config: &TrainConfig, step: u64, total: u64) -> f64 {
    match config.schedule {
        Schedule::Constant => config.learning_rate,
        Schedule::Cosine => {
            let progress = step as f64 / total.max(1) as f64;
            config.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
        }
    }
}

/// [`caption_io::write_bytes_atomically`], its error naming `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    caption_io::write_bytes_atomically(path, bytes).map_err(io(path))
}

/// What one training step needs.
struct StepContext<'a> {
    model: &'a TrainModel,
    dataset: &'a PreparedDataset,
    config: &'a TrainConfig,
    pooled: Option<&'a Tensor>,
    train_transform: ImageTransform,
}

impl StepContext<'_> {
    /// One optimizer step on a batch; returns the loss.
    fn step(
        &self,
        batch: &loader::CaptionBatch,
        dropout: &mut Dropout,
        optimizer: &mut Adam,
        lr: f64,
        step: u64,
    ) -> Result<f64, TrainError> {
        let device = &self.model.device;
        let pooled = match self.pooled {
            Some(all) => features::select_rows(all, &batch.images)?,
            None => {
                // Inception in train mode on random crops. Original mode: only fc
                // trains, so no gradient flows into the network; finetune: it all trains.
                let seed = self.config.seed ^ step;
                let images = features::images_tensor(self.dataset, &batch.images, &self.train_transform, seed, device)?;
                let inception = self.model.model.encoder.inception();
                if self.config.mode == Mode::Finetune {
                    inception.forward_t(&images, true)?.pooled
                } else {
                    inception.forward_batch_statistics(&images)?.pooled.detach()
                }
            }
        };
        let captions = Tensor::from_vec(batch.tokens.clone(), (batch.length, batch.len()), device)?;
        optimizer_step(self.model, &pooled, &captions, dropout, optimizer, lr, self.config.clip_grad_norm)
    }

    fn evaluator(&self) -> validation::Evaluator<'_> {
        validation::Evaluator {
            model: self.model,
            dataset: self.dataset,
            pooled: self.pooled,
            transform: ImageTransform::eval(self.config.image_size),
            batch_size: self.config.batch_size,
            max_length: self.config.max_length,
        }
    }
}
