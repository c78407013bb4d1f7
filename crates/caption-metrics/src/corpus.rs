//! [`Corpus`]: hypotheses and their references, interned once and scored by every metric.

use std::hash::Hash;
use std::ops::Range;

use foldhash::HashMap as FastMap;

use crate::MetricsError;

/// A scoring corpus: one hypothesis and one or more references per segment (an image, for
/// captioning), with tokens interned to dense ids.
///
/// Build it once and compute any number of metrics on it. Tokens can be anything hashable: `&str`,
/// `String`, token ids. For parity with the Python libraries, which split text on whitespace, tokens
/// should be non-empty and contain no whitespace.
///
/// ```
/// use caption_metrics::Corpus;
///
/// let hyps = [vec!["a", "dog", "runs"]];
/// let refs = [vec![vec!["a", "dog", "is", "running"], vec!["the", "dog", "runs"]]];
/// let corpus = Corpus::new(&hyps, &refs)?;
/// assert_eq!(corpus.len(), 1);
/// assert_eq!(corpus.reference_count(0), 2);
/// # Ok::<(), caption_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Every sentence's token ids, back to back.
    tokens: Vec<u32>,
    /// Span of each sentence in `tokens`: per segment the hypothesis, then its references.
    sentences: Vec<Range<u32>>,
    /// Span of each segment in `sentences`.
    segments: Vec<Range<u32>>,
    /// Number of distinct tokens.
    vocabulary_size: u32,
}

impl Corpus {
    /// Interns `hypotheses[i]` and `references[i]` (its references) for every segment `i`.
    ///
    /// # Errors
    /// [`MetricsError::EmptyCorpus`], [`MetricsError::LengthMismatch`], or
    /// [`MetricsError::NoReferences`] when a hypothesis has no reference.
    pub fn new<T, H, R, S>(hypotheses: &[H], references: &[R]) -> Result<Self, MetricsError>
    where
        T: Hash + Eq,
        H: AsRef<[T]>,
        R: AsRef<[S]>,
        S: AsRef<[T]>,
    {
        check_segments(hypotheses.len(), references.len())?;
        let mut builder = Builder::default();
        for (index, (hypothesis, refs)) in hypotheses.iter().zip(references).enumerate() {
            let refs = refs.as_ref();
            if refs.is_empty() {
                return Err(MetricsError::NoReferences { index });
            }
            let first = builder.corpus.sentences.len() as u32;
            builder.push(hypothesis.as_ref());
            for reference in refs {
                builder.push(reference.as_ref());
            }
            let end = builder.corpus.sentences.len() as u32;
            builder.corpus.segments.push(first..end);
        }
        builder.corpus.vocabulary_size = builder.ids.len() as u32;
        Ok(builder.corpus)
    }

    /// Splits each text on whitespace (as Python's `str.split()` does) and builds the corpus.
    ///
    /// # Errors
    /// As [`Corpus::new`].
    pub fn from_whitespace_text<H, R, S>(hypotheses: &[H], references: &[R]) -> Result<Self, MetricsError>
    where
        H: AsRef<str>,
        R: AsRef<[S]>,
        S: AsRef<str>,
    {
        let hyps: Vec<Vec<&str>> = hypotheses.iter().map(|h| crate::python_split(h.as_ref()).collect()).collect();
        let refs: Vec<Vec<Vec<&str>>> = references
            .iter()
            .map(|rs| rs.as_ref().iter().map(|r| crate::python_split(r.as_ref()).collect()).collect())
            .collect();
        Self::new(&hyps, &refs)
    }

    /// Number of segments (hypotheses).
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Always false: a corpus holds at least one segment.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Number of distinct tokens in the corpus.
    pub fn vocabulary_size(&self) -> u32 {
        self.vocabulary_size
    }

    /// Number of references of segment `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn reference_count(&self, index: usize) -> usize {
        self.segments[index].len() - 1
    }

    /// The hypothesis of segment `index`, as token ids.
    pub(crate) fn hypothesis(&self, index: usize) -> &[u32] {
        self.sentence(self.segments[index].start)
    }

    /// The references of segment `index`, as token ids.
    pub(crate) fn references(&self, index: usize) -> impl ExactSizeIterator<Item = &[u32]> + Clone {
        let span = &self.segments[index];
        (span.start + 1..span.end).map(move |s| self.sentence(s))
    }

    fn sentence(&self, sentence: u32) -> &[u32] {
        let span = &self.sentences[sentence as usize];
        &self.tokens[span.start as usize..span.end as usize]
    }
}

/// A corpus of `hypotheses` segments with `references` reference sets: as many of each, at least
/// one.
///
/// # Errors
/// [`MetricsError::LengthMismatch`] or [`MetricsError::EmptyCorpus`].
pub(crate) fn check_segments(hypotheses: usize, references: usize) -> Result<(), MetricsError> {
    if hypotheses != references {
        return Err(MetricsError::LengthMismatch { hypotheses, references });
    }
    if hypotheses == 0 {
        return Err(MetricsError::EmptyCorpus);
    }
    Ok(())
}

/// Interns tokens while a [`Corpus`] is built.
struct Builder<'t, T> {
    ids: FastMap<&'t T, u32>,
    corpus: Corpus,
}

impl<T> Default for Builder<'_, T> {
    fn default() -> Self {
        Self {
            ids: FastMap::default(),
            corpus: Corpus { tokens: Vec::new(), sentences: Vec::new(), segments: Vec::new(), vocabulary_size: 0 },
        }
    }
}

impl<'t, T: Hash + Eq> Builder<'t, T> {
    fn push(&mut self, sentence: &'t [T]) {
        let start = self.corpus.tokens.len() as u32;
        for token in sentence {
            let next = self.ids.len() as u32;
            let id = *self.ids.entry(token).or_insert(next);
            self.corpus.tokens.push(id);
        }
        let end = self.corpus.tokens.len() as u32;
        self.corpus.sentences.push(start..end);
    }
}
