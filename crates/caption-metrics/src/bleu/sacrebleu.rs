//! sacrebleu 2.6's `BLEU.compute_bleu` with `tokenize="none"`, and its signature.

use std::fmt;
use std::str::FromStr;

use crate::MetricsError;
use crate::corpus::Corpus;

use super::{SacrebleuDetails, Totals};

/// sacrebleu's version whose arithmetic and signature are reproduced.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// sacrebleu's `smooth_method` with its `smooth_value`.
///
/// Parsed from `none`, `floor`, `add-k`, `exp`, with an optional value: `floor:0.2`, `add-k:0.5`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SacrebleuSmoothing {
    /// No smoothing: a zero precision gives a zero score.
    None,
    /// A zero match count becomes this value (default 0.1).
    Floor(f64),
    /// Adds k to matches and totals of orders 2 and up (default 1).
    AddK(f64),
    /// mteval-v13a's exponential decay: the i-th zero precision becomes 1 / (2^i · total). The default.
    #[default]
    Exp,
}

impl fmt::Display for SacrebleuSmoothing {
    /// The signature's spelling: `none`, `floor[0.10]`, `add-k[1.00]`, `exp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SacrebleuSmoothing::None => f.write_str("none"),
            SacrebleuSmoothing::Floor(v) => write!(f, "floor[{}]", python_fixed(*v, 2)),
            SacrebleuSmoothing::AddK(v) => write!(f, "add-k[{}]", python_fixed(*v, 2)),
            SacrebleuSmoothing::Exp => f.write_str("exp"),
        }
    }
}

impl FromStr for SacrebleuSmoothing {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = match s.split_once(':') {
            Some((name, value)) => {
                let value: f64 = value.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                    MetricsError::InvalidConfig(format!("bad smoothing value in {s:?}: expected a number ≥ 0"))
                })?;
                (name, Some(value))
            }
            None => (s, None),
        };
        match (name, value) {
            ("none", None) => Ok(SacrebleuSmoothing::None),
            ("exp", None) => Ok(SacrebleuSmoothing::Exp),
            ("floor", v) => Ok(SacrebleuSmoothing::Floor(v.unwrap_or(0.1))),
            ("add-k", v) => Ok(SacrebleuSmoothing::AddK(v.unwrap_or(1.0))),
            _ => Err(MetricsError::InvalidConfig(format!(
                "unknown sacrebleu smoothing {s:?}: expected none, floor[:VALUE], add-k[:VALUE] or exp"
            ))),
        }
    }
}

/// sacrebleu's result for every order up to the largest.
pub(super) struct Scored {
    /// BLEU-1..N on the 0–100 scale.
    pub bleu_by_order: Vec<f64>,
    pub brevity_penalty: f64,
    pub public: SacrebleuDetails,
}

/// Scores summed statistics as `BLEU(max_ngram_order=n)` would, for every n up to `max_order`.
pub(super) fn score(
    totals: &Totals,
    corpus: &Corpus,
    smoothing: &SacrebleuSmoothing,
    effective_order: bool,
    max_order: usize,
) -> Scored {
    let bleu_by_order: Vec<f64> =
        (1..=max_order).map(|n| compute_bleu(totals, n, smoothing, effective_order).score).collect();
    let full = compute_bleu(totals, max_order, smoothing, effective_order);
    let reference_counts: Vec<usize> = (0..corpus.len()).map(|s| corpus.reference_count(s)).collect();
    let signature = signature(&reference_counts, smoothing, effective_order);
    let formatted = format_score(&full, totals);
    Scored {
        bleu_by_order,
        brevity_penalty: full.brevity_penalty,
        public: SacrebleuDetails { score: full.score, precisions: full.precisions, signature, formatted },
    }
}

/// One `BLEU.compute_bleu` result.
struct Computed {
    score: f64,
    precisions: Vec<f64>,
    brevity_penalty: f64,
}

/// `BLEU.compute_bleu(correct, total, sys_len, ref_len, smooth_method, smooth_value,
/// effective_order, max_ngram_order)`.
fn compute_bleu(totals: &Totals, max_order: usize, smoothing: &SacrebleuSmoothing, effective_order: bool) -> Computed {
    let (sys_len, ref_len) = (totals.hyp_len as f64, totals.ref_len as f64);
    let mut brevity_penalty = 1.0;
    if totals.hyp_len < totals.ref_len {
        brevity_penalty = if totals.hyp_len > 0 { (1.0 - ref_len / sys_len).exp() } else { 0.0 };
    }
    let mut precisions = vec![0.0; max_order];
    if totals.matches[..max_order].iter().all(|&m| m == 0) {
        return Computed { score: 0.0, precisions, brevity_penalty };
    }
    let mut smooth_mteval = 1.0;
    let mut eff_order = max_order;
    for n in 1..=max_order {
        let (mut correct, mut total) = (totals.matches[n - 1] as f64, totals.totals[n - 1] as f64);
        if let SacrebleuSmoothing::AddK(k) = smoothing
            && n > 1
        {
            correct += k;
            total += k;
        }
        if total == 0.0 {
            break;
        }
        if effective_order {
            eff_order = n;
        }
        if correct == 0.0 {
            match smoothing {
                SacrebleuSmoothing::Exp => {
                    smooth_mteval *= 2.0;
                    precisions[n - 1] = 100.0 / (smooth_mteval * total);
                }
                SacrebleuSmoothing::Floor(value) => precisions[n - 1] = 100.0 * value / total,
                SacrebleuSmoothing::None | SacrebleuSmoothing::AddK(_) => {}
            }
        } else {
            precisions[n - 1] = 100.0 * correct / total;
        }
    }
    let log_sum = precisions[..eff_order].iter().fold(0.0, |sum, &p| sum + my_log(p));
    Computed { score: brevity_penalty * (log_sum / eff_order as f64).exp(), precisions, brevity_penalty }
}

/// sacrebleu's `my_log`: the log, floored to -9999999999 at zero.
fn my_log(x: f64) -> f64 {
    if x == 0.0 { -9_999_999_999.0 } else { x.ln() }
}

/// `BLEUSignature.format()`.
fn signature(reference_counts: &[usize], smoothing: &SacrebleuSmoothing, effective_order: bool) -> String {
    let nrefs = match reference_counts.split_first() {
        Some((first, rest)) if rest.iter().all(|c| c == first) => first.to_string(),
        _ => "var".to_string(),
    };
    let eff = if effective_order { "yes" } else { "no" };
    format!("nrefs:{nrefs}|case:mixed|eff:{eff}|tok:none|smooth:{smoothing}|version:{SACREBLEU_VERSION}")
}

/// `str(BLEUScore)`: `BLEU = 28.12 61.1/35.0/21.2/13.0 (BP = 1.000 ratio = 1.012 hyp_len = … ref_len = …)`.
fn format_score(computed: &Computed, totals: &Totals) -> String {
    let precisions: Vec<String> = computed.precisions.iter().map(|&p| python_fixed(p, 1)).collect();
    let ratio = if totals.ref_len > 0 { totals.hyp_len as f64 / totals.ref_len as f64 } else { 0.0 };
    format!(
        "BLEU = {} {} (BP = {} ratio = {} hyp_len = {} ref_len = {})",
        python_fixed(computed.score, 2),
        precisions.join("/"),
        python_fixed(computed.brevity_penalty, 3),
        python_fixed(ratio, 3),
        totals.hyp_len,
        totals.ref_len
    )
}

/// Python's `f"{x:.{digits}f}"`: the exact binary value rounded half to even.
fn python_fixed(x: f64, digits: usize) -> String {
    // Rust's formatter rounds the exact decimal expansion too; both print the same digits.
    format!("{x:.digits$}")
}
