//! Training on a tiny generated shapes dataset: reproducibility, exact resume (also after a
//! damaged checkpoint), learning, and refusing checkpoints that do not fit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use candle_core::{Device, Tensor};
use caption_data::shapes::{self, ShapesConfig};
use caption_data::{ImageSource, NoProgress, PrepareOptions, PreparedDataset, Progress, Split, prepare};
use caption_train::{EncoderWeights, Mode, TrainConfig, TrainError, TrainOptions, checkpoint, train};

fn dataset(dir: &Path, images: usize, seed: u64) -> PreparedDataset {
    let generated = shapes::generate(ShapesConfig { images, size: 80, seed });
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

fn config(epochs: usize) -> TrainConfig {
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
struct StopAfter<'a> {
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

fn run(
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

fn weights(checkpoint: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(checkpoint.join(checkpoint::MODEL_FILE), &Device::Cpu).unwrap()
}

fn assert_identical(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) {
    assert_eq!(a.len(), b.len());
    for (name, x) in a {
        let x: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b[name].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{name} differs");
    }
}

fn newest(run_dir: &Path) -> PathBuf {
    checkpoint::list_checkpoints(run_dir).into_iter().next().unwrap()
}

#[test]
fn same_seed_same_weights_and_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 24, 1);

    let whole = dir.path().join("whole");
    let summary = run(&data, &whole, config(3), false, None);
    assert_eq!(summary.epochs, 3);
    let again = dir.path().join("again");
    run(&data, &again, config(3), false, None);
    assert_identical(&weights(&newest(&whole)), &weights(&newest(&again)));

    // Stopped mid-epoch twice (a checkpoint each time), the newest checkpoint damaged, resumed.
    let pieces = dir.path().join("pieces");
    let first = run(&data, &pieces, config(3), false, Some(3));
    assert!(first.interrupted);
    let second = run(&data, &pieces, config(3), true, Some(7));
    assert!(second.interrupted && second.steps == 7, "{second:?}");
    let damaged = newest(&pieces);
    let model = damaged.join(checkpoint::MODEL_FILE);
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 3]).unwrap();
    let point = checkpoint::resume_point(&pieces);
    let second_newest = checkpoint::list_checkpoints(&pieces)[1].clone();
    assert_eq!(point.checkpoint.unwrap().path, second_newest);
    assert_eq!(point.damaged[0].0, damaged);
    assert!(point.damaged[0].1.contains("model.safetensors"), "{:?}", point.damaged);
    let last = run(&data, &pieces, config(3), true, None);
    // The damaged checkpoint was moved aside, not deleted.
    assert!(pieces.join("damaged").join(damaged.file_name().unwrap()).join(checkpoint::MODEL_FILE).is_file());
    assert!(!last.interrupted);
    assert_eq!(last.steps, summary.steps);
    assert_identical(&weights(&newest(&whole)), &weights(&newest(&pieces)));
    let best = checkpoint::read_checkpoint(&pieces.join("best")).unwrap();
    assert!(best.state.best.is_some());
    assert_eq!(
        std::fs::read_to_string(pieces.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("train_loss"))
            .count(),
        3
    );
}

#[test]
fn training_beats_the_unigram_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 48, 2);
    let summary = run(&data, &dir.path().join("run"), config(8), false, None);
    let validation = summary.last_validation.unwrap();
    // Cross-entropy of the training split's unigram distribution (EOS included) on validation.
    let mut counts: HashMap<u32, f64> = HashMap::new();
    let train_rows = data.captions_in(Split::Train);
    for &r in &train_rows {
        for &id in data.captions[r].token_ids.iter().chain([&caption_text::Vocabulary::EOS]) {
            *counts.entry(id).or_default() += 1.0;
        }
    }
    let total: f64 = counts.values().sum();
    let (mut loss, mut n) = (0.0, 0.0);
    for r in data.captions_in(Split::Validation) {
        for &id in data.captions[r].token_ids.iter().chain([&caption_text::Vocabulary::EOS]) {
            loss -= (counts.get(&id).copied().unwrap_or(0.5) / total).ln();
            n += 1.0;
        }
    }
    let unigram = loss / n;
    assert!(validation.loss < 0.6 * unigram, "validation loss {} vs unigram {unigram}", validation.loss);
}

#[test]
fn checkpoints_from_another_vocabulary_or_architecture_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 16, 3);
    let run_dir = dir.path().join("run");
    run(&data, &run_dir, config(1), false, None);

    let stop = AtomicBool::new(false);
    let attempt = |data: &PreparedDataset, config: TrainConfig, resume: bool| {
        train(TrainOptions {
            config,
            dataset: data,
            run_dir: run_dir.clone(),
            resume,
            device: Device::Cpu,
            progress: &NoProgress,
            stop: &stop,
            log: &|_| {},
        })
    };
    let other = dataset(dir.path(), 40, 4);
    assert_ne!(other.vocabulary.words(), data.vocabulary.words());
    let error = attempt(&other, config(2), true).err().unwrap();
    assert!(matches!(error, TrainError::Checkpoint { .. }) && error.to_string().contains("vocabulary"), "{error}");
    let wider = TrainConfig { hidden_size: 64, ..config(2) };
    let error = attempt(&data, wider, true).err().unwrap();
    assert!(error.to_string().contains("architecture"), "{error}");
    let error = attempt(&data, config(2), false).err().unwrap();
    assert!(error.to_string().contains("--resume"), "{error}");
}

#[test]
fn finetune_mode_trains_every_inception_layer_and_seed_mode_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 12, 3);
    let tuned =
        |mode| TrainConfig { mode, train_resize: 80, cnn_learning_rate: Some(1e-3), batch_size: 4, ..config(1) };
    // One optimizer step each (the stop request saves a checkpoint).
    assert!(run(&data, &dir.path().join("seed"), tuned(Mode::Original), false, Some(1)).interrupted);
    assert!(run(&data, &dir.path().join("finetune"), tuned(Mode::Finetune), false, Some(1)).interrupted);
    let (seed, finetune) = (weights(&newest(&dir.path().join("seed"))), weights(&newest(&dir.path().join("finetune"))));
    let trainable: Vec<&String> = seed
        .keys()
        .filter(|name| name.starts_with(caption_train::INCEPTION_PREFIX) && !name.starts_with(caption_train::FC_PREFIX))
        .filter(|name| name.ends_with("conv.weight") || name.ends_with("bn.weight") || name.ends_with("bn.bias"))
        .collect();
    assert_eq!(trainable.len(), 94 * 3, "every BasicConv2d's conv weight and BatchNorm affine parameters");
    let init = caption_train::TrainModel::new(&tuned(Mode::Original), data.vocabulary.len(), &Device::Cpu).unwrap();
    let init = init.state_dict().unwrap();
    for name in trainable {
        let (before, frozen, tuned) = (&init[name], &seed[name], &finetune[name]);
        let same = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() == 0.0
        };
        assert!(same(before, frozen), "{name} changed in original mode");
        assert!(!same(before, tuned), "{name} did not train in finetune mode: no gradient reached it");
    }
}
