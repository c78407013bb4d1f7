//! The training loop: seeded batches, the masked loss, Adam, validation after each epoch,
//! checkpoints (every epoch, optionally every N steps, and on a stop request), resume.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use caption_data::progress::{duration, per_second};
use caption_data::{ImageTransform, PreparedDataset, Progress, Split, loader};
use caption_model::{Dropout, HeadInput, InceptionOutput, Targets};
use caption_text::Vocabulary;
use serde_json::json;

use crate::TrainError;
use crate::adam::{Adam, AdamConfig};
use crate::checkpoint::{self, Best, Checkpoint, TrainerState};
use crate::config::Objective;
use crate::config::{EncoderWeights, Mode, Schedule, TrainConfig};
use crate::error::io;
use crate::features::{self, FrozenFeatures};
use crate::model::TrainModel;
use crate::run_folder::{RunFolder, write_atomically};
use crate::scst::{Reward, ScstContext, ScstOutcome, scst_step};
use crate::spatial_cache::Storage;
use crate::step::optimizer_step;
use crate::validation::{self, Validation};
use caption_infer::checkpoint_files::first_non_finite;
use caption_infer::frozen_weights::FrozenWeights;
use caption_infer::images::dataset_images;

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

/// How the run ended, for people: its state (finished, stopped early, interrupted), epochs and
/// steps, the best score, the checkpoints and the metrics file, one per line.
impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match (self.interrupted, self.stopped_early) {
            (true, _) => "interrupted",
            (false, true) => "stopped early",
            (false, false) => "finished",
        };
        writeln!(f, "{state}: {} epochs, {} steps", self.epochs, self.steps)?;
        if let Some(best) = self.best {
            writeln!(f, "best validation score {:.4} at epoch {}", best.score, best.epoch)?;
        }
        if let Some(best) = &self.best_checkpoint {
            writeln!(f, "best checkpoint: {}", best.display())?;
        }
        if let Some(last) = &self.checkpoint {
            writeln!(f, "last checkpoint: {}", last.display())?;
        }
        write!(f, "metrics: {}", self.metrics.display())
    }
}

/// Trains (or resumes) a run: the run folder locked, the checkpoint to resume from, the settings
/// and the model (`Start`), the frozen mode's feature cache, then epoch after epoch
/// (`Run::train_epoch`, `Run::end_epoch`) until the last, an early stop, or a stop request.
///
/// # Errors
/// [`TrainError`]: bad config, unusable dataset or weights, a checkpoint that does not fit, I/O.
pub fn train(options: TrainOptions<'_>) -> Result<RunSummary, TrainError> {
    let TrainOptions { config, dataset, run_dir, resume, device, progress, stop, log } = options;
    config.validate().map_err(TrainError::Config)?;
    crate::flush_denormals_to_zero();
    let folder = RunFolder::lock(&run_dir)?;
    let start = Start::new(&folder, config, dataset, resume, &device, log)?;
    if dataset.images_in(Split::Train).is_empty() {
        return Err(TrainError::Config("the dataset has no training images".into()));
    }
    let frozen = frozen_features(&folder, &start, dataset, progress, log)?;
    let mut run = Run::new(folder, start, dataset, frozen, progress, stop, log)?;
    if run.state.step == 0 && run.state.best.is_none() && run.config.scst.from.is_some() {
        run.validate_start()?;
    }
    while run.state.epoch < run.config.epochs {
        let Some(epoch) = run.train_epoch()? else { return Ok(run.summary) };
        let validation = run.validate()?;
        if run.end_epoch(&epoch, validation)? {
            break;
        }
    }
    Ok(run.summary)
}

/// Where a run starts: its settings, the model and the trainer's state, fresh or resumed.
struct Start {
    config: TrainConfig,
    model: TrainModel,
    state: TrainerState,
    /// The checkpoint resumed from.
    resumed: Option<Checkpoint>,
}

impl Start {
    /// Picks the checkpoint to resume from (moving damaged ones aside), merges the settings a
    /// resume may change, builds the model and writes the run's config.toml and tokenizer.json.
    fn new(
        folder: &RunFolder,
        config: TrainConfig,
        dataset: &PreparedDataset,
        resume: bool,
        device: &Device,
        log: &dyn Fn(&str),
    ) -> Result<Self, TrainError> {
        let vocabulary = &dataset.vocabulary;
        let dataset_hash = dataset.manifest.content_hash();
        let (resumed, best) = resume_point(folder, resume, log)?;
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
        let model = TrainModel::new(&config, vocabulary.len(), device)?;
        let mut state = match &resumed {
            Some(c) => {
                model.load_state_dict(&c.model, &c.path.display().to_string())?;
                log(&format!("resuming from {} (epoch {}, step {})", c.path.display(), c.state.epoch, c.state.step));
                let mut state = c.state.clone();
                // best/ may hold a better score than this checkpoint knew (it fell back past
                // newer ones): only a model better than best/'s may replace it.
                if let Some(best) = best.filter(|b| state.best.is_none_or(|s| b.score > s.score)) {
                    state.best = Some(best);
                }
                state
            }
            None => {
                match (&config.objective, &config.scst.from) {
                    (Objective::Scst, Some(from)) => load_starting_model(&model, from, vocabulary, log)?,
                    _ => model.load_encoder_weights(&config.encoder)?,
                }
                TrainerState {
                    epoch: 0,
                    batch_in_epoch: 0,
                    step: 0,
                    dropout: Dropout::new(model.model.dropout_probability(), config.seed ^ 0x0d50_0d50).state(),
                    best: None,
                    epochs_since_best: 0,
                    config: config.clone(),
                    dataset_hash,
                    vocab_size: vocabulary.len(),
                    created_by: format!("caption-train {}", env!("CARGO_PKG_VERSION")),
                }
            }
        };
        state.config = config.clone();
        folder.write_settings(&config, vocabulary)?;
        Ok(Self { config, model, state, resumed })
    }

    /// The optimizer over what trains (Inception v3 too when fine-tuning, at its own rate), with
    /// the resumed checkpoint's moments.
    fn optimizer(&self) -> Result<Adam, TrainError> {
        let config = &self.config;
        let mut groups = vec![(self.model.trained_vars(), 1.0)];
        if config.mode == Mode::Finetune {
            groups.push((self.model.encoder_vars(), config.cnn_learning_rate() / config.learning_rate));
        }
        let adam = AdamConfig { kind: config.optimizer, weight_decay: config.weight_decay, ..AdamConfig::default() };
        let mut optimizer = Adam::with_groups(groups, adam)?;
        if let Some(c) = &self.resumed {
            optimizer
                .load_state(&c.optimizer, c.state.step)
                .map_err(|problem| TrainError::Checkpoint { path: c.path.display().to_string(), problem })?;
        }
        Ok(optimizer)
    }
}

/// The checkpoint a run continues from (with the best score `best/` records), or none for a new
/// run. A run that holds checkpoints is only continued with `resume`; damaged checkpoints newer
/// than the one resumed are moved aside; a run whose every checkpoint is damaged is left as it is.
fn resume_point(
    folder: &RunFolder,
    resume: bool,
    log: &dyn Fn(&str),
) -> Result<(Option<Checkpoint>, Option<Best>), TrainError> {
    let run_dir = folder.path();
    if !resume {
        if folder.holds_checkpoints() {
            return Err(TrainError::Config(format!(
                "{} already holds checkpoints: pass --resume to continue it, or choose another run folder",
                run_dir.display()
            )));
        }
        return Ok((None, None));
    }
    let point = checkpoint::resume_point(run_dir);
    let Some(resumed) = point.checkpoint else {
        if !point.damaged.is_empty() {
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
        log(&format!("{} holds no checkpoint yet: starting the run", run_dir.display()));
        return Ok((None, None));
    };
    for (dir, why) in &point.damaged {
        let aside = checkpoint::move_aside(run_dir, dir)?;
        log(&format!("moved the damaged checkpoint {} to {} ({why})", dir.display(), aside.display()));
    }
    Ok((Some(resumed), point.best))
}

/// Loads the model self-critical training starts from (`from`: a run, its best checkpoint, or a
/// checkpoint folder), which must have been trained on the dataset's vocabulary.
fn load_starting_model(
    model: &TrainModel,
    from: &Path,
    vocabulary: &caption_text::Vocabulary,
    log: &dyn Fn(&str),
) -> Result<(), TrainError> {
    let source = caption_infer::checkpoint_files::read_trained_model(from)
        .map_err(|error| TrainError::Config(format!("the model to start from: {error}")))?;
    let name = source.path.display().to_string();
    if source.vocabulary.words() != vocabulary.words() {
        return Err(TrainError::Checkpoint {
            path: name,
            problem: format!(
                "its vocabulary ({} ids) is not the dataset's ({} ids): it was trained on another dataset",
                source.vocabulary.len(),
                vocabulary.len()
            ),
        });
    }
    model.load_state_dict(&source.tensors, &name)?;
    let step = source.metadata.step.map(|step| format!(" (step {step})")).unwrap_or_default();
    log(&format!("self-critical training from {name}{step}"));
    Ok(())
}

/// Frozen mode's encoder features for every image (eval mode, computed once and cached in the
/// run folder; random weights first get BatchNorm statistics from training images): pooled
/// features, or the attention model's grids; `None` in the other modes, where the encoder runs
/// on every batch.
fn frozen_features(
    folder: &RunFolder,
    start: &Start,
    dataset: &PreparedDataset,
    progress: &dyn Progress,
    log: &dyn Fn(&str),
) -> Result<Option<FrozenFeatures>, TrainError> {
    let config = &start.config;
    if config.mode != Mode::Frozen {
        return Ok(None);
    }
    let eval_transform = ImageTransform::eval(config.image_size);
    // Random weights get their BatchNorm statistics from training images when a run starts (a
    // self-critical run starts from a model that has them).
    if start.resumed.is_none()
        && config.encoder == EncoderWeights::Random
        && config.objective == Objective::CrossEntropy
    {
        let train_images = dataset.images_in(Split::Train);
        let calibration = loader::epoch_order(&train_images, Some((config.seed, u64::MAX)));
        let calibration = &calibration[..config.calibration_images.clamp(1, calibration.len())];
        features::recalibrate_batch_norm(&start.model, dataset, calibration, &eval_transform, progress)?;
    }
    // The state's dataset hash: the dataset's own (a resumed checkpoint's was checked against it).
    let dataset_hash = &start.state.dataset_hash;
    if config.decoder.head_input() == HeadInput::Grid {
        let cache = folder.feature_cache(&features::grid_cache_key(config, dataset_hash));
        let origin = features::grid_origin(config, dataset_hash);
        let storage = if config.attention.cache_float16 { Storage::Float16 } else { Storage::Float32 };
        let (grids, rebuilt) =
            features::grid_cache(&cache, &origin, &start.model, dataset, &eval_transform, storage, progress)?;
        if let Some(why) = rebuilt {
            log(&format!("{}: {why}; computed it again", cache.display()));
        }
        return Ok(Some(FrozenFeatures::Grids(grids)));
    }
    let cache = folder.feature_cache(&features::cache_key(config, dataset_hash));
    let all: Vec<usize> = (0..dataset.images.len()).collect();
    let loaded = features::load_cache(&cache, all.len()).unwrap_or_else(|why| {
        log(&format!("{}: {why}; computing it again", cache.display()));
        None
    });
    let pooled = match loaded {
        Some(pooled) => pooled,
        None => {
            let pooled = features::pooled_features(&start.model, dataset, &all, &eval_transform, progress)?;
            features::save_cache(&cache, &pooled)?;
            pooled
        }
    };
    Ok(Some(FrozenFeatures::Pooled(pooled.to_device(&start.model.device)?)))
}

/// What one epoch's training steps add up to.
struct EpochTraining {
    mean_loss: f64,
    samples: usize,
    seconds: f64,
}

/// A run under way: everything the epochs share.
struct Run<'a> {
    folder: RunFolder,
    dataset: &'a PreparedDataset,
    config: TrainConfig,
    model: TrainModel,
    state: TrainerState,
    optimizer: Adam,
    dropout: Dropout,
    frozen: Option<FrozenFeatures>,
    /// metrics.jsonl, open for appending.
    metrics: File,
    /// What an epoch goes through: caption rows (cross-entropy) or image rows (self-critical).
    train_rows: Vec<usize>,
    /// Self-critical training's reward.
    reward: Option<Reward>,
    validation_images: Vec<usize>,
    total_steps: u64,
    /// When this process started training, and at which step: the estimate of the time left
    /// covers the whole run (validation included) from these.
    started: (Instant, u64),
    progress: &'a dyn Progress,
    stop: &'a AtomicBool,
    log: &'a dyn Fn(&str),
    summary: RunSummary,
    /// Frozen mode's weights file, once written by this process.
    frozen_weights: Option<FrozenWeights>,
}

impl<'a> Run<'a> {
    fn new(
        folder: RunFolder,
        start: Start,
        dataset: &'a PreparedDataset,
        frozen: Option<FrozenFeatures>,
        progress: &'a dyn Progress,
        stop: &'a AtomicBool,
        log: &'a dyn Fn(&str),
    ) -> Result<Self, TrainError> {
        let optimizer = start.optimizer()?;
        let Start { config, model, state, .. } = start;
        let (train_rows, reward) = match config.objective {
            Objective::CrossEntropy => (dataset.captions_in(Split::Train), None),
            Objective::Scst => (dataset.images_in(Split::Train), Some(Reward::new(dataset, config.scst.bleu_weight)?)),
        };
        let total_steps = (train_rows.len().div_ceil(config.batch_size) * config.epochs) as u64;
        let metrics_path = folder.metrics_file();
        // Each step once: rows past the state training continues from are dropped (a run killed
        // or resumed from an older checkpoint wrote them), as is a torn last line.
        keep_metrics_up_to(&metrics_path, state.step)?;
        let metrics = OpenOptions::new().create(true).append(true).open(&metrics_path).map_err(io(&metrics_path))?;
        let summary = RunSummary {
            epochs: state.epoch,
            steps: state.step,
            best: state.best,
            last_validation: None,
            interrupted: false,
            stopped_early: false,
            checkpoint: folder.newest_checkpoint(),
            best_checkpoint: folder.best_checkpoint(),
            metrics: metrics_path,
        };
        Ok(Self {
            dropout: Dropout::from_state(model.model.dropout_probability(), state.dropout),
            validation_images: dataset.images_in(Split::Validation),
            started: (Instant::now(), state.step),
            folder,
            dataset,
            config,
            model,
            state,
            optimizer,
            frozen,
            metrics,
            train_rows,
            reward,
            total_steps,
            progress,
            stop,
            log,
            summary,
            frozen_weights: None,
        })
    }

    /// What the steps need.
    fn steps(&self) -> StepContext<'_> {
        StepContext::new(&self.model, self.dataset, &self.config, self.frozen.as_ref(), self.reward.as_ref())
    }

    /// The estimated time until the run's last step, from the pace of this process so far.
    fn time_left(&self) -> f64 {
        let (started, first_step) = self.started;
        let done = self.state.step.saturating_sub(first_step).max(1) as f64;
        started.elapsed().as_secs_f64() / done * self.total_steps.saturating_sub(self.state.step) as f64
    }

    /// The rest of the current epoch's steps, each logged to metrics.jsonl, with a checkpoint
    /// every `checkpoint_every` steps. `None` when a stop was requested: a checkpoint is saved and
    /// the summary says so.
    fn train_epoch(&mut self) -> Result<Option<EpochTraining>, TrainError> {
        let config = &self.config;
        let epoch = self.state.epoch;
        let order = loader::epoch_order(&self.train_rows, Some((config.seed, epoch as u64)));
        let batches: Vec<Batch> = match config.objective {
            Objective::CrossEntropy => loader::caption_batches(self.dataset, &order, config.batch_size)
                .into_iter()
                .map(Batch::Captions)
                .collect(),
            Objective::Scst => order.chunks(config.batch_size).map(|images| Batch::Images(images.to_vec())).collect(),
        };
        self.progress.start_counting(
            &format!("epoch {}/{}", epoch + 1, config.epochs),
            batches.len() as u64,
            "batches",
        );
        self.progress.skip(self.state.batch_in_epoch as u64);
        let (mut loss_sum, mut samples) = (0.0, 0usize);
        let started = Instant::now();
        for batch in &batches[self.state.batch_in_epoch.min(batches.len())..] {
            let lr = learning_rate(&self.config, self.state.step, self.total_steps);
            let steps =
                StepContext::new(&self.model, self.dataset, &self.config, self.frozen.as_ref(), self.reward.as_ref());
            let (loss, scst) = steps.step(batch, &mut self.dropout, &mut self.optimizer, lr, self.state.step)?;
            if !loss.is_finite() {
                return Err(self.diverged(self.state.step + 1, format!("the loss is {loss}")));
            }
            self.state.step += 1;
            self.state.batch_in_epoch += 1;
            samples += batch.len();
            loss_sum += loss * batch.len() as f64;
            let rate = samples as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let mut line =
                json!({"step": self.state.step, "epoch": epoch + 1, "loss": loss, "lr": lr, "samples_per_s": rate});
            if let Some(outcome) = scst {
                line["reward"] = json!(outcome.reward);
                line["baseline"] = json!(outcome.baseline);
                line["greedy_cider"] = json!(outcome.greedy_cider);
                line["better_than_baseline"] = json!(outcome.better);
            }
            self.write_metrics(&line)?;
            let note = format!("loss {:.4}, run {} left", loss_sum / samples.max(1) as f64, duration(self.time_left()));
            self.progress.note(&note);
            self.progress.advance(1);
            let stop = self.stop.load(Ordering::SeqCst);
            if stop || self.config.checkpoint_every.is_some_and(|n| self.state.step.is_multiple_of(n as u64)) {
                self.summary.checkpoint = Some(self.save()?);
            }
            if stop {
                self.progress.finish();
                self.metrics.flush().map_err(io(&self.summary.metrics))?;
                self.summary.steps = self.state.step;
                self.summary.interrupted = true;
                (self.log)(&format!("stopped at step {}; checkpoint saved, continue with --resume", self.state.step));
                return Ok(None);
            }
        }
        self.progress.finish();
        self.state.epoch += 1;
        self.state.batch_in_epoch = 0;
        let mean_loss = loss_sum / samples.max(1) as f64;
        Ok(Some(EpochTraining { mean_loss, samples, seconds: started.elapsed().as_secs_f64() }))
    }

    /// The validation split's loss and (when configured) BLEU; `None` without validation images.
    fn validate(&self) -> Result<Option<Validation>, TrainError> {
        if self.validation_images.is_empty() {
            return Ok(None);
        }
        let steps = self.steps();
        let scores =
            validation::Scores { bleu: self.config.validation_bleu, cider: self.config.objective == Objective::Scst };
        Ok(Some(validation::validate(&steps.evaluator(), self.dataset, &self.validation_images, scores)?))
    }

    /// Self-critical training from a model: the starting model is validated before any step and
    /// saved as the first checkpoint (epoch 0) and `best/`, so that `best/` is never a model
    /// that scores below the one the run started from. Its line in metrics.jsonl has
    /// `"start": true` and no training loss.
    fn validate_start(&mut self) -> Result<(), TrainError> {
        let Some(validation) = self.validate()? else { return Ok(()) };
        self.record_score(validation.score());
        let dir = self.save()?;
        self.summary.best_checkpoint = Some(self.folder.copy_to_best(&dir)?);
        self.summary.checkpoint = Some(dir);
        self.summary.best = self.state.best;
        let mut line = json!({"epoch": 0, "step": 0, "start": true});
        let mut text = "the starting model".to_string();
        describe_validation(&validation, &mut line, &mut text);
        text += " (best until an epoch scores higher)";
        self.write_metrics(&line)?;
        self.metrics.flush().map_err(io(&self.summary.metrics))?;
        (self.log)(&text);
        Ok(())
    }

    /// After an epoch: the best score kept, the checkpoint written (and copied to `best/` when
    /// better), the epoch's line in metrics.jsonl, the plots and the log line. Returns whether
    /// training stops early.
    fn end_epoch(&mut self, epoch: &EpochTraining, validation: Option<Validation>) -> Result<bool, TrainError> {
        let improved = validation.as_ref().is_some_and(|v| self.record_score(v.score()));
        let dir = self.save()?;
        if improved || (validation.is_none() && self.state.epoch == self.config.epochs) {
            self.summary.best_checkpoint = Some(self.folder.copy_to_best(&dir)?);
        }
        self.summary.checkpoint = Some(dir);
        let rate = epoch.samples as f64 / epoch.seconds.max(1e-9);
        let mut line = json!({
            "epoch": self.state.epoch, "step": self.state.step, "train_loss": epoch.mean_loss,
            "samples_per_s": rate, "seconds": epoch.seconds,
        });
        let mut text = format!("epoch {}/{}: train loss {:.4}", self.state.epoch, self.config.epochs, epoch.mean_loss);
        if let Some(v) = &validation {
            describe_validation(v, &mut line, &mut text);
            if improved {
                text += " (best)";
            }
        }
        text += &format!(", {} samples/s", per_second(rate));
        if self.state.epoch < self.config.epochs {
            text += &format!(", about {} left", duration(self.time_left()));
        }
        self.write_metrics(&line)?;
        self.metrics.flush().map_err(io(&self.summary.metrics))?;
        crate::plots::write_plots(self.folder.path())?;
        (self.log)(&text);
        self.summary.epochs = self.state.epoch;
        self.summary.steps = self.state.step;
        self.summary.best = self.state.best;
        self.summary.last_validation = validation;
        let patience_over = self.config.early_stopping.is_some_and(|patience| self.state.epochs_since_best >= patience);
        if patience_over {
            self.summary.stopped_early = true;
            (self.log)(&format!(
                "no better validation score for {} epochs: stopping early",
                self.state.epochs_since_best
            ));
        }
        Ok(patience_over)
    }

    /// Records an epoch's validation score; whether it is the best so far.
    fn record_score(&mut self, score: f64) -> bool {
        if self.state.best.is_none_or(|b| score > b.score) {
            self.state.best = Some(Best { epoch: self.state.epoch, score });
            self.state.epochs_since_best = 0;
            true
        } else {
            self.state.epochs_since_best += 1;
            false
        }
    }

    /// Writes a checkpoint of the current state and prunes the older ones.
    fn save(&mut self) -> Result<PathBuf, TrainError> {
        self.state.dropout = self.dropout.state();
        let mut model = self.model.state_dict()?;
        // Frozen mode: what never trains is written once for the run (and checked once), each
        // checkpoint names it and holds the rest.
        if self.config.mode == Mode::Frozen {
            let kind = self.config.decoder;
            if self.frozen_weights.is_none() {
                let frozen: HashMap<String, Tensor> =
                    model.iter().filter(|(name, _)| !kind.is_head(name)).map(|(n, t)| (n.clone(), t.clone())).collect();
                self.refuse_non_finite(&frozen)?;
                let (reference, bytes) = FrozenWeights::serialize(&frozen).map_err(|problem| {
                    TrainError::Checkpoint { path: self.folder.path().display().to_string(), problem }
                })?;
                self.folder.write_frozen_weights(&reference, &bytes)?;
                self.frozen_weights = Some(reference);
            }
            model.retain(|name, _| kind.is_head(name));
        }
        self.refuse_non_finite(&model)?;
        let optimizer = self.optimizer.state_tensors()?;
        let frozen = self.frozen_weights.as_ref();
        self.folder.save_checkpoint(
            &self.state,
            &model,
            frozen,
            &optimizer,
            &self.dataset.vocabulary,
            self.config.keep_last,
        )
    }

    /// [`TrainError::Diverged`] when a parameter among `tensors` is not a number: a checkpoint
    /// is never written with one.
    fn refuse_non_finite(&self, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
        match first_non_finite(tensors)? {
            Some((name, value)) => Err(self.diverged(self.state.step, format!("parameter {name} holds {value}"))),
            None => Ok(()),
        }
    }

    /// [`TrainError::Diverged`] at `step`, naming the newest checkpoint saved before it.
    fn diverged(&self, step: u64, problem: String) -> TrainError {
        let last_checkpoint = self.summary.checkpoint.as_ref().map(|path| path.display().to_string());
        TrainError::Diverged { step, problem, last_checkpoint }
    }

    /// One line of metrics.jsonl.
    fn write_metrics(&mut self, line: &serde_json::Value) -> Result<(), TrainError> {
        writeln!(self.metrics, "{line}").map_err(io(&self.summary.metrics))
    }
}

/// A validation's figures added to a metrics.jsonl `line` and a log `text`: the loss, BLEU-1..4
/// and CIDEr-D where computed.
fn describe_validation(validation: &Validation, line: &mut serde_json::Value, text: &mut String) {
    line["validation_loss"] = json!(validation.loss);
    *text += &format!(", validation loss {:.4}", validation.loss);
    if let Some(bleu) = validation.bleu {
        for (n, b) in bleu.iter().enumerate() {
            line[format!("bleu_{}", n + 1)] = json!(b);
        }
        *text += &format!(", BLEU-4 {:.4}", bleu[3]);
    }
    if let Some(cider) = validation.cider {
        line["cider"] = json!(cider);
        *text += &format!(", CIDEr-D {cider:.4}");
    }
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

/// What one training step needs.
struct StepContext<'a> {
    model: &'a TrainModel,
    dataset: &'a PreparedDataset,
    config: &'a TrainConfig,
    frozen: Option<&'a FrozenFeatures>,
    reward: Option<&'a Reward>,
    train_transform: ImageTransform,
}

/// A training step's batch: captions (cross-entropy) or images (self-critical training).
enum Batch {
    Captions(loader::CaptionBatch),
    Images(Vec<usize>),
}

impl Batch {
    /// Captions or images in it.
    fn len(&self) -> usize {
        match self {
            Self::Captions(batch) => batch.len(),
            Self::Images(images) => images.len(),
        }
    }
}

impl<'a> StepContext<'a> {
    fn new(
        model: &'a TrainModel,
        dataset: &'a PreparedDataset,
        config: &'a TrainConfig,
        frozen: Option<&'a FrozenFeatures>,
        reward: Option<&'a Reward>,
    ) -> Self {
        let train_transform = ImageTransform::train(config.train_resize, config.image_size);
        Self { model, dataset, config, frozen, reward, train_transform }
    }

    /// One optimizer step on a batch; returns the loss, and what a self-critical step found.
    fn step(
        &self,
        batch: &Batch,
        dropout: &mut Dropout,
        optimizer: &mut Adam,
        lr: f64,
        step: u64,
    ) -> Result<(f64, Option<ScstOutcome>), TrainError> {
        let clip = self.config.clip_grad_norm;
        match batch {
            Batch::Captions(batch) => {
                let device = &self.model.device;
                let captions = Tensor::from_vec(batch.tokens.clone(), (batch.length, batch.len()), device)?;
                let head_input = self.head_input(&batch.images, step)?;
                let targets = Targets::new(&captions, Vocabulary::PAD);
                Ok((optimizer_step(self.model, &head_input, targets, dropout, optimizer, lr, clip)?, None))
            }
            Batch::Images(images) => {
                let reward =
                    self.reward.ok_or_else(|| TrainError::Config("self-critical training needs its reward".into()))?;
                let context = ScstContext {
                    reward,
                    settings: &self.config.scst,
                    vocabulary: &self.dataset.vocabulary,
                    max_length: self.config.max_length,
                };
                let head_input = self.head_input(images, step)?;
                let seed = self.config.seed ^ step.wrapping_mul(0xa076_1d64_78bd_642f);
                let outcome = scst_step(&context, self.model, &head_input, images, seed, optimizer, (lr, clip))?;
                Ok((outcome.loss, Some(outcome)))
            }
        }
    }

    /// The head's input for the images of a step: frozen mode's cached rows, else Inception in
    /// train mode on random crops (original mode: only the head trains, so no gradient flows into
    /// the network; finetune: it all trains).
    fn head_input(&self, images: &[usize], step: u64) -> Result<Tensor, TrainError> {
        let device = &self.model.device;
        Ok(match self.frozen {
            Some(frozen) => frozen.rows(images, device)?,
            None => {
                let seed = self.config.seed ^ step;
                let images = dataset_images(self.dataset, images, &self.train_transform, seed, device)?;
                let inception = self.model.model.inception();
                let output = if self.config.mode == Mode::Finetune {
                    inception.forward_t(&images, true)?
                } else {
                    let output = inception.forward_batch_statistics(&images)?;
                    InceptionOutput { pooled: output.pooled.detach(), spatial: output.spatial.detach(), ..output }
                };
                self.model.model.head_input(&output)?
            }
        })
    }

    fn evaluator(&self) -> validation::Evaluator<'_> {
        validation::Evaluator {
            model: self.model,
            dataset: self.dataset,
            frozen: self.frozen,
            transform: ImageTransform::eval(self.config.image_size),
            batch_size: self.config.batch_size,
            max_length: self.config.max_length,
        }
    }
}
