//! Caption metrics that agree with the Python libraries papers use, to the last digit, and fast.
//!
//! - [`Bleu`]: BLEU-1..N with the arithmetic of **nltk** 3.10 (`corpus_bleu`, `sentence_bleu`,
//!   `SmoothingFunction` methods 0–7), **pycocoevalcap** 1.2 (`Bleu(4)`, what captioning papers
//!   report) or **sacrebleu** 2.6 (`tokenize="none"`, smoothing none/floor/add-k/exp, effective
//!   order, its signature). Every result names the profile it reproduces.
//! - [`CiderD`] and [`RougeL`]: as pycocoevalcap 1.2 computes them.
//! - [`TrainingCiderD`]: CIDEr-D with document frequencies and reference length counted once over
//!   a training corpus, each caption scored alone: self-critical training's reward
//!   (self-critical.pytorch's `CiderD(df=<train idxs>)`), equal to pycocoevalcap's CiderScorer
//!   given those frequencies.
//!
//! - [`tokenize_13a`]: sacrebleu's default tokenizer; [`python_split`] and [`python_rstrip`]:
//!   Python's whitespace rules (which also split on U+001C..U+001F), as the libraries split.
//!
//! Input is pre-tokenized: build a [`Corpus`] once from token sequences (`&str`, `String`, ids:
//! anything hashable) and compute any metric on it. The crate does no I/O and has no heavy
//! dependencies; the optional feature `formats` adds readers for JSON Lines and COCO
//! results/annotations files (module `formats`).
//!
//! # Example
//!
//! ```
//! use caption_metrics::{Bleu, CiderD, Compat, Corpus, NltkSmoothing, RougeL};
//!
//! let hypotheses = [
//!     "a dog runs across the grass",
//!     "two children play in the water",
//! ];
//! let references = [
//!     vec!["a dog is running on the grass", "a brown dog runs across a lawn"],
//!     vec!["two kids are playing in the water", "children splash in a pool"],
//! ];
//! let corpus = Corpus::from_whitespace_text(&hypotheses, &references)?;
//!
//! let coco = Bleu::coco().corpus(&corpus)?;
//! assert_eq!(coco.compat, Compat::Coco);
//! println!("BLEU-1..4 (pycocoevalcap): {:?}", coco.bleu);
//!
//! let nltk = Bleu::nltk(NltkSmoothing::method(1)?).corpus(&corpus)?;
//! assert!(nltk.bleu.iter().all(|b| (0.0..=1.0).contains(b)));
//!
//! let cider = CiderD::default().score(&corpus)?;
//! let rouge = RougeL::default().score(&corpus);
//! assert_eq!(cider.segments.len(), 2);
//! assert!(rouge.score > 0.0);
//! # Ok::<(), caption_metrics::MetricsError>(())
//! ```

mod bleu;
mod cider;
mod cider_training;
mod corpus;
mod error;
#[cfg(feature = "formats")]
pub mod formats;
mod ngram;
mod python_numbers;
mod python_text;
mod report;
mod rouge;

pub use bleu::{Bleu, BleuScore, Compat, NltkSmoothing, Profile, SacrebleuDetails, SacrebleuSmoothing, tokenize_13a};
pub use cider::{CiderD, CiderScore};
pub use cider_training::TrainingCiderD;
pub use corpus::Corpus;
pub use error::MetricsError;
pub use python_text::{is_python_space, python_rstrip, python_split};
pub use report::CorpusReport;
pub use rouge::{RougeL, RougeScore};
