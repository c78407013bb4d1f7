//! Caption datasets in: every common caption-file layout read into [`CaptionRecord`]s with clear,
//! located errors.
//!
//! This crate grows into the whole ingestion pipeline (image checks, the prepared dataset format,
//! Hub downloads); today it reads Kaggle's Flickr8k `captions.txt`, the original
//! `Flickr8k.token.txt` with its official split files, Karpathy split JSON, COCO captions JSON and
//! plain one-caption-per-line files, and assigns deterministic splits where a source has none.
//!
//! # Example
//!
//! ```
//! let bytes = b"image,caption\n1000268201_693b08cb0e.jpg,\"A child , in pink , climbs .\"\n";
//! let records = caption_data::sources::kaggle::parse(bytes, "captions.txt")?;
//! assert_eq!(records[0].caption, "A child , in pink , climbs .");
//! # Ok::<(), caption_data::DataError>(())
//! ```

mod error;
mod record;
pub mod sources;
mod split;

pub use error::DataError;
pub use record::{CaptionRecord, Split};
pub use split::{SplitRatios, assign_splits};
