//! The metrics, on words split as the reproduced library splits them: pycocoevalcap's BLEU,
//! CIDEr-D and ROUGE-L, nltk's BLEU, sacrebleu's BLEU (with its `13a` tokenizer), and CIDEr-D with
//! a training corpus's document frequencies.

use caption_metrics::{
    Bleu, CiderD, Corpus, NltkSmoothing, Profile, RougeL, SacrebleuSmoothing, TrainingCiderD, python_rstrip,
    python_split, tokenize_13a,
};
use pyo3::prelude::*;

use crate::caption_error;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(coco_bleu, module)?)?;
    module.add_function(wrap_pyfunction!(coco_cider, module)?)?;
    module.add_function(wrap_pyfunction!(coco_rouge, module)?)?;
    module.add_function(wrap_pyfunction!(nltk_bleu, module)?)?;
    module.add_function(wrap_pyfunction!(sacrebleu_corpus, module)?)?;
    module.add_function(wrap_pyfunction!(sacrebleu_tokenize, module)?)?;
    module.add_class::<TrainingCider>()?;
    Ok(())
}

/// Words as Python's `str.split()` gives them (pycocoevalcap's BLEU and CIDEr, sacrebleu).
fn words(text: &str) -> Vec<&str> {
    python_split(text).collect()
}

/// The corpus of `hypotheses` against `references`, each text split by `split`.
fn corpus_of<'a>(
    hypotheses: &'a [String],
    references: &'a [Vec<String>],
    split: impl Fn(&'a str) -> Vec<&'a str>,
) -> PyResult<Corpus> {
    let hyps: Vec<Vec<&str>> = hypotheses.iter().map(|h| split(h)).collect();
    let refs: Vec<Vec<Vec<&str>>> = references.iter().map(|rs| rs.iter().map(|r| split(r)).collect()).collect();
    Corpus::new(&hyps, &refs).map_err(caption_error)
}

/// pycocoevalcap's `BleuScorer.compute_score(option="closest")` for BLEU-1..`n`: the corpus
/// scores, per order the per-image scores, and the totals it prints (test length, reference
/// length, guesses and correct n-grams per order).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn coco_bleu(
    py: Python<'_>,
    hypotheses: Vec<String>,
    references: Vec<Vec<String>>,
    n: usize,
) -> PyResult<(Vec<f64>, Vec<Vec<f64>>, u64, u64, Vec<u64>, Vec<u64>)> {
    py.detach(|| {
        let corpus = corpus_of(&hypotheses, &references, words)?;
        let bleu = Bleu::coco().with_max_order(n);
        let score = bleu.corpus(&corpus).map_err(caption_error)?;
        let per_image = bleu.sentences(&corpus).map_err(caption_error)?;
        let by_order = (0..n).map(|k| per_image.iter().map(|scores| scores[k]).collect()).collect();
        Ok((score.bleu, by_order, score.hyp_len, score.ref_len, score.totals, score.matches))
    })
}

/// pycocoevalcap's CIDEr-D of every image (words split as `str.split()`).
#[pyfunction]
fn coco_cider(
    py: Python<'_>,
    hypotheses: Vec<String>,
    references: Vec<Vec<String>>,
    n: usize,
    sigma: f64,
) -> PyResult<Vec<f64>> {
    py.detach(|| {
        let corpus = corpus_of(&hypotheses, &references, words)?;
        Ok(CiderD { max_order: n, sigma }.score(&corpus).map_err(caption_error)?.segments)
    })
}

/// pycocoevalcap's ROUGE-L of every image (words split on single spaces, as `Rouge` splits).
#[pyfunction]
fn coco_rouge(py: Python<'_>, hypotheses: Vec<String>, references: Vec<Vec<String>>, beta: f64) -> PyResult<Vec<f64>> {
    py.detach(|| {
        let corpus = corpus_of(&hypotheses, &references, |text| text.split(' ').collect())?;
        Ok(RougeL { beta }.score(&corpus).segments)
    })
}

/// nltk's `corpus_bleu` (or, with `per_sentence`, `sentence_bleu` of each hypothesis): per
/// weight vector its score, per segment when `per_sentence`. Tokens are strings.
#[pyfunction]
#[pyo3(signature = (references, hypotheses, weights, method, epsilon, alpha, k, auto_reweigh, per_sentence))]
#[allow(clippy::too_many_arguments)]
fn nltk_bleu(
    py: Python<'_>,
    references: Vec<Vec<Vec<String>>>,
    hypotheses: Vec<Vec<String>>,
    weights: Vec<Vec<f64>>,
    method: u8,
    epsilon: f64,
    alpha: f64,
    k: f64,
    auto_reweigh: bool,
    per_sentence: bool,
) -> PyResult<Vec<Vec<f64>>> {
    py.detach(|| {
        let smoothing = NltkSmoothing { epsilon, alpha, k, ..NltkSmoothing::method(method).map_err(caption_error)? };
        let max_order = weights.iter().map(Vec::len).max().unwrap_or(0);
        let bleu = Bleu { profile: Profile::Nltk { smoothing, weights: Some(weights), auto_reweigh }, max_order };
        let corpus = Corpus::new(&hypotheses, &references).map_err(caption_error)?;
        if per_sentence {
            bleu.sentences(&corpus).map_err(caption_error)
        } else {
            Ok(vec![bleu.corpus(&corpus).map_err(caption_error)?.bleu])
        }
    })
}

/// sacrebleu's `BLEU._preprocess_segment`: lowercased if asked, trailing spaces stripped, then
/// tokenized (`13a` or `none`).
fn sacrebleu_segment(text: &str, lowercase: bool, tokenize: &str) -> String {
    let lowered;
    let text = if lowercase {
        lowered = text.to_lowercase();
        &lowered
    } else {
        text
    };
    let text = python_rstrip(text);
    match tokenize {
        "13a" => tokenize_13a(text),
        _ => text.to_owned(),
    }
}

/// sacrebleu's `13a` tokenizer, for one line.
#[pyfunction]
fn sacrebleu_tokenize(line: &str) -> String {
    tokenize_13a(line)
}

/// What sacrebleu's `BLEUScore` holds: score, counts, totals, precisions, bp, sys_len, ref_len,
/// then the metric's signature and the score's `str()`.
type SacrebleuResult = (f64, Vec<u64>, Vec<u64>, Vec<f64>, f64, u64, u64, String, String);

/// sacrebleu's `corpus_bleu(hypotheses, references, ...)`: `references` are reference streams
/// (one string, or `None` for none, per hypothesis).
#[pyfunction]
#[pyo3(signature = (hypotheses, references, smoothing, lowercase, tokenize, effective_order))]
fn sacrebleu_corpus(
    py: Python<'_>,
    hypotheses: Vec<String>,
    references: Vec<Vec<Option<String>>>,
    smoothing: String,
    lowercase: bool,
    tokenize: String,
    effective_order: bool,
) -> PyResult<SacrebleuResult> {
    if !matches!(tokenize.as_str(), "13a" | "none") {
        return Err(caption_error(format!(
            "tokenize={tokenize:?}: this package has sacrebleu's \"13a\" (its default) and \"none\""
        )));
    }
    py.detach(|| {
        if let Some(stream) = references.iter().find(|stream| stream.len() != hypotheses.len()) {
            return Err(caption_error(format!(
                "a reference stream has {} lines for {} hypotheses: give one reference (or None) per hypothesis in every stream",
                stream.len(),
                hypotheses.len()
            )));
        }
        let prepare = |text: &str| sacrebleu_segment(text, lowercase, &tokenize);
        let hyps: Vec<String> = hypotheses.iter().map(|h| prepare(h)).collect();
        let refs: Vec<Vec<String>> = (0..hypotheses.len())
            .map(|segment| references.iter().filter_map(|stream| stream[segment].as_deref()).map(prepare).collect())
            .collect();
        let corpus = corpus_of(&hyps, &refs, words)?;
        let smoothing: SacrebleuSmoothing = smoothing.parse().map_err(caption_error)?;
        let bleu = Bleu { profile: Profile::Sacrebleu { smoothing, effective_order }, max_order: 4 };
        let score = bleu.corpus(&corpus).map_err(caption_error)?;
        let details = score.sacrebleu.ok_or_else(|| caption_error("sacrebleu's details are missing"))?;
        // The signature of caption-metrics names its own settings (no tokenizer, mixed case).
        let signature = details
            .signature
            .replacen("|case:mixed|", if lowercase { "|case:lc|" } else { "|case:mixed|" }, 1)
            .replacen("|tok:none|", &format!("|tok:{tokenize}|"), 1);
        Ok((
            details.score,
            score.matches,
            score.totals,
            details.precisions,
            score.brevity_penalty,
            score.hyp_len,
            score.ref_len,
            signature,
            details.formatted,
        ))
    })
}

/// CIDEr-D with document frequencies and reference length counted once over a training corpus's
/// references (self-critical training's reward); captions are strings split on whitespace.
#[pyclass(frozen, name = "TrainingCiderD", module = "caption._native")]
struct TrainingCider {
    scorer: TrainingCiderD<String>,
}

#[pymethods]
impl TrainingCider {
    #[new]
    #[pyo3(signature = (references, n = 4, sigma = 6.0))]
    fn new(py: Python<'_>, references: Vec<Vec<String>>, n: usize, sigma: f64) -> PyResult<Self> {
        py.detach(|| {
            let split: Vec<Vec<Vec<String>>> = references
                .iter()
                .map(|refs| refs.iter().map(|r| python_split(r).map(str::to_owned).collect()).collect())
                .collect();
            let scorer = TrainingCiderD::new(CiderD { max_order: n, sigma }, &split).map_err(caption_error)?;
            Ok(Self { scorer })
        })
    }

    /// The number of training images the document frequencies were counted over.
    #[getter]
    fn images(&self) -> usize {
        self.scorer.images()
    }

    /// CIDEr-D of each hypothesis against its references.
    fn scores(&self, py: Python<'_>, hypotheses: Vec<String>, references: Vec<Vec<String>>) -> PyResult<Vec<f64>> {
        py.detach(|| {
            let owned = |text: &String| python_split(text).map(str::to_owned).collect::<Vec<String>>();
            let hyps: Vec<Vec<String>> = hypotheses.iter().map(owned).collect();
            let refs: Vec<Vec<Vec<String>>> = references.iter().map(|rs| rs.iter().map(owned).collect()).collect();
            Ok(self.scorer.corpus(&hyps, &refs).map_err(caption_error)?.segments)
        })
    }
}
