//! A [`Vocabulary`] as a Hugging Face `tokenizer.json`.
//!
//! The file is a WordLevel tokenizer: the `tokenizers` library (Rust or Python) loads it and maps
//! words to the same ids. Its pre-tokenizer only splits on whitespace (no Hugging Face
//! pre-tokenizer can express spaCy's rules, and a punctuation splitter would break `n't` and `'s`),
//! so tokenize with [`crate::Tokenizer`] and pass the words pre-tokenized
//! (`encode(words, is_pretokenized=True)` in Python) to get exactly these ids. The post-processor adds `<SOS>`/`<EOS>` like
//! [`Vocabulary::numericalize`]. What this project needs besides (threshold, ordering, tokenizer
//! rules, word counts) rides on the `<PAD>` entry of `added_tokens` under the key
//! `caption_vocabulary`: `tokenizers` refuses unknown keys at the top level and in the model (it
//! does not skip their values), but ignores them inside an added token.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::{Ordering, TextError, Vocabulary};

/// Identifies the metadata's layout.
const FORMAT: &str = "caption-vocabulary/1";
/// Where the metadata sits in the `<PAD>` added token.
const METADATA_KEY: &str = "caption_vocabulary";

impl Vocabulary {
    /// The vocabulary as a `tokenizer.json` document.
    pub fn to_tokenizer_json(&self) -> String {
        let metadata = json!({
            "format": FORMAT,
            "threshold": self.threshold(),
            "ordering": self.ordering(),
            "tokenizer_rules": self.tokenizer_rules(),
            "lowercase": true,
            "counts": (Self::SPECIALS.len()..self.len()).map(|id| self.count(id as u32)).collect::<Vec<_>>(),
        });
        let added_tokens: Vec<Value> = Self::SPECIALS
            .iter()
            .enumerate()
            .map(|(id, content)| {
                let mut token = json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                                       "rstrip": false, "normalized": false, "special": true});
                if id == Self::PAD as usize {
                    token[METADATA_KEY] = metadata.clone();
                }
                token
            })
            .collect();
        let vocab: Map<String, Value> = self.words().iter().enumerate().map(|(id, w)| (w.clone(), json!(id))).collect();
        let special = |name: &str, id: u32| json!({"id": name, "ids": [id], "tokens": [name]});
        let document = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens,
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [
                    {"SpecialToken": {"id": "<SOS>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<EOS>", "type_id": 0}}
                ],
                "pair": [
                    {"SpecialToken": {"id": "<SOS>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<EOS>", "type_id": 0}},
                    {"Sequence": {"id": "B", "type_id": 1}},
                    {"SpecialToken": {"id": "<EOS>", "type_id": 1}}
                ],
                "special_tokens": {"<SOS>": special("<SOS>", Self::SOS), "<EOS>": special("<EOS>", Self::EOS)}
            },
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<UNK>"},
        });
        serde_json::to_string_pretty(&document).expect("JSON values serialize")
    }

    /// Reads a `tokenizer.json` with a WordLevel model whose ids 0–3 are `<PAD>`, `<SOS>`, `<EOS>`,
    /// `<UNK>`. `source` names the document in errors. Without this project's metadata (a file
    /// made elsewhere) the threshold reads as 0 (unknown) and the ordering as frequency.
    ///
    /// # Errors
    /// [`TextError::TokenizerJson`] saying what is missing or inconsistent.
    pub fn from_tokenizer_json(json: &str, source: &str) -> Result<Self, TextError> {
        let problem = |problem: String| TextError::TokenizerJson { path: source.to_string(), problem };
        let document: Value = serde_json::from_str(json).map_err(|e| problem(format!("not valid JSON: {e}")))?;
        let model = document.get("model").ok_or_else(|| problem("no \"model\"".into()))?;
        if model.get("type").and_then(Value::as_str) != Some("WordLevel") {
            return Err(problem(format!("the model is {}, not WordLevel", model.get("type").unwrap_or(&Value::Null))));
        }
        let vocab =
            model.get("vocab").and_then(Value::as_object).ok_or_else(|| problem("the model has no vocab".into()))?;
        let mut words: Vec<Option<String>> = vec![None; vocab.len()];
        for (word, id) in vocab {
            let id = id.as_u64().filter(|&id| (id as usize) < words.len()).ok_or_else(|| {
                problem(format!("word {word:?} has id {id}; ids must run from 0 to {} without gaps", vocab.len() - 1))
            })?;
            if words[id as usize].replace(word.clone()).is_some() {
                return Err(problem(format!("id {id} is given to two words")));
            }
        }
        let words: Vec<String> = words.into_iter().map(|w| w.expect("every id filled")).collect();
        for (id, special) in Self::SPECIALS.iter().enumerate() {
            if words.get(id).map(String::as_str) != Some(*special) {
                return Err(problem(format!("id {id} must be {special}, found {:?}", words.get(id))));
            }
        }
        let meta = document
            .get("added_tokens")
            .and_then(Value::as_array)
            .and_then(|tokens| tokens.iter().find_map(|t| t.get(METADATA_KEY)));
        let threshold = meta.and_then(|m| m.get("threshold")).and_then(Value::as_u64).unwrap_or(0) as usize;
        let ordering = match meta.and_then(|m| m.get("ordering")).and_then(Value::as_str) {
            Some(name) => name.parse()?,
            None => Ordering::Frequency,
        };
        let mut vocabulary = Vocabulary::from_words(words[Self::SPECIALS.len()..].to_vec(), threshold, ordering)
            .map_err(|e| problem(e.to_string()))?;
        if let Some(rules) = meta.and_then(|m| m.get("tokenizer_rules")).and_then(Value::as_str) {
            vocabulary = vocabulary.with_tokenizer_rules(rules);
        }
        if let Some(counts) = meta.and_then(|m| m.get("counts")).and_then(Value::as_array) {
            if counts.len() != vocabulary.len() - Self::SPECIALS.len() {
                return Err(problem(format!("{} counts for {} words", counts.len(), vocabulary.len() - 4)));
            }
            let counts: Option<Vec<u64>> = counts.iter().map(Value::as_u64).collect();
            vocabulary.set_counts(counts.ok_or_else(|| problem("counts must be whole numbers".into()))?);
        }
        Ok(vocabulary)
    }

    /// Writes `tokenizer.json` atomically: a temporary file beside it, flushed, then renamed.
    ///
    /// # Errors
    /// [`TextError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), TextError> {
        caption_io::write_bytes_atomically(path, self.to_tokenizer_json().as_bytes())
            .map_err(|source| TextError::Io { path: path.display().to_string(), source })
    }

    /// Reads a `tokenizer.json` file.
    ///
    /// # Errors
    /// [`TextError::Io`] or [`TextError::TokenizerJson`].
    pub fn load(path: &Path) -> Result<Self, TextError> {
        let io = |source| TextError::Io { path: path.display().to_string(), source };
        // A regular file only: a FIFO or a device would block or never end.
        let metadata = std::fs::metadata(path).map_err(io)?;
        if !metadata.is_file() {
            return Err(io(std::io::Error::other("not a regular file (a folder, device or FIFO)")));
        }
        let json = std::fs::read_to_string(path).map_err(io)?;
        Self::from_tokenizer_json(&json, &path.display().to_string())
    }
}
