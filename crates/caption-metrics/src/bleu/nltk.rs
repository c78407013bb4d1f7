//! nltk 3.10's `corpus_bleu` and `SmoothingFunction`, step for step.
//!
//! Quirks kept on purpose, because they change the numbers:
//! - a hypothesis shorter than n still adds 1 to the order-n denominator (`max(1, count)`);
//! - precisions are exact `Fraction`s until a smoothing method turns them into floats;
//! - `method0` replaces a zero precision by the smallest normal float, so the score is tiny, not 0;
//! - methods 4 to 7 read "the" hypothesis and references: after the corpus loop that is the *last*
//!   segment (Python's loop variables leak), and method 5 always looks at its order-5 precision;
//! - the log-precisions are summed with `math.fsum`.

use std::fmt;
use std::str::FromStr;

use crate::MetricsError;
use crate::corpus::Corpus;
use crate::ngram::{CorpusStats, clipped_matches, ngram_count};
use crate::python_numbers::{PyNum, fsum};

use super::Totals;

/// One of nltk's `SmoothingFunction` methods with the parameters of `SmoothingFunction(epsilon,
/// alpha, k)` (defaults 0.1, 5, 5, from Chen and Cherry 2014).
///
/// Parsed from `method0`..`method7` (or `none` for `method0`). Methods 5 to 7 interpolate
/// precisions and can give scores above 1, exactly as nltk does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NltkSmoothing {
    /// The method number, 0 to 7.
    pub method: u8,
    /// `epsilon` of method 1.
    pub epsilon: f64,
    /// `alpha` of method 6.
    pub alpha: f64,
    /// `k` of method 4.
    pub k: f64,
}

impl NltkSmoothing {
    /// `SmoothingFunction().method{method}` with the default parameters.
    ///
    /// # Errors
    /// [`MetricsError::InvalidConfig`] when `method > 7`.
    pub fn method(method: u8) -> Result<Self, MetricsError> {
        if method > 7 {
            return Err(MetricsError::InvalidConfig(format!("nltk has smoothing methods 0 to 7, not {method}")));
        }
        Ok(Self { method, ..Self::default() })
    }
}

impl Default for NltkSmoothing {
    fn default() -> Self {
        Self { method: 0, epsilon: 0.1, alpha: 5.0, k: 5.0 }
    }
}

impl fmt::Display for NltkSmoothing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "method{}", self.method)
    }
}

impl FromStr for NltkSmoothing {
    type Err = MetricsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(Self::default());
        }
        s.strip_prefix("method")
            .and_then(|m| m.parse::<u8>().ok())
            .ok_or_else(|| {
                MetricsError::InvalidConfig(format!("unknown nltk smoothing {s:?}: expected method0 .. method7"))
            })
            .and_then(Self::method)
    }
}

/// The corpus sums and the last segment, which is all nltk's `corpus_bleu` looks at.
pub(super) struct NltkCorpus<'a> {
    corpus: &'a Corpus,
    totals: &'a Totals,
    /// The last segment's hypothesis length.
    last_hyp_len: usize,
    last: usize,
}

impl<'a> NltkCorpus<'a> {
    pub fn new(corpus: &'a Corpus, stats: &CorpusStats, totals: &'a Totals, last: usize) -> Self {
        Self { corpus, totals, last_hyp_len: stats.hyp_len[last] as usize, last }
    }

    /// `Fraction(p_numerators[i], p_denominators[i])` as floats.
    pub fn raw_precisions(&self) -> Vec<f64> {
        self.totals
            .matches
            .iter()
            .zip(&self.totals.nltk_denominators)
            .map(|(&m, &d)| PyNum::fraction(m, d).to_f64())
            .collect()
    }

    /// `brevity_penalty(ref_lengths, hyp_lengths)`.
    pub fn brevity_penalty(&self) -> f64 {
        let (r, c) = (self.totals.ref_len, self.totals.hyp_len);
        if c > r {
            1.0
        } else if c == 0 {
            0.0
        } else {
            (1.0 - PyNum::int(r).div(&PyNum::int(c)).to_f64()).exp()
        }
    }

    /// `corpus_bleu(..., weights, smoothing_function, auto_reweigh)` for a list of weight vectors.
    pub fn bleu(
        &self,
        weights: &[Vec<f64>],
        smoothing: &NltkSmoothing,
        auto_reweigh: bool,
    ) -> Result<Vec<f64>, MetricsError> {
        let orders = weights.iter().map(Vec::len).max().unwrap_or(0);
        if self.totals.matches[0] == 0 {
            return Ok(vec![0.0; weights.len()]);
        }
        let p_n: Vec<PyNum> =
            (0..orders).map(|i| PyNum::fraction(self.totals.matches[i], self.totals.nltk_denominators[i])).collect();
        let p_n = self.smooth(p_n, smoothing)?;
        let bp = self.brevity_penalty();
        let hyp_lengths = self.totals.hyp_len as usize;
        Ok(weights
            .iter()
            .map(|weight| {
                let reweighed;
                let weight = if auto_reweigh && hyp_lengths < 4 && weight.as_slice() == [0.25; 4] {
                    reweighed = vec![1.0 / hyp_lengths as f64; hyp_lengths];
                    &reweighed
                } else {
                    weight
                };
                let log_sum =
                    fsum(weight.iter().zip(&p_n).filter(|(_, p)| p.is_positive()).map(|(w, p)| w * p.to_f64().ln()));
                bp * log_sum.exp()
            })
            .collect())
    }

    fn smooth(&self, mut p_n: Vec<PyNum>, smoothing: &NltkSmoothing) -> Result<Vec<PyNum>, MetricsError> {
        match smoothing.method {
            0 => {
                for p in &mut p_n {
                    if p.is_zero() {
                        *p = PyNum::Float(f64::MIN_POSITIVE);
                    }
                }
            }
            1 => {
                let epsilon = PyNum::param(smoothing.epsilon);
                for p in &mut p_n {
                    if p.is_zero() {
                        *p = PyNum::int(0u32).add(&epsilon).div(&denominator(p));
                    }
                }
            }
            2 => {
                for p in p_n.iter_mut().skip(1) {
                    if let PyNum::Fraction(n, d) = p {
                        *p = PyNum::fraction(&*n + 1u32, &*d + 1u32);
                    }
                }
            }
            3 => {
                let mut incvnt = 1u32;
                for p in &mut p_n {
                    if p.is_zero() {
                        *p = PyNum::int(1u32).div(&PyNum::int(1u64 << incvnt).mul(&denominator(p)));
                        incvnt += 1;
                    }
                }
            }
            4 => self.method4(&mut p_n, smoothing),
            5 => self.method5(&mut p_n),
            6 => self.method6(&mut p_n, smoothing)?,
            7 => {
                self.method4(&mut p_n, smoothing);
                self.method5(&mut p_n);
            }
            _ => unreachable!("validated by NltkSmoothing::method"),
        }
        Ok(p_n)
    }

    /// `hyp_len if hyp_len else len(hypothesis)`: the corpus length, or the last hypothesis's.
    fn smoothing_hyp_len(&self) -> usize {
        if self.totals.hyp_len != 0 { self.totals.hyp_len as usize } else { self.last_hyp_len }
    }

    fn method4(&self, p_n: &mut [PyNum], smoothing: &NltkSmoothing) {
        let hyp_len = self.smoothing_hyp_len();
        let mut incvnt = 1u32;
        for p in p_n.iter_mut() {
            if p.is_zero() && hyp_len > 1 {
                let scale = PyNum::int(1u64 << incvnt).mul(&PyNum::param(smoothing.k));
                let numerator = PyNum::int(1u32).div(&scale.div(&PyNum::Float((hyp_len as f64).ln())));
                *p = numerator.div(&denominator(p));
                incvnt += 1;
            }
        }
    }

    fn method5(&self, p_n: &mut [PyNum]) {
        let mut plus_one: Vec<PyNum> = p_n.to_vec();
        plus_one.push(self.last_modified_precision(5));
        let mut previous = p_n[0].add(&PyNum::int(1u32));
        for i in 0..p_n.len() {
            p_n[i] = previous.add(&plus_one[i]).add(&plus_one[i + 1]).div(&PyNum::int(3u32));
            previous = p_n[i].clone();
        }
    }

    fn method6(&self, p_n: &mut [PyNum], smoothing: &NltkSmoothing) -> Result<(), MetricsError> {
        let undefined = |reason: &str| MetricsError::Undefined { library: "nltk", reason: reason.to_string() };
        match p_n.get(2) {
            None => return Err(undefined("smoothing method6 needs at least three orders (IndexError)")),
            Some(p) if p.is_zero() => {
                return Err(undefined(
                    "smoothing method6 requires a non-zero trigram precision (AssertionError: \
                     \"This smoothing method requires non-zero precision for bigrams.\")",
                ));
            }
            Some(_) => {}
        }
        let alpha = PyNum::param(smoothing.alpha);
        for i in 2..p_n.len() {
            let pi0 = if p_n[i - 2].is_zero() { PyNum::int(0u32) } else { p_n[i - 1].squared().div(&p_n[i - 2]) };
            let m = PyNum::Int(p_n[i].numerator().expect("method6 sees unsmoothed fractions").clone());
            let l = PyNum::int(ngram_count(self.last_hyp_len, i + 1) as u64);
            p_n[i] = m.add(&alpha.mul(&pi0)).div(&l.add(&alpha));
        }
        Ok(())
    }

    /// `modified_precision(references, hypothesis, n)` of the last segment.
    fn last_modified_precision(&self, n: usize) -> PyNum {
        let hyp = self.corpus.hypothesis(self.last);
        let vocabulary_size = self.corpus.vocabulary_size() as usize;
        let matches = clipped_matches(hyp, self.corpus.references(self.last), n, vocabulary_size);
        PyNum::fraction(matches, ngram_count(hyp.len(), n).max(1) as u64)
    }
}

/// `p_i.denominator` of an unsmoothed precision, as a Python int.
fn denominator(p: &PyNum) -> PyNum {
    PyNum::Int(p.denominator().expect("an unsmoothed precision is a fraction").clone())
}
