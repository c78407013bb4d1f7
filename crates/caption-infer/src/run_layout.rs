//! A run folder's layout: every name of a run, its checkpoints and its evaluations, here and
//! nowhere else. The trainer writes by it, the captioner and evaluation read by it, xtask names
//! its defaults by it, and [`is_run_entry`] says from it what in a folder is a run's own.
//!
//! ```text
//! RUN/
//!   .lock                       held by the training process while it lives (its id inside)
//!   config.toml  tokenizer.json  metrics.jsonl  loss.png  bleu.png
//!   features-KEY.safetensors    frozen mode's encoder features
//!   frozen-weights-CRC.safetensors  frozen mode's weights that never train (the encoder), once:
//!                               each checkpoint's model.safetensors names it in its metadata
//!   checkpoints/step-N/         model.safetensors, optimizer.safetensors, trainer.json, tokenizer.json
//!   best/                       the same four files: the best validation score's checkpoint
//!   damaged/NAME/               checkpoints that did not read back, moved aside on resume
//!   eval-SPLIT/                 results.json, captions.jsonl, metrics.json (`cargo xtask bleu`)
//!   report.html                 the demo's report
//! ```
//!
//! A checkpoint folder (`checkpoints/step-N`, `best/`) may hold its own `eval-SPLIT/` folders.

use std::path::{Path, PathBuf};

/// The lock file.
pub const LOCK_FILE: &str = ".lock";
/// The run's configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// The run's metrics, one JSON object per line.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The loss plot.
pub const LOSS_PLOT: &str = "loss.png";
/// The validation BLEU plot.
pub const BLEU_PLOT: &str = "bleu.png";
/// The demo's HTML report.
pub const REPORT_FILE: &str = "report.html";
/// A run's folder of `step-N` checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// A run's folder of the best checkpoint.
pub const BEST_DIR: &str = "best";
/// The folder damaged checkpoints are moved to.
pub const DAMAGED_DIR: &str = "damaged";

/// Model file of a checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// Vocabulary file of a checkpoint (and of the run).
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Optimizer state file of a checkpoint (resuming reads it; captioning does not).
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Trainer state file of a checkpoint (written last).
pub const TRAINER_FILE: &str = "trainer.json";
/// Every file of a checkpoint folder.
pub const CHECKPOINT_FILES: [&str; 4] = [MODEL_FILE, OPTIMIZER_FILE, TRAINER_FILE, TOKENIZER_FILE];

/// An evaluation's run-level results (scores, settings).
pub const RESULTS_FILE: &str = "results.json";
/// An evaluation's captions, one JSON object per image.
pub const CAPTIONS_FILE: &str = "captions.jsonl";
/// An evaluation's scores in the metrics' own format.
pub const EVALUATION_METRICS_FILE: &str = "metrics.json";
/// The files an evaluation writes into its folder.
pub const EVAL_FILES: [&str; 3] = [RESULTS_FILE, CAPTIONS_FILE, EVALUATION_METRICS_FILE];

/// Files a run writes at its top level (besides feature caches and frozen weights).
const RUN_FILES: [&str; 7] = [LOCK_FILE, CONFIG_FILE, TOKENIZER_FILE, METRICS_FILE, LOSS_PLOT, BLEU_PLOT, REPORT_FILE];
const STEP_PREFIX: &str = "step-";
const EVAL_PREFIX: &str = "eval-";
const FEATURES_PREFIX: &str = "features-";
const FROZEN_WEIGHTS_PREFIX: &str = "frozen-weights-";
const SAFETENSORS_SUFFIX: &str = ".safetensors";

/// `RUN/checkpoints/step-N` (the step zero-padded to nine digits, so names sort by step).
pub fn checkpoint_dir(run: &Path, step: u64) -> PathBuf {
    run.join(CHECKPOINTS_DIR).join(format!("{STEP_PREFIX}{step:09}"))
}

/// The step of a `step-N` folder name.
pub fn checkpoint_step(name: &str) -> Option<u64> {
    name.strip_prefix(STEP_PREFIX)?.parse().ok()
}

/// `RUN/best`.
pub fn best_dir(run: &Path) -> PathBuf {
    run.join(BEST_DIR)
}

/// The evaluation folder of `split` in a run or checkpoint folder: `FOLDER/eval-SPLIT`.
pub fn evaluation_dir(folder: &Path, split: &str) -> PathBuf {
    folder.join(format!("{EVAL_PREFIX}{split}"))
}

/// Whether a folder name is an evaluation's (`eval-SPLIT`).
pub fn is_evaluation_dir_name(name: &str) -> bool {
    name.strip_prefix(EVAL_PREFIX).is_some_and(|split| !split.is_empty())
}

/// Frozen mode's feature cache for the settings and dataset `key` stands for.
pub fn feature_cache(run: &Path, key: &str) -> PathBuf {
    run.join(format!("{FEATURES_PREFIX}{key}{SAFETENSORS_SUFFIX}"))
}

/// Frozen mode's file of the weights that never train, by its CRC-32 (8 hex digits):
/// `frozen-weights-CRC.safetensors`.
pub fn frozen_weights_file(crc32: &str) -> String {
    format!("{FROZEN_WEIGHTS_PREFIX}{crc32}{SAFETENSORS_SUFFIX}")
}

/// Whether `name` is a frozen weights file's ([`frozen_weights_file`]).
pub fn is_frozen_weights_file(name: &str) -> bool {
    name.strip_prefix(FROZEN_WEIGHTS_PREFIX)
        .and_then(|rest| rest.strip_suffix(SAFETENSORS_SUFFIX))
        .is_some_and(|crc| crc.len() == 8 && crc.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether an entry of a run folder (relative path, and whether it is a folder) is one a run
/// writes (the layout above, plus writers' leftovers: `NAME.tmp-PID` files, `.NAME.partial-PID`
/// and `.NAME.old-PID` folders).
pub fn is_run_entry(relative: &Path, is_dir: bool) -> bool {
    let Some(names) = relative.iter().map(|c| c.to_str()).collect::<Option<Vec<&str>>>() else { return false };
    match names.as_slice() {
        [name] if is_dir => {
            [CHECKPOINTS_DIR, BEST_DIR, DAMAGED_DIR].contains(name)
                || is_evaluation_dir_name(name)
                || is_leftover(name, true)
        }
        [name] => {
            RUN_FILES.contains(name)
                || (name.starts_with(FEATURES_PREFIX) && name.ends_with(SAFETENSORS_SUFFIX))
                || is_frozen_weights_file(name)
                || is_leftover(name, false)
                || is_safetensors_temporary(name)
        }
        [CHECKPOINTS_DIR, step] => is_dir && (step.starts_with(STEP_PREFIX) || is_leftover(step, true)),
        [DAMAGED_DIR, _] => is_dir,
        // Whatever a writer's staging folder holds is the writer's.
        [staging, ..] | [CHECKPOINTS_DIR, staging, ..] if is_leftover(staging, true) => true,
        [CHECKPOINTS_DIR | DAMAGED_DIR, _, rest @ ..] | [BEST_DIR, rest @ ..] => is_checkpoint_entry(rest, is_dir),
        [eval, file] if is_evaluation_dir_name(eval) => {
            !is_dir && (EVAL_FILES.contains(file) || is_leftover(file, false))
        }
        _ => false,
    }
}

/// Whether an entry of a checkpoint folder (path relative to it) is one training or evaluation
/// writes there.
pub fn is_checkpoint_entry_path(relative: &Path, is_dir: bool) -> bool {
    relative
        .iter()
        .map(|c| c.to_str())
        .collect::<Option<Vec<&str>>>()
        .is_some_and(|names| is_checkpoint_entry(&names, is_dir))
}

/// An entry inside a checkpoint folder.
fn is_checkpoint_entry(rest: &[&str], is_dir: bool) -> bool {
    match rest {
        [name] if is_dir => is_evaluation_dir_name(name),
        [name] => CHECKPOINT_FILES.contains(name) || is_leftover(name, false),
        [eval, file] => {
            is_evaluation_dir_name(eval) && !is_dir && (EVAL_FILES.contains(file) || is_leftover(file, false))
        }
        _ => false,
    }
}

/// The temporary file the safetensors crate's writer created beside its target (`.tmp` and six
/// letters or digits, from the tempfile crate), which runs of earlier versions may hold after a
/// kill; files are now written through caption-io.
pub fn is_safetensors_temporary(name: &str) -> bool {
    name.strip_prefix(".tmp").is_some_and(|rest| rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A writer's leftover name: `.NAME.partial-PID` / `.NAME.old-PID` folders, `NAME.tmp-PID` files.
fn is_leftover(name: &str, is_dir: bool) -> bool {
    caption_io::leftover_owner(name, is_dir).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_recognised_and_nothing_else() {
        let own = |p: &str, dir: bool| is_run_entry(Path::new(p), dir);
        for (path, dir) in [
            ("config.toml", false),
            (".lock", false),
            ("features-ab12.safetensors", false),
            ("checkpoints", true),
            ("checkpoints/step-000000012", true),
            ("checkpoints/step-000000012/model.safetensors", false),
            ("checkpoints/.step-000000012.partial-77", true),
            ("checkpoints/.step-000000012.partial-77/trainer.json", false),
            ("best/tokenizer.json", false),
            ("best/eval-test/results.json", false),
            ("eval-validation/captions.jsonl", false),
            ("config.tmp-123", false),
            (".best.old-9/model.safetensors", false),
            ("damaged/step-000000012/trainer.json", false),
            (".tmpU2nO9e", false),
            ("checkpoints/.step-000000020.partial-6066/.tmpU2nO9e", false),
        ] {
            assert!(own(path, dir), "{path} is a run's");
        }
        for (path, dir) in [
            ("thesis.tex", false),
            ("config.toml", true),
            ("checkpoints/notes.txt", false),
            ("checkpoints/step-000000012/notes.txt", false),
            ("best/deeper/model.safetensors", false),
            ("eval-test/photo.jpg", false),
            ("eval-", true),
            (".tmpU2nO9", false),
            ("data", true),
        ] {
            assert!(!own(path, dir), "{path} is not a run's");
        }
    }

    #[test]
    fn names_built_here_are_the_ones_recognised() {
        let run = Path::new("run");
        let relative = |path: PathBuf| path.strip_prefix(run).unwrap().to_path_buf();
        assert!(is_run_entry(&relative(checkpoint_dir(run, 12)), true));
        assert_eq!(checkpoint_step(&checkpoint_dir(run, 12).file_name().unwrap().to_string_lossy()), Some(12));
        assert!(is_run_entry(&relative(evaluation_dir(run, "test")), true));
        assert!(is_run_entry(&relative(feature_cache(run, "k1")), false));
        assert!(is_run_entry(&relative(best_dir(run).join(MODEL_FILE)), false));
        assert!(is_run_entry(&relative(evaluation_dir(run, "test").join(RESULTS_FILE)), false));
    }
}
