//! `--help` as users read it: the defaults it states are the ones that apply, and every example
//! fits on one line.

use std::process::Command;

fn help(command: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask")).args([command, "--help"]).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// The help text of one option: from its line to the next option's.
fn option_help<'a>(text: &'a str, flag: &str) -> &'a str {
    let start = text.find(&format!("      {flag} ")).unwrap_or_else(|| panic!("{flag} is not in the help"));
    let rest = &text[start + flag.len() + 6..];
    let end = rest.find("\n      --").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn train_states_the_defaults_a_run_gets() {
    let text = help("train");
    let defaults = caption_train::TrainConfig::default();
    let stated = [
        ("--epochs", defaults.epochs.to_string()),
        ("--batch-size", defaults.batch_size.to_string()),
        ("--lr", defaults.learning_rate.to_string()),
        ("--weight-decay", defaults.weight_decay.to_string()),
        ("--embed-size", defaults.embed_size.to_string()),
        ("--hidden-size", defaults.hidden_size.to_string()),
        ("--num-layers", defaults.num_layers.to_string()),
        ("--image-size", defaults.image_size.to_string()),
        ("--seed", defaults.seed.to_string()),
        ("--keep-last", defaults.keep_last.to_string()),
        ("--mode", "frozen".to_string()),
        ("--optimizer", "adam".to_string()),
        ("--encoder", "hub".to_string()),
        ("--device", "auto".to_string()),
    ];
    for (flag, value) in stated {
        let words: String = option_help(&text, flag).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(&format!("[default: {value}]")), "{flag}: {words}");
    }
    assert!(defaults.clip_grad_norm.is_none() && option_help(&text, "--clip-grad-norm").contains("no clipping"));
    assert!(defaults.early_stopping.is_none() && option_help(&text, "--early-stopping").contains("never"));
}

#[test]
fn every_example_fits_on_one_line() {
    for command in [
        "demo",
        "prepare-data",
        "train",
        "caption",
        "bleu",
        "tokenize",
        "vocab",
        "import-checkpoint",
        "export",
        "features",
    ] {
        let text = help(command);
        let examples = text.split_once("\nExample").unwrap_or_else(|| panic!("{command} has no examples")).1;
        for line in examples.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let line = line.trim();
            // A command of ours, or one feeding it (echo, find) or using what it wrote (python).
            let starts = ["cargo xtask ", "echo ", "find ", "python "];
            assert!(starts.iter().any(|s| line.starts_with(s)), "{command}: {line:?}");
            assert!(line.contains("cargo xtask ") || line.starts_with("python "), "{command}: {line:?}");
            assert!(line.len() <= 100, "{command}: {} characters: {line}", line.len());
        }
    }
}

/// The original's setup is called `original`; `seed`, its name before, still parses (for
/// `--mode`, `vocab --ordering` and `prepare-data --seed-compatible`), and a wrong value names
/// the valid ones.
#[test]
fn the_original_setup_is_named_original_and_seed_still_works() {
    assert!(option_help(&help("train"), "--mode").contains("original"));
    assert!(option_help(&help("vocab"), "--ordering").contains("original"));
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let old_flag = Command::new(xtask).args(["prepare-data", "--seed-compatible", "--help"]).output().unwrap();
    assert!(old_flag.status.success(), "--seed-compatible: {}", String::from_utf8_lossy(&old_flag.stderr));
    assert!(help("prepare-data").contains("--original-compatible"));
    for (command, flag) in [("train", "--mode"), ("vocab", "--ordering")] {
        let old = Command::new(xtask).args([command, flag, "seed", "--help"]).output().unwrap();
        assert!(old.status.success(), "{command} {flag} seed: {}", String::from_utf8_lossy(&old.stderr));
        let wrong = Command::new(xtask).args([command, flag, "bogus", "--help"]).output().unwrap();
        assert!(!wrong.status.success());
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("original"));
    }
}
