//! Captioning a split of a prepared dataset with a trained model and scoring it: what
//! `cargo xtask bleu --checkpoint` and `cargo xtask demo` share.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use caption_data::{PreparedDataset, Split};
use caption_metrics::{Bleu, CiderD, Corpus, RougeL};
use caption_train::validation::reference_words;
use caption_train::{Captioner, Decoding};
use serde_json::json;

use crate::progress::Bars;

/// Generated captions of one split, with their references.
pub struct SplitCaptions {
    /// Image rows in the dataset.
    pub rows: Vec<usize>,
    /// Image identifiers.
    pub ids: Vec<String>,
    /// Generated words per image.
    pub hypotheses: Vec<Vec<String>>,
    /// Reference captions (raw text) per image.
    pub references: Vec<Vec<String>>,
    /// Reference words (spaCy rules, lowercased) per image.
    pub reference_words: Vec<Vec<Vec<String>>>,
    /// Whose BLEU arithmetic scores them (pycocoevalcap unless `--compat` says otherwise).
    pub bleu: Bleu,
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
pub fn caption_split(
    captioner: &Captioner,
    dataset: &PreparedDataset,
    split: Split,
    decoding: Decoding,
    bars: &Bars,
) -> Result<SplitCaptions> {
    let rows = dataset.images_in(split);
    anyhow::ensure!(!rows.is_empty(), "the dataset has no {split} images");
    anyhow::ensure!(
        captioner.vocabulary.words() == dataset.vocabulary.words(),
        "the checkpoint's vocabulary ({} ids) is not the dataset's ({} ids): it was trained on another dataset",
        captioner.vocabulary.len(),
        dataset.vocabulary.len()
    );
    let generated = captioner.caption_dataset(dataset, &rows, decoding, bars)?;
    let all_references = dataset.references();
    Ok(SplitCaptions {
        ids: rows.iter().map(|&r| dataset.images[r].id.clone()).collect(),
        hypotheses: generated.into_iter().map(|g| g.words).collect(),
        references: rows.iter().map(|&r| all_references[r].iter().map(|s| s.to_string()).collect()).collect(),
        reference_words: reference_words(dataset, &rows),
        rows,
        bleu: Bleu::coco(),
    })
}

impl SplitCaptions {
    /// The metric corpus.
    pub fn corpus(&self) -> Result<Corpus> {
        Ok(Corpus::new(&self.hypotheses, &self.reference_words)?)
    }

    /// BLEU-1..4, CIDEr-D and ROUGE-L of the split.
    pub fn scores(&self) -> Result<Scores> {
        let corpus = self.corpus()?;
        let bleu = self.bleu.corpus(&corpus)?.bleu;
        Ok(Scores {
            bleu: [bleu[0], bleu[1], bleu[2], bleu[3]],
            cider: CiderD::default().score(&corpus)?.score,
            rouge_l: RougeL::default().score(&corpus).score,
        })
    }

    /// Per-image BLEU-1..4 (the scoring library's per-sentence scores).
    pub fn sentence_bleu(&self) -> Result<Vec<Vec<f64>>> {
        Ok(self.bleu.sentences(&self.corpus()?)?)
    }

    /// Writes `results.json` (COCO results format), `captions.jsonl` (per image: id, caption,
    /// references, BLEU-1..4) and `metrics.json` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, scores: &Scores, extra: serde_json::Value) -> Result<Vec<PathBuf>> {
        claim_eval_folder(dir)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let results: Vec<_> = self
            .ids
            .iter()
            .zip(&self.hypotheses)
            .map(|(id, words)| json!({"image_id": id, "caption": words.join(" ")}))
            .collect();
        let sentences = self.sentence_bleu()?;
        let mut lines = String::new();
        for (i, id) in self.ids.iter().enumerate() {
            let line = json!({
                "image": id, "caption": self.hypotheses[i].join(" "), "references": self.references[i],
                "bleu": sentences[i],
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
            ("results.json", serde_json::to_string_pretty(&results)?),
            ("captions.jsonl", lines),
            ("metrics.json", serde_json::to_string_pretty(&metrics)?),
        ];
        let mut paths = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            caption_io::write_bytes_atomically(&path, text.as_bytes()).with_context(|| path.display().to_string())?;
            paths.push(path);
        }
        Ok(paths)
    }
}

/// Checks that `dir` may receive an evaluation's files: absent, empty, or holding only what an
/// evaluation writes (results.json, captions.jsonl, metrics.json).
pub fn claim_eval_folder(dir: &Path) -> Result<()> {
    // Files of these names are an evaluation's only when its metrics.json says so.
    let metrics = std::fs::read_to_string(dir.join("metrics.json")).ok();
    let ours = metrics
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|m| m.get("compat").is_some() && m.get("bleu_4").is_some());
    let own = |relative: &Path, is_dir: bool| {
        ours && !is_dir && relative.to_str().is_some_and(|name| caption_train::run_folder::EVAL_FILES.contains(&name))
    };
    Ok(caption_data::claim_output_folder(dir, "folder of evaluation results", &own)?)
}

/// Prints the metric table.
pub fn print_scores(label: &str, scores: &Scores) {
    println!("{label}");
    for (n, b) in scores.bleu.iter().enumerate() {
        println!("  BLEU-{}   {:.4}", n + 1, b);
    }
    println!("  CIDEr-D  {:.4}", scores.cider);
    println!("  ROUGE-L  {:.4}", scores.rouge_l);
}
