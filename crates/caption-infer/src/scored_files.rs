//! The caption files `cargo xtask bleu` scores, read within bounds: JSON Lines (one hypothesis
//! with its references per line; a file, or standard input as `-`) or pycocoevalcap's pair of a
//! COCO results file and a captions annotations file; and their captions as tokens, split on
//! whitespace (what the Python libraries do with pre-tokenized text) or by spaCy's English rules,
//! lowercased (the project's tokenizer).

use std::io::Read;
use std::path::Path;

use caption_data::{MAX_CAPTIONS_FILE_BYTES, read_bounded, read_input_file};
use caption_metrics::Corpus;
use caption_metrics::formats::{self, EvalSet};
use caption_text::Tokenizer;

use crate::InferError;

/// Longest line of a text read from standard input (a JSON Lines record with its references).
const MAX_TEXT_LINE_BYTES: usize = 16 << 20;

/// How captions become tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenization {
    /// Split on whitespace.
    Whitespace,
    /// spaCy's English rules, lowercased ([`Tokenizer::english`]).
    Spacy,
}

/// Reads a JSON Lines file of `{"id", "hypothesis", "references"}` objects; `-` reads `stdin`.
///
/// # Errors
/// [`InferError::Evaluation`] naming the file (or standard input) and what is wrong with it.
pub fn read_jsonl(path: &Path, stdin: impl Read) -> Result<EvalSet, InferError> {
    let (bytes, name) = if path.as_os_str() == "-" {
        let bytes = read_bounded(stdin, MAX_CAPTIONS_FILE_BYTES, MAX_TEXT_LINE_BYTES)
            .map_err(|e| InferError::Evaluation(format!("standard input: {e}")))?;
        (bytes, "<stdin>".to_string())
    } else {
        (read(path)?, path.display().to_string())
    };
    formats::read_jsonl(bytes.as_slice(), &name).map_err(|e| InferError::Evaluation(e.to_string()))
}

/// Reads pycocoevalcap's pair: a COCO results file and the annotations holding the references.
///
/// # Errors
/// [`InferError::Evaluation`] naming the file and what is wrong with it.
pub fn read_coco_pair(results: &Path, annotations: &Path) -> Result<EvalSet, InferError> {
    let text = |path: &Path| {
        String::from_utf8(read(path)?)
            .map_err(|e| InferError::Evaluation(format!("{}: not UTF-8 text: {e}", path.display())))
    };
    let (results_name, annotations_name) = (results.display().to_string(), annotations.display().to_string());
    formats::read_coco(&text(results)?, &results_name, &text(annotations)?, &annotations_name)
        .map_err(|e| InferError::Evaluation(e.to_string()))
}

/// The captions of `set` as a scoring corpus, tokenized as `tokenization` says.
///
/// # Errors
/// [`InferError::Metrics`] for a corpus that cannot be built (a segment without references).
pub fn corpus(set: &EvalSet, tokenization: Tokenization) -> Result<Corpus, InferError> {
    Ok(match tokenization {
        Tokenization::Whitespace => Corpus::from_whitespace_text(&set.hypotheses, &set.references)?,
        Tokenization::Spacy => {
            let tokenizer = Tokenizer::english();
            let hypotheses = tokenizer.lowercase_words_batch(&set.hypotheses);
            let references: Vec<Vec<Vec<String>>> =
                set.references.iter().map(|refs| tokenizer.lowercase_words_batch(refs)).collect();
            Corpus::new(&hypotheses, &references)?
        }
    })
}

/// A captions file's bytes (a regular file within [`MAX_CAPTIONS_FILE_BYTES`]).
fn read(path: &Path) -> Result<Vec<u8>, InferError> {
    read_input_file(path, MAX_CAPTIONS_FILE_BYTES)
        .map_err(|e| InferError::Evaluation(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_from_standard_input_and_either_tokenization() {
        let line = br#"{"id": 1, "hypothesis": "A dog's ball.", "references": ["a dog 's ball ."]}"#;
        let set = read_jsonl(Path::new("-"), &line[..]).unwrap();
        assert_eq!(set.hypotheses, ["A dog's ball."]);
        // Whitespace: "A", "dog's", "ball." beside the reference's five tokens.
        assert_eq!(corpus(&set, Tokenization::Whitespace).unwrap().vocabulary_size(), 8);
        // spaCy's rules split the clitic and the stop, lowercased: the same 5 tokens both sides.
        assert_eq!(corpus(&set, Tokenization::Spacy).unwrap().vocabulary_size(), 5);
        let error = read_jsonl(Path::new("/nonexistent.jsonl"), &b""[..]).unwrap_err().to_string();
        assert!(error.contains("/nonexistent.jsonl"), "{error}");
    }
}
