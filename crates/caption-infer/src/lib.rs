//! Captioning images with a trained model, without the trainer: the original's CNN-to-RNN or the
//! Show, Attend and Tell model and its vocabulary loaded from a run folder, a checkpoint folder or
//! the PyTorch original's weights, images captioned by greedy decoding (the original's
//! `caption_image`) or beam search; the attention model's captions carry each word's weights.
//!
//! - [`Captioner`], loaded with [`Captioner::from_run_or_checkpoint`] or
//!   [`Captioner::from_original`]; [`Captioner::caption_images`] for decoded pictures,
//!   [`Captioner::caption_dataset`] for a prepared dataset's images;
//! - [`checkpoint_files`]: what a checkpoint folder holds for captioning (model.safetensors with
//!   its vocabulary and configuration in the metadata, tokenizer.json, the model's settings in
//!   trainer.json),
//!   and how a run folder is searched for one. caption-train writes these folders;
//! - [`evaluation`]: a split captioned and scored (BLEU-1..4, CIDEr-D, ROUGE-L), its evaluation
//!   files written; caption-train's validation and `cargo xtask bleu` / `demo` use it;
//! - [`report`]: the evaluation as one self-contained HTML page;
//! - [`export`]: a trained model as a folder PyTorch loads and captions with alone;
//! - [`attention_map`]: where an attention decoder looked for each word, as a PNG strip.
//!
//! # Example
//!
//! ```no_run
//! use caption_infer::{Captioner, Decoding};
//!
//! let device = candle_core::Device::Cpu;
//! // A run folder written by `cargo xtask train` (its best/ checkpoint) or a checkpoint folder.
//! let captioner = Captioner::from_run_or_checkpoint("runs/demo".as_ref(), &device)?;
//! let image = caption_data::check_image_file("photo.jpg".as_ref()).map_err(std::io::Error::other)?;
//! for caption in captioner.caption_images(&[image], Decoding::Beam { size: 3, length_penalty: 0.0 })? {
//!     println!("{} ({:.2})", caption.words.join(" "), caption.log_prob);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod attention_map;
pub mod captioner;
pub mod checkpoint_files;
mod error;
pub mod evaluation;
pub mod export;
pub mod font;
pub mod frozen_weights;
pub mod image_features;
pub mod images;
mod original;
pub mod report;
pub mod request;
pub mod run_layout;
mod safetensors_file;
pub mod scored_files;
pub mod shapes_outcome;
pub mod shapes_scores;

pub use captioner::{Captioner, Decoding, Generated, check_beam_width};
pub use error::InferError;
pub use original::original_vocabulary;
pub use request::{DecodingOptions, MAX_BEAM, MAX_LENGTH, Method, ModelFacts, Plan};
