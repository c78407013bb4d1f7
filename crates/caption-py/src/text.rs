//! The spaCy-rule tokenizer, detokenizing, and the vocabulary (a Hugging Face `tokenizer.json`).

use std::path::PathBuf;
use std::sync::OnceLock;

use caption_text::{Ordering, Token, Tokenizer, Vocabulary as Words};
use pyo3::prelude::*;

use crate::caption_error;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(tokenize, module)?)?;
    module.add_function(wrap_pyfunction!(tokenize_batch, module)?)?;
    module.add_function(wrap_pyfunction!(detokenize, module)?)?;
    module.add_class::<Vocabulary>()?;
    Ok(())
}

/// spaCy 3.8's English tokenizer, built once.
fn english() -> &'static Tokenizer {
    static ENGLISH: OnceLock<Tokenizer> = OnceLock::new();
    ENGLISH.get_or_init(Tokenizer::english)
}

/// A token's text, lowercased when asked (the original's `tokenizer_eng`).
fn text_of(token: &Token<'_>, lower: bool) -> String {
    if lower { token.lower() } else { token.text.to_owned() }
}

/// `[t.text for t in spacy.blank("en").tokenizer(text)]`, lowercased with `lower`.
#[pyfunction]
#[pyo3(signature = (text, lower = false))]
fn tokenize(text: &str, lower: bool) -> Vec<String> {
    english().tokenize(text).iter().map(|t| text_of(t, lower)).collect()
}

/// [`tokenize`] for many texts, in parallel, without the GIL.
#[pyfunction]
#[pyo3(signature = (texts, lower = false))]
fn tokenize_batch(py: Python<'_>, texts: Vec<String>, lower: bool) -> Vec<Vec<String>> {
    py.detach(|| {
        english()
            .tokenize_batch(&texts)
            .iter()
            .map(|tokens| tokens.iter().map(|t| text_of(t, lower)).collect())
            .collect()
    })
}

/// Words written as a person writes them: `["a", "dog", "'s", "ball", "."]` -> `"a dog's ball."`.
#[pyfunction]
fn detokenize(words: Vec<String>) -> String {
    caption_text::detokenize(&words)
}

/// The caption vocabulary: `<PAD>`, `<SOS>`, `<EOS>`, `<UNK>` (ids 0 to 3), then the words that
/// reached the frequency threshold.
#[pyclass(frozen, module = "caption._native")]
struct Vocabulary {
    words: Words,
}

#[pymethods]
impl Vocabulary {
    /// Builds a vocabulary from tokenized captions (lists of words).
    #[staticmethod]
    #[pyo3(signature = (captions, threshold = 5, ordering = "original"))]
    fn build(py: Python<'_>, captions: Vec<Vec<String>>, threshold: usize, ordering: &str) -> PyResult<Self> {
        let ordering = match ordering {
            "original" => Ordering::Original,
            "frequency" => Ordering::Frequency,
            other => return Err(caption_error(format!("ordering {other:?}: give \"original\" or \"frequency\""))),
        };
        let words = py.detach(|| Words::build(&captions, threshold, ordering)).map_err(caption_error)?;
        Ok(Self { words: words.with_tokenizer_rules(english().rules_version()) })
    }

    /// Reads a Hugging Face `tokenizer.json` this project wrote (a run's or an export's).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(Self { words: Words::load(&path).map_err(caption_error)? })
    }

    /// Writes the vocabulary as a Hugging Face `tokenizer.json`.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.words.save(&path).map_err(caption_error)
    }

    fn __len__(&self) -> usize {
        self.words.len()
    }

    fn __contains__(&self, word: &str) -> bool {
        self.words.id(word).is_some()
    }

    fn __repr__(&self) -> String {
        format!("Vocabulary({} ids, threshold {}, {})", self.words.len(), self.words.threshold(), self.words.ordering())
    }

    /// Every word by id, the specials first.
    #[getter]
    fn words(&self) -> Vec<String> {
        self.words.words().to_vec()
    }

    /// The frequency threshold the words reached.
    #[getter]
    fn threshold(&self) -> usize {
        self.words.threshold()
    }

    /// A word's id, or `None`.
    fn id(&self, word: &str) -> Option<u32> {
        self.words.id(word)
    }

    /// The word of an id, or `None`.
    fn word(&self, id: u32) -> Option<String> {
        self.words.word(id).map(str::to_owned)
    }

    /// Ids of words (`<UNK>` for unknown ones), without `<SOS>`/`<EOS>`.
    fn encode(&self, words: Vec<String>) -> Vec<u32> {
        self.words.encode(&words)
    }

    /// `<SOS>`, the words' ids, `<EOS>`: what the original trains on.
    fn numericalize(&self, words: Vec<String>) -> Vec<u32> {
        self.words.numericalize(&words)
    }

    /// The words of ids, stopping at `<EOS>` and leaving out `<SOS>` and `<PAD>`.
    fn decode(&self, ids: Vec<u32>) -> Vec<String> {
        self.words.decode(&ids)
    }
}
