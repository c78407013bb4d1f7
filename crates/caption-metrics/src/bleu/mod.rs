//! BLEU-1..N under the arithmetic of nltk, pycocoevalcap or sacrebleu.
//!
//! The three libraries count n-grams the same way (clipped by the largest count in one reference;
//! the closest reference length, the shorter on a tie) but differ in everything after that:
//! precision denominators, smoothing, epsilons, the brevity penalty's guard rails and the scale. A
//! [`Bleu`] names which library it reproduces and every [`BleuScore`] says so again.

mod coco;
mod nltk;
mod sacrebleu;
mod tokenizer_13a;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use nltk::NltkSmoothing;
pub use sacrebleu::SacrebleuSmoothing;
pub use tokenizer_13a::tokenize_13a;

use crate::ngram::CorpusStats;
use crate::{Corpus, MetricsError};

/// The library whose BLEU arithmetic is reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// nltk 3.10 `corpus_bleu` / `sentence_bleu`.
    Nltk,
    /// pycocoevalcap 1.2 `Bleu(n)`: what captioning papers report.
    Coco,
    /// sacrebleu 2.6 `BLEU(tokenize="none")`.
    Sacrebleu,
}

impl Compat {
    /// Every profile, in the order they are documented.
    pub const ALL: [Compat; 3] = [Compat::Coco, Compat::Nltk, Compat::Sacrebleu];

    /// The profile's name as used on command lines and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Compat::Nltk => "nltk",
            Compat::Coco => "coco",
            Compat::Sacrebleu => "sacrebleu",
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compat {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compat::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            MetricsError::InvalidConfig(format!("unknown BLEU profile {s:?}: expected coco, nltk or sacrebleu"))
        })
    }
}

/// A profile with its own options.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// nltk's `corpus_bleu(list_of_references, hypotheses, weights, smoothing_function, auto_reweigh)`.
    Nltk {
        /// The `SmoothingFunction` method and its parameters.
        smoothing: NltkSmoothing,
        /// Weight vectors, one score each; `None` means BLEU-1..N with uniform weights, computed in
        /// one call as nltk does when given the list `[(1,), (1/2, 1/2), …]`.
        weights: Option<Vec<Vec<f64>>>,
        /// nltk's `auto_reweigh`.
        auto_reweigh: bool,
    },
    /// pycocoevalcap's `BleuScorer.compute_score(option="closest")`: tiny = 1e-15 and
    /// small = 1e-9 keep every order finite.
    Coco,
    /// sacrebleu's `BLEU(tokenize="none", smooth_method=…, effective_order=…)`.
    Sacrebleu {
        /// `smooth_method` with its `smooth_value`.
        smoothing: SacrebleuSmoothing,
        /// `effective_order`: ignore orders the hypothesis is too short for.
        effective_order: bool,
    },
}

/// BLEU settings: the profile and the largest n-gram order.
///
/// ```
/// use caption_metrics::{Bleu, Corpus};
///
/// let hyps = [vec!["a", "dog", "runs", "on", "the", "grass"]];
/// let refs = [vec![vec!["a", "dog", "runs", "on", "the", "grass"]]];
/// let corpus = Corpus::new(&hyps, &refs)?;
/// let score = Bleu::coco().corpus(&corpus)?;
/// // pycocoevalcap's epsilons: a perfect match scores 0.9999999996..., not 1.
/// assert!((score.bleu[3] - 1.0).abs() < 1e-9 && score.bleu[3] < 1.0);
/// # Ok::<(), caption_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// The library reproduced and its options.
    pub profile: Profile,
    /// Largest n-gram order N: scores are BLEU-1..N (default 4).
    pub max_order: usize,
}

impl Bleu {
    /// pycocoevalcap's BLEU-1..4.
    pub fn coco() -> Self {
        Self { profile: Profile::Coco, max_order: 4 }
    }

    /// nltk's BLEU-1..4 with the given smoothing.
    pub fn nltk(smoothing: NltkSmoothing) -> Self {
        Self { profile: Profile::Nltk { smoothing, weights: None, auto_reweigh: false }, max_order: 4 }
    }

    /// sacrebleu's BLEU-1..4 with the given smoothing, effective order off (its corpus default).
    pub fn sacrebleu(smoothing: SacrebleuSmoothing) -> Self {
        Self { profile: Profile::Sacrebleu { smoothing, effective_order: false }, max_order: 4 }
    }

    /// A profile by name with its default smoothing (`method0`, none, `exp`), or with the smoothing
    /// named by `smoothing` (`method0`..`method7`, `none` for nltk; `none`, `floor`, `add-k`, `exp`
    /// for sacrebleu, optionally `floor:0.2` / `add-k:0.5`; only `none` for coco).
    ///
    /// # Errors
    /// [`MetricsError::InvalidConfig`] for an unknown name or a smoothing the profile lacks.
    pub fn from_names(compat: Compat, smoothing: Option<&str>) -> Result<Self, MetricsError> {
        Ok(match compat {
            Compat::Coco => match smoothing {
                None | Some("none") => Bleu::coco(),
                Some(other) => {
                    return Err(MetricsError::InvalidConfig(format!(
                        "the coco profile has no smoothing {other:?}: pycocoevalcap always uses its epsilons (tiny 1e-15, small 1e-9)"
                    )));
                }
            },
            Compat::Nltk => Bleu::nltk(smoothing.map(str::parse).transpose()?.unwrap_or_default()),
            Compat::Sacrebleu => Bleu::sacrebleu(smoothing.map(str::parse).transpose()?.unwrap_or_default()),
        })
    }

    /// Sets the largest n-gram order.
    pub fn with_max_order(mut self, max_order: usize) -> Self {
        self.max_order = max_order;
        self
    }

    /// The library this configuration reproduces.
    pub fn compat(&self) -> Compat {
        match self.profile {
            Profile::Nltk { .. } => Compat::Nltk,
            Profile::Coco => Compat::Coco,
            Profile::Sacrebleu { .. } => Compat::Sacrebleu,
        }
    }

    /// The smoothing's name as it appears in results (`method1`, `floor[0.10]`, `coco-epsilon`).
    pub fn smoothing_name(&self) -> String {
        match &self.profile {
            Profile::Nltk { smoothing, .. } => smoothing.to_string(),
            Profile::Coco => "coco-epsilon".to_string(),
            Profile::Sacrebleu { smoothing, .. } => smoothing.to_string(),
        }
    }

    /// Corpus-level BLEU-1..N (statistics summed over segments, then combined).
    ///
    /// # Errors
    /// [`MetricsError::InvalidConfig`] for a zero order or bad weights, [`MetricsError::Undefined`]
    /// where the reproduced library raises (nltk's method 6 on a zero trigram precision).
    pub fn corpus(&self, corpus: &Corpus) -> Result<BleuScore, MetricsError> {
        self.validate()?;
        let stats = CorpusStats::compute(corpus, self.max_order);
        let totals = Totals::sum(&stats, 0..stats.len());
        let last = corpus.len() - 1;
        self.score(corpus, &stats, &totals, last)
    }

    /// BLEU-1..N of every segment on its own, in corpus order: nltk's `sentence_bleu`, sacrebleu's
    /// `sentence_score`, or the per-image list pycocoevalcap's `compute_score` returns.
    ///
    /// # Errors
    /// As [`Bleu::corpus`].
    pub fn sentences(&self, corpus: &Corpus) -> Result<Vec<Vec<f64>>, MetricsError> {
        self.validate()?;
        let stats = CorpusStats::compute(corpus, self.max_order);
        if self.profile == Profile::Coco {
            return Ok(coco::sentence_scores(&stats));
        }
        (0..stats.len())
            .map(|segment| {
                let totals = Totals::sum(&stats, segment..segment + 1);
                Ok(self.score(corpus, &stats, &totals, segment)?.bleu)
            })
            .collect()
    }

    fn validate(&self) -> Result<(), MetricsError> {
        if self.max_order == 0 {
            return Err(MetricsError::InvalidConfig("the largest n-gram order must be at least 1".into()));
        }
        if self.profile == Profile::Coco && self.max_order > 4 {
            return Err(MetricsError::InvalidConfig(format!(
                "the coco profile stops at order 4: pycocoevalcap always counts 1..4-grams and Bleu({}) raises IndexError",
                self.max_order
            )));
        }
        if let Profile::Nltk { weights: Some(weights), .. } = &self.profile
            && (weights.is_empty() || weights.iter().any(|w| w.is_empty() || w.len() > self.max_order))
        {
            return Err(MetricsError::InvalidConfig(format!(
                "nltk weights must be non-empty vectors of at most {} entries (the largest order)",
                self.max_order
            )));
        }
        Ok(())
    }

    /// Scores summed statistics; `last` is the segment nltk's smoothing sees as "the" hypothesis.
    fn score(
        &self,
        corpus: &Corpus,
        stats: &CorpusStats,
        totals: &Totals,
        last: usize,
    ) -> Result<BleuScore, MetricsError> {
        let n = self.max_order;
        let mut score = BleuScore {
            compat: self.compat(),
            smoothing: self.smoothing_name(),
            max_order: n,
            bleu: Vec::new(),
            precisions: totals.matches.iter().zip(&totals.totals).map(|(&m, &t)| precision(m, t)).collect(),
            brevity_penalty: 0.0,
            hyp_len: totals.hyp_len,
            ref_len: totals.ref_len,
            matches: totals.matches.clone(),
            totals: totals.totals.clone(),
            sacrebleu: None,
        };
        match &self.profile {
            Profile::Coco => {
                let (bleu, bp) = coco::corpus_scores(totals);
                score.bleu = bleu;
                score.brevity_penalty = bp;
            }
            Profile::Nltk { smoothing, weights, auto_reweigh } => {
                let uniform: Vec<Vec<f64>>;
                let weights = match weights {
                    Some(w) => w,
                    None => {
                        uniform = (1..=n).map(|k| vec![1.0 / k as f64; k]).collect();
                        &uniform
                    }
                };
                let nltk = nltk::NltkCorpus::new(corpus, stats, totals, last);
                score.precisions = nltk.raw_precisions();
                score.bleu = nltk.bleu(weights, smoothing, *auto_reweigh)?;
                score.brevity_penalty = nltk.brevity_penalty();
            }
            Profile::Sacrebleu { smoothing, effective_order } => {
                let details = sacrebleu::score(totals, corpus, smoothing, *effective_order, n);
                score.bleu = details.bleu_by_order.iter().map(|s| s / 100.0).collect();
                score.brevity_penalty = details.brevity_penalty;
                score.sacrebleu = Some(details.public);
            }
        }
        Ok(score)
    }
}

/// `matches / total`, or 0 when there is no n-gram of that order.
fn precision(matches: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { matches as f64 / total as f64 }
}

/// Statistics summed over a range of segments.
#[derive(Debug, Clone)]
pub(crate) struct Totals {
    pub hyp_len: u64,
    pub ref_len: u64,
    /// Clipped matches per order.
    pub matches: Vec<u64>,
    /// Hypothesis n-grams per order.
    pub totals: Vec<u64>,
    /// nltk's precision denominators: `max(1, total)` per segment, summed.
    pub nltk_denominators: Vec<u64>,
}

impl Totals {
    fn sum(stats: &CorpusStats, segments: std::ops::Range<usize>) -> Self {
        let n = stats.max_order;
        let mut totals =
            Totals { hyp_len: 0, ref_len: 0, matches: vec![0; n], totals: vec![0; n], nltk_denominators: vec![0; n] };
        for segment in segments {
            totals.hyp_len += u64::from(stats.hyp_len[segment]);
            totals.ref_len += u64::from(stats.ref_len[segment]);
            for (order, &m) in stats.matches(segment).iter().enumerate() {
                let total = u64::from(stats.total(segment, order + 1));
                totals.matches[order] += u64::from(m);
                totals.totals[order] += total;
                totals.nltk_denominators[order] += total.max(1);
            }
        }
        totals
    }
}

/// A BLEU result, naming the library it reproduces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BleuScore {
    /// The library reproduced.
    pub compat: Compat,
    /// The smoothing applied, by name.
    pub smoothing: String,
    /// Largest n-gram order N.
    pub max_order: usize,
    /// BLEU-1..N on a 0–1 scale (for nltk with custom weights: one score per weight vector).
    pub bleu: Vec<f64>,
    /// Unsmoothed modified precision per order, 0–1: clipped matches over hypothesis n-grams (nltk
    /// counts a hypothesis shorter than n as one n-gram, as its `modified_precision` does).
    pub precisions: Vec<f64>,
    /// Brevity penalty as the library computes it.
    pub brevity_penalty: f64,
    /// Total hypothesis length in tokens.
    pub hyp_len: u64,
    /// Total closest-reference length in tokens.
    pub ref_len: u64,
    /// Clipped n-gram matches per order.
    pub matches: Vec<u64>,
    /// Hypothesis n-grams per order.
    pub totals: Vec<u64>,
    /// sacrebleu's own view of the result (0–100 scale, signature), for that profile only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sacrebleu: Option<SacrebleuDetails>,
}

/// What sacrebleu itself prints for a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SacrebleuDetails {
    /// BLEU-N on sacrebleu's 0–100 scale, exactly as `BLEUScore.score`.
    pub score: f64,
    /// `BLEUScore.precisions`: smoothed precisions on the 0–100 scale.
    pub precisions: Vec<f64>,
    /// The signature, e.g. `nrefs:5|case:mixed|eff:no|tok:none|smooth:exp|version:2.6.0`.
    pub signature: String,
    /// `str(BLEUScore)`, e.g. `BLEU = 28.12 61.1/35.0/21.2/13.0 (BP = 1.000 ratio = 1.012 …)`.
    pub formatted: String,
}
