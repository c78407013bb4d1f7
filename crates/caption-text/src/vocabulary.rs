//! [`Vocabulary`]: the caption vocabulary of the PyTorch original, and a frequency-ordered one.

use std::fmt;
use std::str::FromStr;

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use crate::TextError;

/// How word ids are assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// The original's `build_vocabulary`: scanning the captions in order, a word gets the next id
    /// when its running count first reaches the threshold. Reproduces the original's ids exactly.
    /// Written `original`; `seed`, its name before, still reads.
    #[serde(alias = "seed")]
    Original,
    /// By count, most frequent first; ties by word (code point order).
    Frequency,
}

impl fmt::Display for Ordering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ordering::Original => "original",
            Ordering::Frequency => "frequency",
        })
    }
}

impl FromStr for Ordering {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "original" | "seed" => Ok(Ordering::Original),
            "frequency" => Ok(Ordering::Frequency),
            other => Err(TextError::Vocabulary(format!("unknown ordering {other:?}: expected original or frequency"))),
        }
    }
}

/// Words to ids: `<PAD>`=0, `<SOS>`=1, `<EOS>`=2, `<UNK>`=3, then every word seen at least
/// `threshold` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, u32>,
    /// How often each word (id ≥ 4) occurred in the captions it was built from.
    counts: Vec<u64>,
    threshold: usize,
    ordering: Ordering,
    /// The tokenizer rules the captions were tokenized with, e.g. `spacy-3.8.18-en`.
    tokenizer_rules: Option<String>,
}

impl Vocabulary {
    /// Padding id.
    pub const PAD: u32 = 0;
    /// Start-of-sentence id.
    pub const SOS: u32 = 1;
    /// End-of-sentence id.
    pub const EOS: u32 = 2;
    /// Unknown-word id.
    pub const UNK: u32 = 3;
    /// The special tokens, by id.
    pub const SPECIALS: [&'static str; 4] = ["<PAD>", "<SOS>", "<EOS>", "<UNK>"];

    /// Builds a vocabulary from tokenized captions, in order.
    ///
    /// A word spelled like a special token is never added (it would shadow it).
    ///
    /// # Errors
    /// [`TextError::Vocabulary`] when `threshold` is 0 (no word would ever reach it in the
    /// original's counting, which starts at 1).
    pub fn build<C, W>(captions: &[C], threshold: usize, ordering: Ordering) -> Result<Self, TextError>
    where
        C: AsRef<[W]>,
        W: AsRef<str>,
    {
        if threshold == 0 {
            return Err(TextError::Vocabulary("the frequency threshold must be at least 1".into()));
        }
        let mut counts: HashMap<&str, u64> = HashMap::default();
        let mut reached: Vec<&str> = Vec::new();
        for caption in captions {
            for word in caption.as_ref() {
                let word = word.as_ref();
                let count = counts.entry(word).or_insert(0);
                *count += 1;
                if *count == threshold as u64 && !Self::SPECIALS.contains(&word) {
                    reached.push(word);
                }
            }
        }
        if ordering == Ordering::Frequency {
            reached.sort_by(|a, b| counts[b].cmp(&counts[a]).then_with(|| a.cmp(b)));
        }
        let counts: Vec<u64> = reached.iter().map(|w| counts[w]).collect();
        let mut vocabulary = Self::from_words(reached.into_iter().map(str::to_string).collect(), threshold, ordering)?;
        vocabulary.counts = counts;
        Ok(vocabulary)
    }

    /// A vocabulary whose word `i` (from id 4) is `words[i]`.
    ///
    /// # Errors
    /// [`TextError::Vocabulary`] for a repeated word or one spelled like a special token.
    pub fn from_words(words: Vec<String>, threshold: usize, ordering: Ordering) -> Result<Self, TextError> {
        let mut all: Vec<String> = Self::SPECIALS.iter().map(|s| s.to_string()).collect();
        all.extend(words);
        let mut ids = HashMap::default();
        for (id, word) in all.iter().enumerate() {
            if ids.insert(word.clone(), id as u32).is_some() {
                return Err(TextError::Vocabulary(format!("the word {word:?} appears twice")));
            }
        }
        let counts = vec![0; all.len() - Self::SPECIALS.len()];
        Ok(Self { words: all, ids, counts, threshold, ordering, tokenizer_rules: None })
    }

    /// Records which tokenizer rules produced the words (saved with the vocabulary).
    pub fn with_tokenizer_rules(mut self, rules: impl Into<String>) -> Self {
        self.tokenizer_rules = Some(rules.into());
        self
    }

    /// Number of ids, specials included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always false: the four specials are always there.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if it is in the vocabulary.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    /// The word of `id`, if there is one.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// Every word by id, specials first.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// How often the word of `id` occurred when the vocabulary was built (0 for specials and for
    /// vocabularies read from files without counts).
    pub fn count(&self, id: u32) -> u64 {
        (id as usize).checked_sub(Self::SPECIALS.len()).and_then(|i| self.counts.get(i)).copied().unwrap_or(0)
    }

    /// Sets the word counts (one per word, in id order from 4).
    pub(crate) fn set_counts(&mut self, counts: Vec<u64>) {
        debug_assert_eq!(counts.len(), self.len() - Self::SPECIALS.len());
        self.counts = counts;
    }

    /// The frequency threshold the vocabulary was built with (0 when unknown).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// How ids were assigned.
    pub fn ordering(&self) -> Ordering {
        self.ordering
    }

    /// The tokenizer rules the words come from, when recorded.
    pub fn tokenizer_rules(&self) -> Option<&str> {
        self.tokenizer_rules.as_deref()
    }

    /// Ids of `words`, unknown words as `<UNK>` (the original's `Vocabulary.numericalize`).
    pub fn encode<W: AsRef<str>>(&self, words: &[W]) -> Vec<u32> {
        words.iter().map(|w| self.id(w.as_ref()).unwrap_or(Self::UNK)).collect()
    }

    /// `[<SOS>] + encode(words) + [<EOS>]`: the sequence the original's dataset returns for a
    /// caption (`FlickrDataset.__getitem__`; its own `numericalize` is [`Vocabulary::encode`]).
    /// Prepared datasets store `encode`'s ids and their loader adds the two specials, once.
    pub fn numericalize<W: AsRef<str>>(&self, words: &[W]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(words.len() + 2);
        ids.push(Self::SOS);
        ids.extend(self.encode(words));
        ids.push(Self::EOS);
        ids
    }

    /// Words of `ids`: `<PAD>` and `<SOS>` are dropped and decoding stops at `<EOS>`; `<UNK>` stays
    /// (it stands for a word); an id outside the vocabulary decodes as `<UNK>`.
    pub fn decode(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .take_while(|&&id| id != Self::EOS)
            .filter(|&&id| id != Self::PAD && id != Self::SOS)
            .map(|&id| self.word(id).unwrap_or(Self::SPECIALS[Self::UNK as usize]).to_string())
            .collect()
    }
}
