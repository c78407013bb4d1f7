//! What the training tests share: a tiny shapes dataset, small settings, a run that can be
//! stopped after a number of steps, and checkpoint comparisons.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use candle_core::{Device, Tensor};
use caption_data::shapes::{self, ShapesConfig};
use caption_data::{ImageSource, NoProgress, PrepareOptions, PreparedDataset, Progress, prepare};
use caption_train::{EncoderWeights, TrainConfig, TrainError, TrainOptions, checkpoint, train};

pub fn dataset(dir: &Path, images: usize, seed: u64) -> PreparedDataset {
    let generated = shapes::generate(ShapesConfig { images, size: 80, seed, ..ShapesConfig::default() });
    let (records, pngs) = shapes::records_and_images(&generated);
    let options = PrepareOptions {
        threshold: 2,
        split_ratios: "70/30/0".parse().unwrap(),
        extra_files: vec![(shapes::GROUND_TRUTH_FILE.into(), serde_json::to_vec(&generated).unwrap())],
        ..PrepareOptions::default()
    };
    prepare(records, &ImageSource::Bytes(pngs), &options, &dir.join(format!("data-{images}-{seed}")), &NoProgress)
        .unwrap()
}

pub fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        embed_size: 24,
        hidden_size: 32,
        learning_rate: 3e-3,
        encoder: EncoderWeights::Random,
        transform_input: false,
        image_size: 75,
        calibration_images: 16,
        validation_bleu: false,
        seed: 11,
        ..TrainConfig::default()
    }
}

/// Stops the run after a given number of training steps (counted through the progress reports).
pub struct StopAfter<'a> {
    steps: u64,
    seen: AtomicU64,
    stop: &'a AtomicBool,
}

impl Progress for StopAfter<'_> {
    fn start(&self, stage: &str, _total: u64) {
        if !stage.starts_with("epoch") {
            self.seen.store(u64::MAX / 2, Ordering::SeqCst);
        } else if self.seen.load(Ordering::SeqCst) == u64::MAX / 2 {
            self.seen.store(0, Ordering::SeqCst);
        }
    }
    fn advance(&self, units: u64) {
        if self.seen.fetch_add(units, Ordering::SeqCst) + units >= self.steps {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

pub fn run(
    data: &PreparedDataset,
    run_dir: &Path,
    config: TrainConfig,
    resume: bool,
    stop_after: Option<u64>,
) -> caption_train::RunSummary {
    let stop = AtomicBool::new(false);
    let stopper = StopAfter { steps: stop_after.unwrap_or(u64::MAX), seen: AtomicU64::new(u64::MAX / 2), stop: &stop };
    train(TrainOptions {
        config,
        dataset: data,
        run_dir: run_dir.to_path_buf(),
        resume,
        device: Device::Cpu,
        progress: &stopper,
        stop: &stop,
        log: &|_| {},
    })
    .unwrap()
}

pub fn weights(checkpoint: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(checkpoint.join(checkpoint::MODEL_FILE), &Device::Cpu).unwrap()
}

pub fn assert_identical(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) {
    assert_eq!(a.len(), b.len());
    for (name, x) in a {
        let x: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b[name].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{name} differs");
    }
}

pub fn newest(run_dir: &Path) -> PathBuf {
    checkpoint::list_checkpoints(run_dir).into_iter().next().unwrap()
}

/// [`train`] with a log that is kept, for runs expected to say something or to fail.
pub fn train_logged(
    data: &PreparedDataset,
    run_dir: &Path,
    config: TrainConfig,
    resume: bool,
) -> (Result<caption_train::RunSummary, TrainError>, Vec<String>) {
    let stop = AtomicBool::new(false);
    let lines = std::sync::Mutex::new(Vec::new());
    let result = train(TrainOptions {
        config,
        dataset: data,
        run_dir: run_dir.to_path_buf(),
        resume,
        device: Device::Cpu,
        progress: &NoProgress,
        stop: &stop,
        log: &|line| lines.lock().unwrap().push(line.to_string()),
    });
    (result, lines.into_inner().unwrap())
}
