//! [`CorpusReport`]: a corpus scored with the metrics asked for, printed as a table
//! ([`Display`](std::fmt::Display)) or written as one JSON object (`to_json`, with the `formats`
//! feature) — what `cargo xtask bleu` prints.

use std::fmt;

use crate::{Bleu, BleuScore, CiderD, CiderScore, Corpus, MetricsError, RougeL, RougeScore};

/// A corpus's scores: BLEU (with its details), CIDEr-D and ROUGE-L, each when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusReport {
    /// Hypotheses scored.
    pub segments: usize,
    /// BLEU-1..N with the brevity penalty, precisions and lengths.
    pub bleu: Option<BleuScore>,
    /// CIDEr-D (pycocoevalcap's defaults).
    pub cider: Option<CiderScore>,
    /// ROUGE-L (pycocoevalcap's).
    pub rouge: Option<RougeScore>,
}

impl CorpusReport {
    /// Scores `corpus` with `bleu` when given, CIDEr-D and ROUGE-L when asked for.
    ///
    /// # Errors
    /// [`MetricsError`] for a corpus a metric cannot score.
    pub fn score(corpus: &Corpus, bleu: Option<&Bleu>, cider: bool, rouge: bool) -> Result<Self, MetricsError> {
        Ok(Self {
            segments: corpus.len(),
            bleu: bleu.map(|bleu| bleu.corpus(corpus)).transpose()?,
            cider: cider.then(|| CiderD::default().score(corpus)).transpose()?,
            rouge: rouge.then(|| RougeL::default().score(corpus)),
        })
    }

    /// One JSON object: `segments`, `bleu_1` … `bleu_N`, `brevity_penalty`, `precisions`,
    /// `hyp_len`, `ref_len`, `compat`, `smoothing` (and `sacrebleu`'s details), `cider`,
    /// `rouge_l`, each metric's keys only when it was scored.
    #[cfg(feature = "formats")]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut object = serde_json::Map::new();
        object.insert("segments".into(), json!(self.segments));
        if let Some(bleu) = &self.bleu {
            for (n, score) in bleu.bleu.iter().enumerate() {
                object.insert(format!("bleu_{}", n + 1), json!(score));
            }
            object.insert("brevity_penalty".into(), json!(bleu.brevity_penalty));
            object.insert("precisions".into(), json!(bleu.precisions));
            object.insert("hyp_len".into(), json!(bleu.hyp_len));
            object.insert("ref_len".into(), json!(bleu.ref_len));
            object.insert("compat".into(), json!(bleu.compat));
            object.insert("smoothing".into(), json!(bleu.smoothing));
            if let Some(sacrebleu) = &bleu.sacrebleu {
                object.insert("sacrebleu".into(), json!(sacrebleu));
            }
        }
        if let Some(cider) = &self.cider {
            object.insert("cider".into(), json!(cider.score));
        }
        if let Some(rouge) = &self.rouge {
            object.insert("rouge_l".into(), json!(rouge.score));
        }
        serde_json::Value::Object(object)
    }
}

/// The scores as a table, one metric after another.
impl fmt::Display for CorpusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} segments", self.segments)?;
        if let Some(bleu) = &self.bleu {
            writeln!(f, "BLEU ({} profile, smoothing {})", bleu.compat, bleu.smoothing)?;
            for (n, (score, precision)) in bleu.bleu.iter().zip(&bleu.precisions).enumerate() {
                writeln!(f, "  BLEU-{:<2} {:>8.4}   precision {:.4}", n + 1, score, precision)?;
            }
            writeln!(
                f,
                "  brevity penalty {:.4}  (hypothesis {} tokens, reference {} tokens)",
                bleu.brevity_penalty, bleu.hyp_len, bleu.ref_len
            )?;
            if let Some(sacrebleu) = &bleu.sacrebleu {
                writeln!(f, "  sacrebleu: {}", sacrebleu.formatted)?;
                writeln!(f, "  signature: {}", sacrebleu.signature)?;
            }
        }
        if let Some(cider) = &self.cider {
            writeln!(f, "CIDEr-D  {:>8.4}", cider.score)?;
        }
        if let Some(rouge) = &self.rouge {
            writeln!(f, "ROUGE-L  {:>8.4}", rouge.score)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_report_holds_what_was_asked_and_prints_it() {
        let hypotheses = vec![words("a dog runs on the grass"), words("a cat sits")];
        let references = vec![vec![words("a dog runs on grass")], vec![words("a cat sits on a mat")]];
        let corpus = Corpus::new(&hypotheses, &references).unwrap();
        let bleu = Bleu::coco();
        let report = CorpusReport::score(&corpus, Some(&bleu), false, true).unwrap();
        assert_eq!(report.segments, 2);
        assert_eq!(report.bleu.as_ref().unwrap().bleu, bleu.corpus(&corpus).unwrap().bleu);
        assert!(report.cider.is_none() && report.rouge.is_some());
        let table = report.to_string();
        assert!(table.starts_with("2 segments\n") && table.contains("BLEU-4") && table.contains("ROUGE-L"));
        assert!(!table.contains("CIDEr-D"), "{table}");
    }
}
