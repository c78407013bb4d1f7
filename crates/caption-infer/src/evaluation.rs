//! Captioning a split of a prepared dataset and scoring it: the captions with their references,
//! BLEU-1..4 (pycocoevalcap's arithmetic unless another profile is chosen), CIDEr-D and ROUGE-L,
//! and the evaluation files (`results.json` in the COCO results format, `captions.jsonl` with
//! per-image BLEU, `metrics.json`).

use std::path::{Path, PathBuf};

use caption_data::{PreparedDataset, Progress, Split};
use caption_metrics::{Bleu, CiderD, Compat, Corpus, RougeL};
use caption_text::Tokenizer;
use serde_json::json;

use crate::run_layout::{CAPTIONS_FILE, EVALUATION_METRICS_FILE, RESULTS_FILE};
use crate::{Captioner, Decoding, InferError};

pub use crate::run_layout::EVAL_FILES;

/// Lowercased spaCy-rule tokens of every reference caption of each image (by image row).
pub fn reference_words(dataset: &PreparedDataset, image_rows: &[usize]) -> Vec<Vec<Vec<String>>> {
    let tokenizer = Tokenizer::english();
    let references = dataset.references();
    image_rows.iter().map(|&row| references[row].iter().map(|c| tokenizer.lowercase_words(c)).collect()).collect()
}

/// Generated captions of one split, with their references.
pub struct SplitCaptions {
    /// Image rows in the dataset.
    pub rows: Vec<usize>,
    /// Image identifiers.
    pub ids: Vec<String>,
    /// Generated words per image.
    pub hypotheses: Vec<Vec<String>>,
    /// An attention model's weights for each generated word, per image ([`Generated::alphas`];
    /// empty lists for the original's model).
    ///
    /// [`Generated::alphas`]: crate::Generated::alphas
    pub alphas: Vec<Vec<Vec<f32>>>,
    /// Where the cells the weights are over look in the images (attention models).
    pub grid: Option<crate::attention_map::GridGeometry>,
    /// Reference captions (raw text) per image.
    pub references: Vec<Vec<String>>,
    /// Reference words (spaCy rules, lowercased) per image.
    pub reference_words: Vec<Vec<Vec<String>>>,
    /// Whose BLEU arithmetic scores them (pycocoevalcap unless `--compat` says otherwise).
    pub bleu: Bleu,
}

/// One image's scores against its references.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageScores {
    /// Sentence BLEU-1..4 (the scoring library's per-sentence arithmetic).
    pub bleu: [f64; 4],
    /// CIDEr-D of the image (pycocoevalcap's per-image score; the corpus score is their mean).
    pub cider: f64,
    /// ROUGE-L of the image (the corpus score is their mean).
    pub rouge_l: f64,
}

/// Every image's scores, by metric.
struct PerImage {
    bleu: Vec<Vec<f64>>,
    cider: Vec<f64>,
    rouge_l: Vec<f64>,
}

/// Corpus scores.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    /// BLEU-1..4 (pycocoevalcap's, or the `--compat` library's).
    pub bleu: [f64; 4],
    /// CIDEr-D.
    pub cider: f64,
    /// ROUGE-L.
    pub rouge_l: f64,
}

/// Captions every image of `split`.
///
/// # Errors
/// [`InferError::Evaluation`] when the split is empty or the model's vocabulary is not the
/// dataset's; a data or candle error while captioning.
pub fn caption_split(
    captioner: &Captioner,
    dataset: &PreparedDataset,
    split: Split,
    decoding: Decoding,
    progress: &dyn Progress,
) -> Result<SplitCaptions, InferError> {
    let rows = dataset.images_in(split);
    if rows.is_empty() {
        return Err(InferError::Evaluation(format!("the dataset has no {split} images")));
    }
    if captioner.vocabulary.words() != dataset.vocabulary.words() {
        return Err(InferError::Evaluation(format!(
            "the checkpoint's vocabulary ({} ids) is not the dataset's ({} ids): it was trained on another dataset",
            captioner.vocabulary.len(),
            dataset.vocabulary.len()
        )));
    }
    let generated = captioner.caption_dataset(dataset, &rows, decoding, progress)?;
    let all_references = dataset.references();
    Ok(SplitCaptions {
        ids: rows.iter().map(|&r| dataset.images[r].id.clone()).collect(),
        alphas: generated.iter().map(|g| g.alphas.clone()).collect(),
        grid: generated.iter().find_map(|g| g.grid),
        hypotheses: generated.into_iter().map(|g| g.words).collect(),
        references: rows.iter().map(|&r| all_references[r].iter().map(|s| s.to_string()).collect()).collect(),
        reference_words: reference_words(dataset, &rows),
        rows,
        bleu: Bleu::coco(),
    })
}

impl SplitCaptions {
    /// The metric corpus.
    ///
    /// # Errors
    /// [`InferError::Metrics`].
    pub fn corpus(&self) -> Result<Corpus, InferError> {
        Ok(Corpus::new(&self.hypotheses, &self.reference_words)?)
    }

    /// BLEU-1..4, CIDEr-D and ROUGE-L of the split.
    ///
    /// # Errors
    /// [`InferError::Metrics`].
    pub fn scores(&self) -> Result<Scores, InferError> {
        let corpus = self.corpus()?;
        let bleu = self.bleu.corpus(&corpus)?.bleu;
        Ok(Scores {
            bleu: [bleu[0], bleu[1], bleu[2], bleu[3]],
            cider: CiderD::default().score(&corpus)?.score,
            rouge_l: RougeL::default().score(&corpus).score,
        })
    }

    /// Whose arithmetic scores the split, in words: the BLEU library (and its smoothing),
    /// pycocoevalcap's CIDEr-D and ROUGE-L.
    pub fn metric_profile(&self) -> String {
        let smoothing = match self.bleu.compat() {
            Compat::Coco => String::new(),
            _ => format!(", smoothing {}", self.bleu.smoothing_name()),
        };
        format!(
            "BLEU: {}{smoothing}; CIDEr-D and ROUGE-L: pycocoevalcap; spaCy-rule tokens, lowercased",
            self.bleu.compat().name()
        )
    }

    /// Per-image BLEU-1..4, CIDEr-D and ROUGE-L, by image.
    ///
    /// # Errors
    /// [`InferError::Metrics`].
    pub fn image_scores(&self) -> Result<Vec<ImageScores>, InferError> {
        let per_image = self.per_image()?;
        Ok((0..self.ids.len())
            .map(|i| ImageScores {
                bleu: std::array::from_fn(|n| per_image.bleu[i].get(n).copied().unwrap_or(0.0)),
                cider: per_image.cider[i],
                rouge_l: per_image.rouge_l[i],
            })
            .collect())
    }

    /// Every image's sentence BLEU (all the profile's orders), CIDEr-D and ROUGE-L, from one
    /// corpus.
    fn per_image(&self) -> Result<PerImage, InferError> {
        let corpus = self.corpus()?;
        Ok(PerImage {
            bleu: self.bleu.sentences(&corpus)?,
            cider: CiderD::default().score(&corpus)?.segments,
            rouge_l: RougeL::default().score(&corpus).segments,
        })
    }

    /// Writes `results.json` (COCO results format), `captions.jsonl` (per image: id, caption,
    /// references, BLEU-1..4, CIDEr-D, ROUGE-L) and `metrics.json` into `dir`, each atomically, with the keys of
    /// `extra` added to metrics.json; returns their paths.
    ///
    /// # Errors
    /// [`InferError::Data`] when `dir` holds files an evaluation did not write
    /// ([`claim_eval_folder`]); [`InferError::Io`] naming a file that cannot be written.
    pub fn write(&self, dir: &Path, scores: &Scores, extra: serde_json::Value) -> Result<Vec<PathBuf>, InferError> {
        claim_eval_folder(dir)?;
        std::fs::create_dir_all(dir).map_err(|source| InferError::Io { path: dir.display().to_string(), source })?;
        let results: Vec<_> = self
            .ids
            .iter()
            .zip(&self.hypotheses)
            .map(|(id, words)| json!({"image_id": id, "caption": words.join(" ")}))
            .collect();
        let per_image = self.per_image()?;
        let mut lines = String::new();
        for (i, id) in self.ids.iter().enumerate() {
            let line = json!({
                "image": id, "caption": self.hypotheses[i].join(" "), "references": self.references[i],
                "bleu": per_image.bleu[i], "cider": per_image.cider[i], "rouge_l": per_image.rouge_l[i],
            });
            lines.push_str(&format!("{line}\n"));
        }
        let mut metrics = json!({
            "images": self.ids.len(), "bleu_1": scores.bleu[0], "bleu_2": scores.bleu[1], "bleu_3": scores.bleu[2],
            "bleu_4": scores.bleu[3], "cider": scores.cider, "rouge_l": scores.rouge_l,
            "compat": self.bleu.compat().name(), "smoothing": self.bleu.smoothing_name(),
        });
        if let (Some(m), Some(e)) = (metrics.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        let files = [
            (RESULTS_FILE, serde_json::to_string_pretty(&results).expect("JSON values serialise")),
            (CAPTIONS_FILE, lines),
            (EVALUATION_METRICS_FILE, serde_json::to_string_pretty(&metrics).expect("JSON values serialise")),
        ];
        let mut paths = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            caption_io::write_bytes_atomically(&path, text.as_bytes())
                .map_err(|source| InferError::Io { path: path.display().to_string(), source })?;
            paths.push(path);
        }
        Ok(paths)
    }
}

/// Checks that `dir` may receive an evaluation's files: absent, empty, or holding only what an
/// evaluation writes ([`EVAL_FILES`], when its metrics.json says it is an evaluation's).
///
/// # Errors
/// [`InferError::Data`] with [`caption_data::DataError::Output`] naming what else is there.
pub fn claim_eval_folder(dir: &Path) -> Result<(), InferError> {
    // Files of these names are an evaluation's only when its metrics.json says so.
    Ok(caption_data::claim_folder_of_files(
        dir,
        "folder of evaluation results",
        &EVAL_FILES,
        EVALUATION_METRICS_FILE,
        &is_evaluation_metrics,
    )?)
}

/// Whether a `metrics.json` (as JSON) is one an evaluation wrote.
pub fn is_evaluation_metrics(metrics: &serde_json::Value) -> bool {
    metrics.get("compat").is_some() && metrics.get("bleu_4").is_some()
}
