//! The PyTorch original's vocabulary, rebuilt from the captions file it was trained on: what its
//! checkpoints need beside their weights.

use std::path::Path;

use caption_data::sources::read_captions_file;
use caption_text::{Ordering, Tokenizer, Vocabulary};

use crate::InferError;

/// The vocabulary the original builds from `captions` (its captions.txt, or any captions file
/// caption-data reads): spaCy-rule tokens, lowercased, words seen at least `threshold` times,
/// numbered in the original's order.
///
/// # Errors
/// [`InferError::Data`] when the file cannot be read; [`InferError::Weights`] when no vocabulary
/// can be built from it.
pub fn original_vocabulary(captions: &Path, threshold: usize) -> Result<Vocabulary, InferError> {
    let records = read_captions_file(captions)?;
    let texts: Vec<&str> = records.iter().map(|r| r.caption.as_str()).collect();
    let words = Tokenizer::english().lowercase_words_batch(&texts);
    Vocabulary::build(&words, threshold, Ordering::Original)
        .map_err(|e| InferError::Weights(format!("{}: {e}", captions.display())))
}
