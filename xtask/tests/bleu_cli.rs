//! `cargo xtask bleu` end to end: real COCO files against pycocoevalcap's numbers, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[path = "../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().expect("xtask runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A file in a temporary folder that is removed when this is dropped.
struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

fn scratch_file(name: &str, contents: &str) -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    Scratch { _dir: dir, path }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn coco_results_score_as_pycocoevalcap_does() {
    let annotations = shared_data("coco/captions_val2017.json");
    assert!(annotations.is_file(), "the shared COCO sample is missing: {}", annotations.display());
    let output = xtask(&[
        "bleu",
        "--results",
        fixture("coco_results.json").to_str().unwrap(),
        "--annotations",
        annotations.to_str().unwrap(),
        "--metrics",
        "bleu,cider,rouge",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let got: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("coco_expected.json")).unwrap()).unwrap();
    for n in 1..=4 {
        assert_eq!(got[format!("bleu_{n}")], expected["bleu"][n - 1], "BLEU-{n}");
    }
    assert_eq!(got["cider"], expected["cider"]);
    assert_eq!(got["rouge_l"], expected["rouge_l"]);
    assert_eq!(got["compat"], "coco");
    assert_eq!(got["segments"], 60);
    for key in ["brevity_penalty", "precisions", "hyp_len", "ref_len", "smoothing"] {
        assert!(got.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn jsonl_table_names_the_profile() {
    let input = scratch_file(
        "ok.jsonl",
        "{\"id\": 1, \"hypothesis\": \"a dog runs on the grass\", \"references\": [\"a dog runs on grass\", \"the dog is running\"]}\n",
    );
    let output = xtask(&["bleu", "--input", input.to_str().unwrap(), "--compat", "sacrebleu", "--smoothing", "floor"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("BLEU (sacrebleu profile, smoothing floor[0.10])"), "{table}");
    assert!(table.contains("smooth:floor[0.10]|version:2.6.0"), "{table}");
}

#[test]
fn malformed_json_names_file_and_line() {
    let input = scratch_file(
        "bad.jsonl",
        "{\"id\": 1, \"hypothesis\": \"a\", \"references\": [\"a\"]}\n{\"id\": 2, \"hypothesis\": \n",
    );
    let output = xtask(&["bleu", "--input", input.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("bad.jsonl:2: malformed JSON"), "{}", stderr(&output));
}

#[test]
fn a_hypothesis_without_references_is_an_error() {
    let input = scratch_file("norefs.jsonl", "{\"id\": \"x\", \"hypothesis\": \"a\", \"references\": []}\n");
    let output = xtask(&["bleu", "--input", input.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("norefs.jsonl:1: segment x has no references"), "{}", stderr(&output));
}

#[test]
fn results_for_unknown_images_are_an_error() {
    let results = scratch_file("results.json", r#"[{"image_id": 424242, "caption": "a cat"}]"#);
    let annotations =
        scratch_file("annotations.json", r#"{"annotations": [{"image_id": 1, "id": 1, "caption": "a dog"}]}"#);
    let output =
        xtask(&["bleu", "--results", results.to_str().unwrap(), "--annotations", annotations.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("1 image id(s) are not in"), "{}", stderr(&output));
    assert!(stderr(&output).contains("424242"), "{}", stderr(&output));
}

#[test]
fn coco_has_no_smoothing_to_choose() {
    let input = scratch_file("one.jsonl", "{\"id\": 1, \"hypothesis\": \"a\", \"references\": [\"a\"]}\n");
    let output = xtask(&["bleu", "--input", input.to_str().unwrap(), "--smoothing", "exp"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("the coco profile has no smoothing"), "{}", stderr(&output));
}

#[test]
fn spacy_tokenization_lowercases_and_splits_punctuation() {
    let input = scratch_file(
        "spacy.jsonl",
        "{\"id\": 1, \"hypothesis\": \"A dog's ball, in the grass.\", \"references\": [\"a dog 's ball , in the grass .\"]}\n",
    );
    let run = |tokenize: &str| -> Value {
        let output =
            xtask(&["bleu", "--input", input.to_str().unwrap(), "--compat", "nltk", "--tokenize", tokenize, "--json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    assert_eq!(run("spacy")["bleu_4"], 1.0);
    assert!(run("none")["bleu_4"].as_f64().unwrap() < 0.5);
}

#[test]
fn without_inputs_the_three_ways_are_named_and_a_byte_order_mark_is_accepted() {
    let output = xtask(&["bleu"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    for way in ["--input FILE.jsonl", "--results FILE.json --annotations FILE.json", "--checkpoint RUN --data DIR"] {
        assert!(message.contains(way), "{message}");
    }
    let line = "{\"id\": 1, \"hypothesis\": \"a dog runs\", \"references\": [\"a dog runs\"]}\n";
    let plain = scratch_file("plain.jsonl", line);
    let marked = scratch_file("bom.jsonl", &format!("\u{feff}{line}"));
    let score = |path: &Path| {
        let output = xtask(&["bleu", "--json", "--input", path.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr(&output));
        output.stdout
    };
    assert_eq!(score(&marked), score(&plain));
}
