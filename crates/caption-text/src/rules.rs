//! [`Rules`]: the data a spaCy tokenizer runs on, exported from spaCy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::TextError;

/// spaCy 3.8's English rules (`spacy.blank("en").tokenizer`), exported by
/// `tools/text/export_spacy_rules.py` (spaCy is MIT-licensed).
const ENGLISH: &str = include_str!("../data/spacy-en.json");

/// A spaCy tokenizer's rules: the prefix, suffix and infix patterns, the URL pattern, the special
/// cases (tokenizer exceptions) and what counts as whitespace.
///
/// Patterns use Rust regex syntax as fancy-regex reads it, already translated from Python's `re`
/// with the same meaning (see the export script). [`Rules::english`] gives spaCy's English rules;
/// other languages can be exported the same way and loaded with [`Rules::from_json`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// The spaCy version the rules were exported from.
    pub spacy_version: String,
    /// The language code.
    pub language: String,
    /// spaCy's `faster_heuristics`: only special cases that contain an affix, an infix or a space
    /// are re-matched over finished tokens.
    pub faster_heuristics: bool,
    /// `prefix_search`, anchored at the start.
    pub prefix: Option<String>,
    /// `suffix_search`, anchored at the end.
    pub suffix: Option<String>,
    /// `infix_finditer`.
    pub infix: Option<String>,
    /// `url_match`.
    pub url: Option<String>,
    /// Inclusive code point ranges of Python's `str.isspace()`.
    pub whitespace: Vec<(u32, u32)>,
    /// Special cases: a string and the pieces it is split into (which concatenate to it).
    pub special_cases: BTreeMap<String, Vec<String>>,
}

impl Rules {
    /// spaCy's English tokenizer rules.
    pub fn english() -> Self {
        Self::from_json(ENGLISH).expect("the embedded English rules are valid")
    }

    /// Reads rules exported by `tools/text/export_spacy_rules.py`.
    ///
    /// # Errors
    /// [`TextError::Rules`] for malformed JSON, [`TextError::SpecialCase`] for a special case
    /// whose pieces do not spell it.
    pub fn from_json(json: &str) -> Result<Self, TextError> {
        let rules: Rules = serde_json::from_str(json).map_err(|e| TextError::Rules(e.to_string()))?;
        for (string, pieces) in &rules.special_cases {
            if pieces.concat() != *string || pieces.iter().any(String::is_empty) {
                return Err(TextError::SpecialCase { string: string.clone(), pieces: pieces.clone() });
            }
        }
        Ok(rules)
    }

    /// A short name for these rules, recorded in vocabularies: `spacy-3.8.18-en`.
    pub fn version(&self) -> String {
        format!("spacy-{}-{}", self.spacy_version, self.language)
    }
}
