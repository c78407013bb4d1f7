//! The vocabulary as a Hugging Face tokenizer.json: the `tokenizers` library loads it and agrees on
//! every id; bad files are refused with a reason.

use caption_text::{Ordering, TextError, Tokenizer, Vocabulary};

fn vocabulary() -> Vocabulary {
    let tokenizer = Tokenizer::english();
    let captions = ["A dog runs.", "A dog's ball!", "The dog can't run.", "A cat runs."];
    let words: Vec<Vec<String>> = captions.iter().map(|c| tokenizer.lowercase_words(c)).collect();
    Vocabulary::build(&words, 1, Ordering::Original).unwrap().with_tokenizer_rules(tokenizer.rules_version())
}

#[test]
fn the_tokenizers_library_loads_it_with_the_same_ids() {
    let vocabulary = vocabulary();
    let hf = tokenizers::Tokenizer::from_bytes(vocabulary.to_tokenizer_json().as_bytes()).expect("tokenizers loads it");
    assert_eq!(hf.get_vocab_size(true), vocabulary.len());
    for (id, word) in vocabulary.words().iter().enumerate() {
        assert_eq!(hf.token_to_id(word), Some(id as u32), "{word}");
    }
    // Pre-tokenized words (as caption-text produces them) encode to numericalize's ids.
    let words = ["a", "dog", "ca", "n't", "fly", "."];
    let encoding = hf.encode(tokenizers::InputSequence::from(words.to_vec()), true).unwrap();
    assert_eq!(encoding.get_ids(), vocabulary.numericalize(&words).as_slice());
}

#[test]
fn save_and_load_round_trip() {
    let vocabulary = vocabulary();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let path = dir.join("tokenizer.json");
    vocabulary.save(&path).unwrap();
    let loaded = Vocabulary::load(&path).unwrap();
    assert_eq!(loaded, vocabulary);
    assert_eq!(loaded.tokenizer_rules(), Some("spacy-3.8.18-en"));
    assert!(std::fs::read_dir(dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp")));

    // Files written before the original's ordering was renamed say `seed`: they read the same.
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("\"ordering\": \"original\""), "the premise: the file names the ordering");
    std::fs::write(&path, written.replace("\"ordering\": \"original\"", "\"ordering\": \"seed\"")).unwrap();
    assert_eq!(Vocabulary::load(&path).unwrap(), vocabulary);
}

#[test]
fn malformed_files_are_refused_with_a_reason() {
    let error = |json: &str| Vocabulary::from_tokenizer_json(json, "t.json").unwrap_err().to_string();
    assert!(error("{").contains("t.json: not valid JSON"));
    assert!(error(r#"{"model": {"type": "BPE"}}"#).contains("not WordLevel"));
    let gap =
        r#"{"model": {"type": "WordLevel", "vocab": {"<PAD>": 0, "<SOS>": 1, "<EOS>": 2, "<UNK>": 3, "dog": 7}}}"#;
    assert!(error(gap).contains("without gaps"), "{}", error(gap));
    let wrong = r#"{"model": {"type": "WordLevel", "vocab": {"<PAD>": 0, "<SOS>": 1, "<UNK>": 2, "<EOS>": 3}}}"#;
    assert!(error(wrong).contains("id 2 must be <EOS>"), "{}", error(wrong));
    assert!(matches!(Vocabulary::load(std::path::Path::new("/nonexistent/tokenizer.json")), Err(TextError::Io { .. })));
    assert!(Vocabulary::build(&[vec!["a"]], 0, Ordering::Original).is_err());
}
