//! Training on a tiny generated shapes dataset: reproducibility, exact resume (also after a
//! damaged checkpoint), learning, and refusing checkpoints that do not fit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use caption_data::{NoProgress, PreparedDataset, Split};
use caption_train::{Mode, TrainConfig, TrainError, TrainOptions, checkpoint, train};

mod common;
use common::{assert_identical, config, dataset, newest, run, train_logged, weights};

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

/// [`config`] with the attention decoder (small sizes) at 107 px, where Inception's grid is 2 × 2.
fn attention_config(epochs: usize) -> TrainConfig {
    let attention = caption_train::AttentionSettings {
        embed_dim: 16,
        attention_dim: 12,
        decoder_dim: 20,
        ..caption_train::AttentionSettings::default()
    };
    TrainConfig { decoder: caption_train::DecoderKind::Attention, image_size: 107, attention, ..config(epochs) }
}

#[test]
fn attention_runs_are_reproducible_resume_exactly_and_caption_with_their_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 20, 5);
    let whole = dir.path().join("whole");
    let summary = run(&data, &whole, attention_config(2), false, None);
    assert_eq!(summary.epochs, 2);
    let pieces = dir.path().join("pieces");
    assert!(run(&data, &pieces, attention_config(2), false, Some(1)).interrupted);
    let last = run(&data, &pieces, attention_config(2), true, None);
    assert_eq!(last.steps, summary.steps);
    assert_identical(&weights(&newest(&whole)), &weights(&newest(&pieces)));

    // The checkpoint holds the PyTorch module names and describes itself as ShowAttendTell.
    let file = caption_infer::checkpoint_files::read_model_file(&newest(&whole).join(checkpoint::MODEL_FILE)).unwrap();
    let metadata = file.config.unwrap();
    assert_eq!((metadata.architecture.as_str(), metadata.attention_dim), ("ShowAttendTell", Some(12)));
    assert_eq!((metadata.embed_size, metadata.hidden_size), (16, 20));
    for name in ["decoder.attention.full_att.weight", "decoder.decode_step.weight_ih", "decoder.f_beta.bias"] {
        assert!(file.tensors.contains_key(name), "{name} missing");
    }
    assert!(file.tensors.contains_key("encoder.inception.Mixed_7c.branch_pool.conv.weight"));
    assert!(!file.tensors.keys().any(|name| name.starts_with("encoderCNN") || name.starts_with("decoderRNN")));

    // Captioning reads it and returns each word's weights over the 2 × 2 grid.
    let captioner = caption_infer::Captioner::from_run_or_checkpoint(&whole, &Device::Cpu).unwrap();
    assert_eq!(captioner.model.kind(), caption_train::DecoderKind::Attention);
    let images: Vec<usize> = (0..4).collect();
    for decoding in [caption_infer::Decoding::Greedy, caption_infer::Decoding::Beam { size: 3, length_penalty: 0.0 }] {
        for caption in captioner.caption_dataset(&data, &images, decoding, &NoProgress).unwrap() {
            assert_eq!(caption.alphas.len(), caption.words.len(), "{decoding:?}");
            if !caption.words.is_empty() {
                let grid = caption.grid.unwrap();
                assert_eq!((grid.cells, grid.offset, grid.stride, grid.input), (2, 37.5, 32.0, 107.0));
            }
            for weights in &caption.alphas {
                assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{weights:?}");
            }
        }
    }
}

#[test]
fn a_grid_cache_of_another_origin_is_refused_and_float16_halves_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 12, 6);
    let hash = data.manifest.content_hash();
    let first = dir.path().join("first");
    run(&data, &first, attention_config(1), false, None);
    let cache = first
        .join(format!("features-{}.safetensors", caption_train::features::grid_cache_key(&attention_config(1), &hash)));
    let size32 = std::fs::metadata(&cache).unwrap().len();
    assert!(size32 > 12 * 4 * 2048 * 4, "12 images × 4 positions × 2048 float32");

    // The same grids under the name another image size's cache has: refused, naming both.
    let bigger = TrainConfig { image_size: 139, ..attention_config(1) };
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    // A run folder (its config.toml) holding another run's cache under this run's name.
    std::fs::copy(first.join(caption_train::CONFIG_FILE), other.join(caption_train::CONFIG_FILE)).unwrap();
    let planted =
        other.join(format!("features-{}.safetensors", caption_train::features::grid_cache_key(&bigger, &hash)));
    std::fs::copy(&cache, &planted).unwrap();
    let stop = AtomicBool::new(false);
    let error = train(TrainOptions {
        config: bigger,
        dataset: &data,
        run_dir: other.clone(),
        resume: false,
        device: Device::Cpu,
        progress: &NoProgress,
        stop: &stop,
        log: &|_| {},
    })
    .expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("refused") && message.contains("image size 107") && message.contains("image size 139"),
        "{message}"
    );
    assert!(planted.is_file(), "the refused cache is left where it was");

    // float16: half the bytes (the header aside), the grids within float16's rounding.
    let half = TrainConfig {
        attention: caption_train::AttentionSettings { cache_float16: true, ..attention_config(1).attention },
        ..attention_config(1)
    };
    let second = dir.path().join("half");
    run(&data, &second, half.clone(), false, None);
    let cache16 =
        second.join(format!("features-{}.safetensors", caption_train::features::grid_cache_key(&half, &hash)));
    let size16 = std::fs::metadata(&cache16).unwrap().len();
    assert!(size16 * 2 - size32 < 2048, "{size16} vs {size32}");
    let origin = caption_train::features::grid_origin(&half, &hash);
    let open = |path: &Path| match caption_train::spatial_cache::GridCache::open(path, &origin, 12).unwrap() {
        caption_train::spatial_cache::Opened::Ready(cache) => cache,
        _ => panic!("{} does not open", path.display()),
    };
    let rows = [0, 5, 11];
    let full: Vec<f32> = open(&cache).rows(&rows, &Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let halved: Vec<f32> = open(&cache16).rows(&rows, &Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(full.iter().any(|&v| v != 0.0));
    for (a, b) in full.iter().zip(&halved) {
        assert!((a - b).abs() <= a.abs() / 1024.0 + 1e-7, "{a} vs {b}");
    }
}

#[test]
fn an_attention_run_refuses_a_switch_of_decoder_and_trains_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 12, 7);
    let run_dir = dir.path().join("run");
    run(&data, &run_dir, attention_config(1), false, None);
    let stop = AtomicBool::new(false);
    let error = train(TrainOptions {
        config: config(2),
        dataset: &data,
        run_dir: run_dir.clone(),
        resume: true,
        device: Device::Cpu,
        progress: &NoProgress,
        stop: &stop,
        log: &|_| {},
    })
    .expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("ShowAttendTell with embed 16") && message.contains("this run: CNNtoRNN"), "{message}");

    // Original mode trains the decoder only; finetune reaches Inception's first layer.
    let tuned = |mode| TrainConfig {
        mode,
        train_resize: 120,
        cnn_learning_rate: Some(1e-3),
        batch_size: 4,
        ..attention_config(1)
    };
    let init = caption_train::TrainModel::new(&tuned(Mode::Original), data.vocabulary.len(), &Device::Cpu).unwrap();
    let init = init.state_dict().unwrap();
    for (mode, encoder_trains) in [(Mode::Original, false), (Mode::Finetune, true)] {
        let folder = dir.path().join(format!("{mode:?}"));
        assert!(run(&data, &folder, tuned(mode), false, Some(1)).interrupted);
        let trained = weights(&newest(&folder));
        let changed = |name: &str| {
            (&init[name] - &trained[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0
        };
        assert!(changed("decoder.fc.weight") && changed("decoder.attention.encoder_att.weight"), "{mode:?}");
        assert_eq!(changed("encoder.inception.Conv2d_1a_3x3.conv.weight"), encoder_trains, "{mode:?}");
    }
}

/// Flips one byte in the middle of the last eighth of `path` (same size, other contents).
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - bytes.len() / 16;
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_feature_cache_whose_bytes_changed_is_rebuilt_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 12, 8);
    let hash = data.manifest.content_hash();
    for (name, config, key) in [
        ("lstm", config(1), caption_train::features::cache_key(&config(1), &hash)),
        ("attention", attention_config(1), caption_train::features::grid_cache_key(&attention_config(1), &hash)),
    ] {
        let first = dir.path().join(name);
        let (result, lines) = train_logged(&data, &first, config.clone(), false);
        result.unwrap();
        assert!(lines.iter().all(|l| !l.contains("it again")), "{lines:?}");
        let cache = first.join(format!("features-{key}.safetensors"));
        let intact = std::fs::read(&cache).unwrap();
        // Another run in a fresh folder, given the first run's cache with one byte changed.
        let second = dir.path().join(format!("{name}-again"));
        std::fs::create_dir_all(&second).unwrap();
        std::fs::copy(first.join(caption_train::CONFIG_FILE), second.join(caption_train::CONFIG_FILE)).unwrap();
        let planted = second.join(format!("features-{key}.safetensors"));
        std::fs::copy(&cache, &planted).unwrap();
        corrupt(&planted);
        let (result, lines) = train_logged(&data, &second, config, false);
        result.unwrap();
        assert!(lines.iter().any(|l| l.contains("checksum") && l.contains("it again")), "{name}: {lines:?}");
        assert_eq!(std::fs::read(&planted).unwrap(), intact, "{name}: rebuilt to the same bytes");
        assert_identical(&weights(&newest(&first)), &weights(&newest(&second)));
    }
}

#[test]
fn training_stops_when_the_loss_diverges_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 24, 9);
    let run_dir = dir.path().join("run");
    let good = run(&data, &run_dir, config(1), false, None).checkpoint.unwrap();
    let saved = weights(&good);
    // A learning rate no model survives: the loss leaves the numbers within an epoch.
    let wild = TrainConfig { learning_rate: 1e38, ..config(3) };
    let (result, _) = train_logged(&data, &run_dir, wild, true);
    let error = result.expect_err("stopped");
    let message = error.to_string();
    assert!(matches!(error, TrainError::Diverged { .. }), "{message}");
    assert!(message.contains("diverged at step") && message.contains(&good.display().to_string()), "{message}");
    assert_eq!(newest(&run_dir), good, "nothing saved after the last good checkpoint");
    assert_identical(&saved, &weights(&good));
    let model = caption_infer::checkpoint_files::read_model_file(&good.join(checkpoint::MODEL_FILE)).unwrap();
    assert!(caption_infer::checkpoint_files::first_non_finite(&model.tensors).unwrap().is_none());
}

#[test]
fn hyperparameters_that_are_not_numbers_or_mean_nothing_are_refused() {
    let refused = |config: TrainConfig, words: &str| {
        let error = config.validate().expect_err(words);
        assert!(error.contains(words), "{error}");
    };
    refused(TrainConfig { weight_decay: f64::NAN, ..config(1) }, "weight_decay");
    refused(TrainConfig { weight_decay: f64::INFINITY, ..config(1) }, "weight_decay");
    refused(TrainConfig { weight_decay: -1.0, ..config(1) }, "weight_decay");
    refused(TrainConfig { clip_grad_norm: Some(f64::NAN), ..config(1) }, "clip_grad_norm");
    refused(TrainConfig { clip_grad_norm: Some(0.0), ..config(1) }, "clip_grad_norm");
    refused(TrainConfig { learning_rate: f64::NAN, ..config(1) }, "learning_rate");
    refused(TrainConfig { early_stopping: Some(0), ..config(1) }, "early_stopping");
    refused(TrainConfig { checkpoint_every: Some(0), ..config(1) }, "checkpoint_every");
    let float16 = caption_train::AttentionSettings { cache_float16: true, ..Default::default() };
    refused(TrainConfig { attention: float16, ..config(1) }, "cache_float16");
    assert!(TrainConfig { attention: float16, ..attention_config(1) }.validate().is_ok());
    let nan_dropout = caption_train::AttentionSettings { dropout: f64::NAN, ..Default::default() };
    refused(TrainConfig { attention: nan_dropout, ..attention_config(1) }, "dropout");
}

#[test]
fn frozen_mode_keeps_the_weights_that_never_train_once_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 12, 10);
    let run_dir = dir.path().join("run");
    run(&data, &run_dir, config(3), false, None);
    let shared: Vec<PathBuf> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("frozen-weights-"))
        .collect();
    assert_eq!(shared.len(), 1, "{shared:?}");
    let shared_bytes = std::fs::metadata(&shared[0]).unwrap().len();
    let everything =
        caption_train::TrainModel::new(&config(1), data.vocabulary.len(), &Device::Cpu).unwrap().state_dict().unwrap();
    let mut folders = checkpoint::list_checkpoints(&run_dir);
    folders.push(run_dir.join("best"));
    assert_eq!(folders.len(), 3);
    for folder in &folders {
        // Each checkpoint holds the head alone, and reads back whole.
        let file = folder.join(checkpoint::MODEL_FILE);
        assert!(std::fs::metadata(&file).unwrap().len() * 20 < shared_bytes, "{}", file.display());
        let read = caption_infer::checkpoint_files::read_model_file(&file).unwrap();
        let mut names: Vec<&String> = read.tensors.keys().collect();
        let mut expected: Vec<&String> = everything.keys().collect();
        names.sort();
        expected.sort();
        assert_eq!(names, expected, "{}", folder.display());
    }
    caption_infer::Captioner::from_run_or_checkpoint(&run_dir, &Device::Cpu).unwrap();
    // best/ copied away from its run cannot find the encoder, and says how to get a model that
    // stands alone.
    let alone = dir.path().join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    for file in checkpoint::CHECKPOINT_FILES {
        std::fs::copy(run_dir.join("best").join(file), alone.join(file)).unwrap();
    }
    let error = caption_infer::Captioner::from_run_or_checkpoint(&alone, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("not beside it") && error.contains("export"), "{error}");
    // A damaged frozen weights file: named, never trained or captioned on.
    let mut bytes = std::fs::read(&shared[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&shared[0], &bytes).unwrap();
    let error = caption_infer::Captioner::from_run_or_checkpoint(&run_dir, &Device::Cpu).err().unwrap().to_string();
    assert!(error.contains("CRC-32"), "{error}");
}
