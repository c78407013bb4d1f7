//! Caption datasets in: every common caption-file layout, the Hugging Face Hub and a synthetic
//! shapes dataset, checked and turned into one prepared dataset that training reads.
//!
//! - [`sources`]: Kaggle's Flickr8k `captions.txt`, the original `Flickr8k.token.txt` with its
//!   official split files, Karpathy split JSON, COCO captions JSON, plain one-caption-per-line
//!   files and Hub parquet, each read into [`CaptionRecord`]s with located errors;
//! - [`shapes`]: coloured shapes with five captions each, generated from a seed;
//! - [`prepare`]: splits, image checks (corrupt files skipped and listed), spaCy-rule tokens, the
//!   vocabulary, and the [`PreparedDataset`] written atomically (parquet + `tokenizer.json` +
//!   `manifest.json`);
//! - [`ImageTransform`] and [`loader`]: the original's train and eval transforms and seeded,
//!   padded batches for training.
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
mod imaging;
mod input_file;
pub mod loader;
mod manifest;
mod output_folder;
mod prepare;
mod prepared;
pub mod progress;
mod record;
pub mod shapes;
pub mod sources;
mod split;

pub use error::DataError;
pub use imaging::{
    IMAGE_EXTENSIONS, ImageFiles, MAX_PATH_LINE_BYTES, collect_image_files, has_image_extension, read_image_paths,
    with_standard_input_paths,
};
pub use imaging::{ImageProblem, ImageTransform, MEAN_STD_HALF, check_image_bytes, check_image_file, resize_bilinear};
pub use input_file::{
    BoundedLines, InputFileError, MAX_CAPTIONS_FILE_BYTES, MAX_IMAGE_FILE_BYTES, open_input_file, read_bounded,
    read_input_file,
};
pub use manifest::{LAYOUT_VERSION, Manifest, SkippedImage, SplitCounts, VocabularyInfo};
pub use output_folder::{claim_folder_of_files, claim_output_folder, refuse_output_over_inputs, resolved};
pub use prepare::{ImageSource, PrepareOptions, RESIZE_SIDES, prepare};
pub use prepared::{FileStamp, PreparedCaption, PreparedDataset, PreparedImage};
pub use progress::{NoProgress, Progress};
pub use record::{CaptionRecord, Split};
pub use split::{SplitRatios, assign_splits};
