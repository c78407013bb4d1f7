//! `cargo xtask tokenize` and `cargo xtask vocab` end to end.

use std::io::Write;
use std::process::{Command, Stdio};

use caption_text::{Ordering, Vocabulary};

#[path = "../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

#[test]
fn tokenize_prints_one_json_array_per_line() {
    let mut child = xtask().args(["tokenize", "--lower"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"I can't go to the U.S.  (today)!\r\nA dog\truns.\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<Vec<String>> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], ["i", "ca", "n't", "go", "to", "the", "u.s.", " ", "(", "today", ")", "!"]);
    assert_eq!(lines[1], ["a", "dog", "\t", "runs", "."]);
}

#[test]
fn tokenize_refuses_non_utf8_naming_the_line() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("captions.txt");
    std::fs::write(&path, b"fine\n\xff\xfe\n").unwrap();
    let output = xtask().arg("tokenize").arg(&path).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(":2: not UTF-8"));
}

#[test]
fn vocab_rebuilds_the_originals_ids_from_captions_txt() {
    let captions = shared_data("flickr8k/captions.txt");
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("tokenizer.json");
    let old_spelling = temp.path().join("old.json");
    let output =
        xtask().arg("vocab").arg(&captions).args(["--ordering", "original", "--out"]).arg(&out).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("vocabulary: 2994 ids"), "{printed}");
    // `seed`, the ordering's name before, still works and means the same.
    let output =
        xtask().arg("vocab").arg(&captions).args(["--ordering", "seed", "--out"]).arg(&old_spelling).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&old_spelling).unwrap());
    let vocabulary = Vocabulary::load(&out).unwrap();
    assert_eq!(vocabulary.len(), 2994);
    assert_eq!(vocabulary.ordering(), Ordering::Original);
    assert_eq!(vocabulary.threshold(), 5);
    // The original's first ids: "a" reaches 5 first, then "." and "dog".
    assert_eq!(&vocabulary.words()[4..7], ["a", ".", "dog"]);
}
