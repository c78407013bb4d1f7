//! spaCy's English tokenizer reimplemented in Rust, token for token, and the caption vocabulary
//! the PyTorch captioning tutorials build on it.
//!
//! - [`Tokenizer`]: spaCy 3.8's tokenization algorithm (whitespace handling, special cases,
//!   prefixes, suffixes, infixes, URLs, special cases over tokens) running on spaCy's own English
//!   rules ([`Rules::english`]). Tokens carry byte offsets and trailing-space flags, so the input is
//!   rebuilt exactly; lowercasing is a separate step ([`Token::lower`]).
//! - [`Vocabulary`]: `<PAD>`, `<SOS>`, `<EOS>`, `<UNK>` then words over a frequency threshold, in
//!   the original's order (`original`) or by frequency; numericalize and decode; saved as a Hugging
//!   Face `tokenizer.json`.
//! - [`detokenize`]: a model's words written as a person writes them (`"a dog's ball."`).
//!
//! # Where this differs from spaCy
//!
//! No token differs on the fixtures (all 40,455 Flickr8k captions and 9,330 hard cases, generated
//! by `tools/text/generate_fixtures.py`). By design:
//! - offsets are byte offsets into the UTF-8 input; spaCy's `idx` counts code points;
//! - [`Token::lower`] is Rust's `to_lowercase`, which follows the same Unicode rules as Python's
//!   `str.lower()` (final sigma included) but may know newer characters than your Python;
//! - `\d`, `\w`, `\s` in the rules are the exact code point sets of the Python that exported them
//!   (3.11, Unicode 14);
//! - a pattern search that exceeds fancy-regex's backtracking limit (10 million steps; none of the
//!   fixtures comes near) counts as no match, where Python would keep going.
//!
//! # Example
//!
//! ```
//! use caption_text::{Ordering, Tokenizer, Vocabulary};
//!
//! let tokenizer = Tokenizer::english();
//! let captions = ["A dog's running.", "A dog runs!", "Two dogs run."];
//! let tokenized: Vec<Vec<String>> = captions.iter().map(|c| tokenizer.lowercase_words(c)).collect();
//! assert_eq!(tokenized[0], ["a", "dog", "'s", "running", "."]);
//!
//! let vocabulary = Vocabulary::build(&tokenized, 2, Ordering::Original)?;
//! assert_eq!(vocabulary.id("a"), Some(4)); // first word to reach the threshold
//! let ids = vocabulary.numericalize(&tokenized[2]);
//! assert_eq!(ids.first(), Some(&Vocabulary::SOS));
//! // "two", "dogs", "run" are below the threshold; "." reached it third.
//! assert_eq!(vocabulary.decode(&ids), ["<UNK>", "<UNK>", "<UNK>", "."]);
//! # Ok::<(), caption_text::TextError>(())
//! ```

mod detokenize;
mod error;
mod rules;
mod special_matcher;
mod token;
mod tokenizer;
mod tokenizer_json;
mod vocabulary;

pub use detokenize::detokenize;
pub use error::TextError;
pub use rules::Rules;
pub use token::{Token, reconstruct};
pub use tokenizer::Tokenizer;
pub use vocabulary::{Ordering, Vocabulary};
