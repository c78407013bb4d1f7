//! Token-for-token agreement with spaCy 3.8 (`spacy.blank("en")`), on fixtures spaCy wrote
//! (`tools/text/generate_fixtures.py`), and the PyTorch original's vocabulary.

use std::io::Read;
use std::path::{Path, PathBuf};

use caption_text::{Ordering, Token, Tokenizer, Vocabulary, reconstruct};
use serde_json::Value;

#[path = "../../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn read_json(name: &str) -> Value {
    let path = fixture_path(name);
    let mut text = String::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
    } else {
        text = std::fs::read_to_string(&path).unwrap();
    }
    serde_json::from_str(&text).unwrap()
}

fn captions() -> Vec<String> {
    let path = shared_data("flickr8k/captions.txt");
    assert!(path.is_file(), "the shared Flickr8k captions are missing: {}", path.display());
    csv::Reader::from_path(path).unwrap().records().map(|r| r.unwrap()[1].to_string()).collect()
}

/// spaCy's tokens and whitespace flags as stored: (["A", "dog"], "10").
fn expected(tokens: &Value, spaces: &Value) -> (Vec<String>, String) {
    (
        tokens.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect(),
        spaces.as_str().unwrap().to_string(),
    )
}

fn ours(tokens: &[Token<'_>]) -> (Vec<String>, String) {
    (
        tokens.iter().map(|t| t.text.to_string()).collect(),
        tokens.iter().map(|t| if t.whitespace { '1' } else { '0' }).collect(),
    )
}

#[test]
fn hard_cases_match_spacy() {
    let tokenizer = Tokenizer::english();
    let fixture = read_json("hard_cases.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 2000);
    let mut mismatches = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let tokens = tokenizer.tokenize(text);
        assert_eq!(reconstruct(&tokens), text, "tokens must rebuild the input");
        let want = expected(&case["tokens"], &case["ws"]);
        let got = ours(&tokens);
        if got != want {
            mismatches.push(format!("{text:?}\n  spaCy: {:?} {}\n  ours:  {:?} {}", want.0, want.1, got.0, got.1));
        }
    }
    eprintln!("hard cases: {} of {} agree with spaCy", cases.len() - mismatches.len(), cases.len());
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(25)].join("\n")
    );
}

#[test]
fn every_flickr8k_caption_matches_spacy() {
    let tokenizer = Tokenizer::english();
    let captions = captions();
    let fixture = read_json("flickr8k_tokens.json.gz");
    let expected_all = fixture["captions"].as_array().unwrap();
    assert_eq!(captions.len(), 40_455);
    assert_eq!(expected_all.len(), captions.len());
    let mut mismatches = Vec::new();
    let mut token_count = 0;
    for (caption, pair) in captions.iter().zip(expected_all) {
        let tokens = tokenizer.tokenize(caption);
        token_count += tokens.len();
        let want = expected(&pair[0], &pair[1]);
        if ours(&tokens) != want {
            mismatches.push(format!("{caption:?}: spaCy {:?}, ours {:?}", want, ours(&tokens)));
        }
    }
    eprintln!(
        "flickr8k: {} of {} captions ({token_count} tokens) agree",
        captions.len() - mismatches.len(),
        captions.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}

#[test]
fn the_originals_vocabulary_is_rebuilt_exactly() {
    let tokenizer = Tokenizer::english();
    let words = tokenizer.lowercase_words_batch(&captions());
    let fixture = read_json("flickr8k_vocab.json");
    let as_strings =
        |v: &Value| -> Vec<String> { v.as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect() };

    let seed = Vocabulary::build(&words, 5, Ordering::Original).unwrap();
    assert_eq!(seed.len(), 2994);
    assert_eq!(seed.words(), as_strings(&fixture["seed"]).as_slice());
    for (id, word) in seed.words().iter().enumerate().skip(4) {
        assert_eq!(seed.count(id as u32), fixture["counts"][word].as_u64().unwrap(), "count of {word:?}");
    }
    let frequency = Vocabulary::build(&words, 5, Ordering::Frequency).unwrap();
    assert_eq!(frequency.words(), as_strings(&fixture["frequency"]).as_slice());
}
