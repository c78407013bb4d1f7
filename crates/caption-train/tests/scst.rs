//! Self-critical training on a tiny generated shapes dataset: it starts from a cross-entropy run's
//! model, logs its rewards, keeps the best checkpoint by validation CIDEr-D, resumes exactly after
//! a stop, works for both decoders, and refuses what it cannot start from.

use std::path::Path;

use caption_train::scst::{Baseline, Objective, ScstSettings};
use caption_train::{DecoderKind, TrainConfig, checkpoint};

mod common;
use common::{assert_identical, config, dataset, newest, run, train_logged, weights};

/// Self-critical settings over `from`, continuing `base`'s network.
fn scst(base: TrainConfig, from: &Path, epochs: usize, baseline: Baseline) -> TrainConfig {
    TrainConfig {
        objective: Objective::Scst,
        scst: ScstSettings { from: Some(from.to_path_buf()), samples: 3, baseline, ..ScstSettings::default() },
        epochs,
        batch_size: 4,
        learning_rate: 5e-4,
        max_length: 12,
        ..base
    }
}

/// metrics.jsonl's rows.
fn metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn self_critical_runs_start_from_a_cross_entropy_model_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 24, 1);
    let xe = dir.path().join("xe");
    run(&data, &xe, config(3), false, None);
    let started_from = weights(&xe.join("best"));

    let whole = dir.path().join("whole");
    let summary = run(&data, &whole, scst(config(3), &xe, 2, Baseline::Mean), false, None);
    assert_eq!(summary.epochs, 2);
    // Batches of 4 training images (not captions).
    let steps_per_epoch = data.images_in(caption_data::Split::Train).len().div_ceil(4) as u64;
    assert_eq!(summary.steps, 2 * steps_per_epoch);
    let rows = metrics(&whole);
    let steps: Vec<&serde_json::Value> = rows.iter().filter(|row| row.get("reward").is_some()).collect();
    assert_eq!(steps.len() as u64, summary.steps);
    for row in &steps {
        for key in ["reward", "baseline", "greedy_cider", "better_than_baseline", "loss"] {
            assert!(row[key].as_f64().is_some_and(f64::is_finite), "{key} in {row}");
        }
        assert!((0.0..=1.0).contains(&row["better_than_baseline"].as_f64().unwrap()));
    }
    // The best checkpoint follows validation CIDEr-D, the starting model's (epoch 0) included.
    let epochs: Vec<f64> = rows.iter().filter_map(|row| row.get("cider")?.as_f64()).collect();
    assert_eq!(epochs.len(), 3);
    assert_eq!(rows[0]["start"], true);
    assert!(rows[0].get("train_loss").is_none() && rows[0]["epoch"] == 0);
    let best = checkpoint::read_checkpoint(&whole.join("best")).unwrap().state.best.unwrap();
    assert_eq!(best.score, epochs.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    assert_eq!(summary.best.unwrap().score, best.score);
    // It trained: the weights moved from the cross-entropy model's.
    let trained = weights(&newest(&whole));
    let moved = trained.iter().any(|(name, tensor)| {
        let before: Vec<f32> = started_from[name].flatten_all().unwrap().to_vec1().unwrap();
        let after: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
        before != after
    });
    assert!(moved, "self-critical steps changed no weight");

    // Stopped after 3 steps and resumed: the same weights, bit for bit.
    let pieces = dir.path().join("pieces");
    assert!(run(&data, &pieces, scst(config(3), &xe, 2, Baseline::Mean), false, Some(3)).interrupted);
    let last = run(&data, &pieces, scst(config(3), &xe, 2, Baseline::Mean), true, None);
    assert_eq!(last.steps, summary.steps);
    assert_identical(&trained, &weights(&newest(&pieces)));
}

#[test]
fn the_attention_decoder_trains_self_critically_with_the_greedy_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 16, 3);
    let attention = caption_train::AttentionSettings {
        embed_dim: 16,
        attention_dim: 12,
        decoder_dim: 20,
        ..caption_train::AttentionSettings::default()
    };
    let base = TrainConfig { decoder: DecoderKind::Attention, image_size: 107, attention, ..config(2) };
    let xe = dir.path().join("xe");
    run(&data, &xe, base.clone(), false, None);
    let run_dir = dir.path().join("scst");
    let summary = run(&data, &run_dir, scst(base, &xe, 1, Baseline::Greedy), false, None);
    assert_eq!(summary.epochs, 1);
    let rows = metrics(&run_dir);
    let step = rows.iter().find(|row| row.get("reward").is_some()).unwrap();
    // The greedy baseline is the greedy caption's reward: without the BLEU share, its CIDEr-D.
    assert_eq!(step["baseline"], step["greedy_cider"]);
    assert!(summary.best.is_some());
}

#[test]
fn what_self_critical_training_cannot_start_from_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path(), 12, 2);
    // No model to start from.
    let mut no_source = scst(config(1), dir.path(), 1, Baseline::Mean);
    no_source.scst.from = None;
    let (result, _) = train_logged(&data, &dir.path().join("a"), no_source, false);
    assert!(result.unwrap_err().to_string().contains("--from"));
    // A mean baseline of one sample compares with nothing.
    let mut one = scst(config(1), dir.path(), 1, Baseline::Mean);
    one.scst.samples = 1;
    let (result, _) = train_logged(&data, &dir.path().join("b"), one, false);
    assert!(result.unwrap_err().to_string().contains("at least 2"));
    // A folder with no model in it, named.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (result, _) = train_logged(&data, &dir.path().join("c"), scst(config(1), &empty, 1, Baseline::Mean), false);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("empty") && message.contains("start from"), "{message}");
    // A model of another vocabulary.
    let other = dataset(dir.path(), 20, 9);
    let xe = dir.path().join("xe-other");
    run(&other, &xe, config(1), false, None);
    let (result, _) = train_logged(&data, &dir.path().join("d"), scst(config(1), &xe, 1, Baseline::Mean), false);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("vocabulary") && message.contains("another dataset"), "{message}");
    // --from belongs to self-critical training.
    let mut cross_entropy = scst(config(1), dir.path(), 1, Baseline::Mean);
    cross_entropy.objective = Objective::CrossEntropy;
    let (result, _) = train_logged(&data, &dir.path().join("e"), cross_entropy, false);
    assert!(result.unwrap_err().to_string().contains("objective"));
}
