//! `manifest.json`: what a prepared dataset holds, where it came from and the hashes that prove its
//! files are the ones written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the prepared layout this crate writes and reads. Version 1 stored each caption's
/// token ids with `<SOS>` and `<EOS>` around them, which the loader wrapped again (every caption
/// trained as `<SOS> <SOS> words <EOS> <EOS>`); version 2 stores the words' ids only. Datasets of
/// another version are refused ([`crate::DataError::OtherLayout`]), never trained on.
pub const LAYOUT_VERSION: u32 = 2;

/// Images and captions in one split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    /// Usable images.
    pub images: usize,
    /// Captions of usable images.
    pub captions: usize,
}

/// An image left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedImage {
    /// The image's identifier.
    pub image: String,
    /// Why it was left out.
    pub reason: String,
    /// How many captions it had (left out with it).
    pub captions: usize,
}

/// How the vocabulary was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabularyInfo {
    /// Number of ids, specials included.
    pub size: usize,
    /// Frequency threshold.
    pub threshold: usize,
    /// `train` (train-split captions) or `all` (every caption in file order: the original's).
    pub scope: String,
    /// `original` (first reaching the threshold; `seed` in datasets prepared before it was renamed)
    /// or `frequency`.
    pub ordering: String,
    /// The tokenizer rules that produced the words.
    pub tokenizer: String,
}

/// The manifest of a prepared dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`LAYOUT_VERSION`]).
    pub layout_version: u32,
    /// Dataset name (the folder's name by default).
    pub name: String,
    /// Where the data came from: a path, a Hub repository, or a generator and its settings.
    pub source: String,
    /// The source's layout (`kaggle`, `flickr8k-token`, `karpathy`, `coco`, `plain`, `hub`,
    /// `shapes`).
    pub format: String,
    /// How splits were made: `official` or `hashed <ratios> seed <n>`.
    pub splits_from: String,
    /// The program that wrote it.
    pub created_by: String,
    /// Per split: images and captions.
    pub splits: BTreeMap<String, SplitCounts>,
    /// The vocabulary.
    pub vocabulary: VocabularyInfo,
    /// Images left out, with reasons.
    pub skipped_images: Vec<SkippedImage>,
    /// Captions dropped because they were empty after tokenization.
    pub empty_captions: usize,
    /// Side of the pre-resized image cache, if one was written.
    pub resized: Option<u32>,
    /// SHA-256 of every file of the dataset (relative path → hex digest), images excepted (their
    /// sizes and hashes are in images.parquet).
    pub files: BTreeMap<String, String>,
    /// Each image file's modification time when it was prepared (image id → nanoseconds since
    /// the Unix epoch): an image whose size and time are unchanged is not hashed again. Kept out
    /// of the hashed files, so that the same data prepared twice has the same content hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_modified_ns: BTreeMap<String, i64>,
}

impl Manifest {
    /// What was prepared, for people: one line per split (images, captions), the vocabulary, and
    /// what was skipped or dropped, each line indented by two spaces.
    pub fn summary(&self) -> String {
        let mut lines: Vec<String> = self
            .splits
            .iter()
            .map(|(split, counts)| format!("  {split:<10} {:>7} images {:>8} captions", counts.images, counts.captions))
            .collect();
        let vocabulary = &self.vocabulary;
        lines.push(format!(
            "  vocabulary {} ids (threshold {}, built on {} captions; splits {})",
            vocabulary.size, vocabulary.threshold, vocabulary.scope, self.splits_from
        ));
        if !self.skipped_images.is_empty() {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for skipped in &self.skipped_images {
                *reasons.entry(skipped.reason.split(':').next().unwrap_or("")).or_default() += 1;
            }
            let listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            lines.push(format!(
                "  skipped {} images ({}); listed in manifest.json",
                self.skipped_images.len(),
                listed.join(", ")
            ));
        }
        if self.empty_captions > 0 {
            lines.push(format!("  dropped {} captions with no tokens", self.empty_captions));
        }
        lines.join("\n")
    }

    /// One hash for the whole dataset: SHA-256 over the file hashes (what a checkpoint records).
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (file, hash) in &self.files {
            hasher.update(file.as_bytes());
            hasher.update([0]);
            hasher.update(hash.as_bytes());
            hasher.update([0]);
        }
        hex(&hasher.finalize())
    }
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
