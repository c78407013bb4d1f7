//! CIDEr-D with its document frequencies fixed from a training corpus: what self-critical
//! training rewards each sampled caption with (self-critical.pytorch's `CiderD(df=<train idxs>)`,
//! Rennie et al. 2017).
//!
//! [`CiderD::score`] counts document frequencies over the references of the corpus it scores and
//! takes `log(number of segments)` as the reference length, so a caption's score depends on
//! which other captions are scored with it. Here both are counted once, over every training
//! image's references, and every caption is then scored alone against its own references with
//! pycocoevalcap's arithmetic ([`CiderD`]'s per-segment score). Tokens are the words alone: no
//! end token is added to captions or references (self-critical.pytorch's `array_to_str` keeps its
//! end token as a word).

use std::hash::Hash;

use foldhash::HashMap;

use crate::cider::{Counts, Vectorizer, document_frequencies, precook};
use crate::corpus::check_segments;
use crate::ngram::PackedNgram;
use crate::python_numbers::numpy_mean;
use crate::{CiderD, CiderScore, MetricsError};

/// CIDEr-D whose document frequencies and reference length come from a training corpus.
///
/// ```
/// use caption_metrics::{CiderD, TrainingCiderD};
///
/// let training = [
///     vec![vec!["a", "dog", "runs"], vec!["a", "dog", "is", "running"]],
///     vec![vec!["a", "cat", "sleeps"], vec!["the", "cat", "is", "asleep"]],
///     vec![vec!["two", "men", "talk"], vec!["men", "talking"]],
/// ];
/// let cider = TrainingCiderD::new(CiderD::default(), &training)?;
/// let close = cider.score(&["a", "dog", "is", "running"], &training[0])?;
/// let far = cider.score(&["a", "cat", "sleeps"], &training[0])?;
/// assert!(close > far);
/// # Ok::<(), caption_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TrainingCiderD<T> {
    settings: CiderD,
    /// Dense ids of the training references' tokens.
    ids: HashMap<T, u32>,
    /// Per n-gram, the log of the number of training images whose references hold it.
    log_document_frequency: HashMap<PackedNgram, f64>,
    /// `log(number of training images)`.
    ref_len: f64,
    images: usize,
}

impl<T: Hash + Eq + Clone> TrainingCiderD<T> {
    /// Counts document frequencies over `references` (per training image, its reference captions
    /// as tokens).
    ///
    /// # Errors
    /// [`MetricsError::InvalidConfig`] for settings [`CiderD`] refuses, [`MetricsError::EmptyCorpus`]
    /// without images, [`MetricsError::Undefined`] when no reference has a single token.
    pub fn new<R, S>(settings: CiderD, references: &[R]) -> Result<Self, MetricsError>
    where
        R: AsRef<[S]>,
        S: AsRef<[T]>,
    {
        settings.check()?;
        if references.is_empty() {
            return Err(MetricsError::EmptyCorpus);
        }
        let mut ids: HashMap<T, u32> = HashMap::default();
        let mut index = HashMap::default();
        let mut tokens = Vec::new();
        let counted: Vec<Vec<Counts>> = references
            .iter()
            .map(|refs| {
                refs.as_ref()
                    .iter()
                    .map(|reference| {
                        tokens.clear();
                        for token in reference.as_ref() {
                            let next = ids.len() as u32;
                            tokens.push(*ids.entry(token.clone()).or_insert(next));
                        }
                        precook(&tokens, settings.max_order, &mut index)
                    })
                    .collect()
            })
            .collect();
        let log_document_frequency = document_frequencies(counted.iter().map(Vec::as_slice));
        if log_document_frequency.is_empty() {
            return Err(MetricsError::Undefined {
                library: "pycocoevalcap",
                reason: "CIDEr-D needs at least one reference n-gram".into(),
            });
        }
        Ok(Self {
            settings,
            ids,
            log_document_frequency,
            ref_len: (references.len() as f64).ln(),
            images: references.len(),
        })
    }

    /// The number of training images the document frequencies were counted over.
    pub fn images(&self) -> usize {
        self.images
    }

    /// The CIDEr-D of `hypothesis` against `references` (its image's reference captions).
    ///
    /// # Errors
    /// [`MetricsError::NoReferences`] when `references` is empty.
    pub fn score<S: AsRef<[T]>>(&self, hypothesis: &[T], references: &[S]) -> Result<f64, MetricsError> {
        if references.is_empty() {
            return Err(MetricsError::NoReferences { index: 0 });
        }
        // Tokens the training references never hold get ids of their own, the same for the
        // same token within this call (their n-grams have no document frequency).
        let mut unseen: HashMap<T, u32> = HashMap::default();
        let mut intern = |sentence: &[T]| -> Vec<u32> {
            sentence
                .iter()
                .map(|token| match self.ids.get(token) {
                    Some(&id) => id,
                    None => {
                        let next = (self.ids.len() + unseen.len()) as u32;
                        *unseen.entry(token.clone()).or_insert(next)
                    }
                })
                .collect()
        };
        let hypothesis = intern(hypothesis);
        let references: Vec<Vec<u32>> = references.iter().map(|r| intern(r.as_ref())).collect();
        let mut index = HashMap::default();
        let max_order = self.settings.max_order;
        let hyp = precook(&hypothesis, max_order, &mut index);
        let refs: Vec<Counts> = references.iter().map(|r| precook(r, max_order, &mut index)).collect();
        let vectorizer =
            Vectorizer { log_document_frequency: &self.log_document_frequency, ref_len: self.ref_len, max_order };
        Ok(self.settings.segment(&vectorizer, &hyp, &refs))
    }

    /// Scores every hypothesis against its references, and their mean.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`], [`MetricsError::EmptyCorpus`], or
    /// [`MetricsError::NoReferences`] naming the hypothesis without references.
    pub fn corpus<H, R, S>(&self, hypotheses: &[H], references: &[R]) -> Result<CiderScore, MetricsError>
    where
        H: AsRef<[T]>,
        R: AsRef<[S]>,
        S: AsRef<[T]>,
    {
        check_segments(hypotheses.len(), references.len())?;
        let segments = hypotheses
            .iter()
            .zip(references)
            .enumerate()
            .map(|(index, (hyp, refs))| {
                self.score(hyp.as_ref(), refs.as_ref()).map_err(|error| match error {
                    MetricsError::NoReferences { .. } => MetricsError::NoReferences { index },
                    other => other,
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        Ok(CiderScore { score: numpy_mean(&segments), segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Corpus;

    /// Scored against the corpus it was counted on, with every image at once, the training-df
    /// score is the ordinary corpus CIDEr-D: the same frequencies and reference length.
    #[test]
    fn on_its_own_corpus_it_is_the_corpus_score() {
        let references = vec![
            vec![vec!["a", "dog", "runs", "on", "grass"], vec!["a", "brown", "dog", "runs"]],
            vec![vec!["a", "man", "rides", "a", "bike"], vec!["man", "on", "a", "bike"]],
            vec![vec!["two", "dogs", "play", "in", "water"], vec!["dogs", "in", "the", "water"]],
        ];
        let hypotheses =
            vec![vec!["a", "dog", "runs"], vec!["a", "man", "on", "a", "bike"], vec!["a", "dog", "in", "water"]];
        let corpus = CiderD::default().score(&Corpus::new(&hypotheses, &references).unwrap()).unwrap();
        let fixed =
            TrainingCiderD::new(CiderD::default(), &references).unwrap().corpus(&hypotheses, &references).unwrap();
        assert_eq!(fixed, corpus);
        assert!(fixed.score > 0.0);
    }

    #[test]
    fn unseen_words_count_but_never_match() {
        let references = vec![vec![vec!["a", "dog"]], vec![vec!["a", "cat"]]];
        let cider = TrainingCiderD::new(CiderD::default(), &references).unwrap();
        let refs = [vec!["a", "dog"]];
        let exact = cider.score(&["a", "dog"], &refs).unwrap();
        // An unseen word lowers the score through the hypothesis's norm, and twice the same
        // unseen word is one term with frequency two, not two terms.
        let one = cider.score(&["a", "dog", "zebra"], &refs).unwrap();
        let twice = cider.score(&["a", "dog", "zebra", "zebra"], &refs).unwrap();
        let two = cider.score(&["a", "dog", "zebra", "okapi"], &refs).unwrap();
        assert!(exact > one && one > 0.0, "{exact} {one}");
        assert_ne!(twice, two);
        assert!(matches!(cider.score::<Vec<&str>>(&["a"], &[]), Err(MetricsError::NoReferences { .. })));
    }
}
