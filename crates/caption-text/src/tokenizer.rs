//! [`Tokenizer`]: spaCy's tokenization algorithm over [`Rules`].
//!
//! The steps, as spaCy 3.8's `Tokenizer.__call__` takes them:
//! 1. split the text into runs of whitespace and non-whitespace; a single space after a token is
//!    that token's trailing whitespace, any other whitespace becomes a token of its own;
//! 2. each non-space chunk is a special case, or loses prefixes and suffixes one at a time
//!    (stopping early where what is left is a special case), then the remainder is a special case,
//!    a URL, or is split at infixes;
//! 3. special cases that span several of the tokens so made (`:)` after affix splitting, say) are
//!    matched over the token sequence and merged, longest first.
//!
//! Tokens are slices of the input with byte offsets and a trailing-space flag, so the input is
//! rebuilt exactly from them.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use fancy_regex::Regex;
use foldhash::HashMap;
use rayon::prelude::*;

use crate::special_matcher::SpecialMatcher;
use crate::token::Token;
use crate::{Rules, TextError};

/// A spaCy-rule tokenizer. Cheap to share across threads; chunk results are cached per thread.
///
/// ```
/// use caption_text::Tokenizer;
///
/// let tokenizer = Tokenizer::english();
/// let tokens = tokenizer.tokenize("I can't go to the U.S. (today)!");
/// let texts: Vec<&str> = tokens.iter().map(|t| t.text).collect();
/// assert_eq!(texts, ["I", "ca", "n't", "go", "to", "the", "U.S.", "(", "today", ")", "!"]);
/// assert_eq!(tokenizer.lowercase_words("A  Dog"), ["a", " ", "dog"]);
/// ```
pub struct Tokenizer {
    /// Distinguishes tokenizers in the per-thread chunk cache.
    id: usize,
    rules_version: String,
    prefix: Option<Regex>,
    suffix: Option<Regex>,
    infix: Option<Regex>,
    url: Option<Regex>,
    whitespace: Vec<(u32, u32)>,
    /// Special case → byte lengths of its pieces.
    specials: HashMap<String, Vec<u32>>,
    /// Runs over the whole text, as spaCy's does: a match across whitespace never merges, but it
    /// still keeps an overlapping match from merging (`) :)x` stays `)`, `:`, `)`, `x`).
    matcher: SpecialMatcher,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("rules", &self.rules_version)
            .field("special_cases", &self.specials.len())
            .finish()
    }
}

/// Texts per parallel task: captions take about a microsecond each, so single-text tasks would
/// cost more to schedule than to run.
const PARALLEL_GRAIN: usize = 512;

/// Largest number of chunks a thread's cache holds before it starts afresh.
const CACHE_LIMIT: usize = 200_000;

/// A cached chunk's tokens.
enum ChunkTokens {
    /// One token, the whole chunk (most words): nothing more to read on a hit.
    Whole,
    /// Token spans relative to the chunk's start: (offset, length).
    Pieces(Box<[(u32, u32)]>),
}

thread_local! {
    static CHUNK_CACHE: RefCell<(usize, HashMap<Box<str>, ChunkTokens>)> = RefCell::new((usize::MAX, HashMap::default()));
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

impl Tokenizer {
    /// spaCy's English tokenizer (`spacy.blank("en").tokenizer`).
    pub fn english() -> Self {
        Self::new(&Rules::english()).expect("the embedded English rules compile")
    }

    /// Compiles a tokenizer from rules.
    ///
    /// # Errors
    /// [`TextError::Pattern`] when a pattern does not compile.
    pub fn new(rules: &Rules) -> Result<Self, TextError> {
        let compile = |name: &'static str, pattern: &Option<String>| -> Result<Option<Regex>, TextError> {
            pattern
                .as_deref()
                .map(|p| {
                    fancy_regex::RegexBuilder::new(p)
                        .backtrack_limit(10_000_000)
                        .build()
                        .map_err(|e| TextError::Pattern { name, source: Box::new(e) })
                })
                .transpose()
        };
        let mut tokenizer = Tokenizer {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rules_version: rules.version(),
            prefix: compile("prefix", &rules.prefix)?,
            suffix: compile("suffix", &rules.suffix)?,
            infix: compile("infix", &rules.infix)?,
            url: compile("url", &rules.url)?,
            whitespace: rules.whitespace.clone(),
            specials: rules
                .special_cases
                .iter()
                .map(|(string, pieces)| (string.clone(), pieces.iter().map(|p| p.len() as u32).collect()))
                .collect(),
            matcher: SpecialMatcher::default(),
        };
        tokenizer.matcher = SpecialMatcher::new(tokenizer.special_case_patterns(rules));
        Ok(tokenizer)
    }

    /// The token sequences the special-case matcher looks for: each special case that contains
    /// an affix, an infix or a space, as affix splitting alone would leave it. A one-token
    /// sequence whose special case is one token too is left out (it would become itself).
    fn special_case_patterns(&self, rules: &Rules) -> Vec<Vec<String>> {
        let mut patterns = Vec::new();
        for (string, pieces) in &rules.special_cases {
            let worth_matching = !rules.faster_heuristics
                || self.find_prefix(string) != 0
                || self.has_infix(string)
                || self.find_suffix(string) != 0
                || string.contains(' ');
            if !worth_matching {
                continue;
            }
            let mut tokens = Vec::new();
            self.tokenize_affixes(string, false, &mut tokens);
            let pattern: Vec<String> = tokens.iter().map(|t| t.text.to_string()).collect();
            if pattern.is_empty() || (pattern.len() == 1 && pieces.len() == 1) {
                continue;
            }
            patterns.push(pattern);
        }
        patterns
    }

    /// The rules' name, e.g. `spacy-3.8.18-en`.
    pub fn rules_version(&self) -> &str {
        &self.rules_version
    }

    /// Tokenizes `text` as spaCy does.
    pub fn tokenize<'a>(&self, text: &'a str) -> Vec<Token<'a>> {
        let mut tokens = Vec::with_capacity(text.len() / 4 + 1);
        self.tokenize_affixes(text, true, &mut tokens);
        self.matcher.apply(text, &mut tokens, 0, |text, span, tokens| self.push_special(text, span, tokens));
        tokens
    }

    /// `[tok.text.lower() for tok in tokenizer(text)]`: the original's `tokenizer_eng`,
    /// whitespace tokens included.
    pub fn lowercase_words(&self, text: &str) -> Vec<String> {
        self.tokenize(text).iter().map(Token::lower).collect()
    }

    /// Tokenizes many texts in parallel (rayon), in order.
    pub fn tokenize_batch<'a, S: AsRef<str> + Sync>(&self, texts: &'a [S]) -> Vec<Vec<Token<'a>>> {
        texts.par_iter().with_min_len(PARALLEL_GRAIN).map(|t| self.tokenize(t.as_ref())).collect()
    }

    /// [`Tokenizer::lowercase_words`] for many texts in parallel (rayon), in order.
    pub fn lowercase_words_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<String>> {
        texts.par_iter().with_min_len(PARALLEL_GRAIN).map(|t| self.lowercase_words(t.as_ref())).collect()
    }

    /// Python's `str.isspace()`.
    pub fn is_space(&self, c: char) -> bool {
        let c = c as u32;
        self.whitespace.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
    }

    /// spaCy's `_tokenize_affixes`: whitespace runs, then each chunk.
    pub(crate) fn tokenize_affixes<'a>(&self, text: &'a str, with_special_cases: bool, tokens: &mut Vec<Token<'a>>) {
        let Some(first) = text.chars().next() else { return };
        let mut in_space = self.is_space(first);
        let mut start = 0;
        for (i, c) in text.char_indices() {
            let space = if c.is_ascii() {
                c == ' ' || ('\t'..='\r').contains(&c) || ('\x1c'..='\x1f').contains(&c)
            } else {
                self.is_space(c)
            };
            if space != in_space {
                if start < i {
                    self.chunk(text, start..i, with_special_cases, tokens);
                }
                if c == ' ' {
                    if let Some(last) = tokens.last_mut() {
                        last.whitespace = true;
                    }
                    start = i + 1;
                } else {
                    start = i;
                }
                in_space = !in_space;
            }
        }
        if start < text.len() {
            self.chunk(text, start..text.len(), with_special_cases, tokens);
            if let Some(last) = tokens.last_mut() {
                last.whitespace = text.ends_with(' ') && !in_space;
            }
        }
    }

    /// One chunk: a cached result, a special case, or affix splitting.
    fn chunk<'a>(&self, text: &'a str, span: Range<usize>, with_special_cases: bool, tokens: &mut Vec<Token<'a>>) {
        if !with_special_cases {
            self.split_chunk(text, span, false, tokens);
            return;
        }
        let chunk = &text[span.clone()];
        // spaCy caches chunk results too; a chunk's tokens never depend on anything else.
        let hit = CHUNK_CACHE.with(|cache| {
            let cache = cache.borrow();
            let (owner, map) = &*cache;
            match map.get(chunk).filter(|_| *owner == self.id)? {
                ChunkTokens::Whole => tokens.push(Token { text: chunk, offset: span.start, whitespace: false }),
                ChunkTokens::Pieces(pieces) => tokens.extend(pieces.iter().map(|&(offset, len)| {
                    let start = span.start + offset as usize;
                    Token { text: &text[start..start + len as usize], offset: start, whitespace: false }
                })),
            }
            Some(())
        });
        if hit.is_some() {
            return;
        }
        let first = tokens.len();
        if !self.push_special(text, span.clone(), tokens) {
            self.split_chunk(text, span.clone(), true, tokens);
        }
        let pieces = match &tokens[first..] {
            [token] if token.text.len() == chunk.len() => ChunkTokens::Whole,
            pieces => ChunkTokens::Pieces(
                pieces.iter().map(|t| ((t.offset - span.start) as u32, t.text.len() as u32)).collect(),
            ),
        };
        CHUNK_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.0 != self.id || cache.1.len() >= CACHE_LIMIT {
                *cache = (self.id, HashMap::default());
            }
            cache.1.insert(chunk.into(), pieces);
        });
    }

    /// Pushes the pieces of `text[span]` if it is a special case.
    pub(crate) fn push_special<'a>(&self, text: &'a str, span: Range<usize>, tokens: &mut Vec<Token<'a>>) -> bool {
        let Some(pieces) = self.specials.get(&text[span.clone()]) else { return false };
        let mut offset = span.start;
        for &len in pieces {
            let end = offset + len as usize;
            tokens.push(Token { text: &text[offset..end], offset, whitespace: false });
            offset = end;
        }
        true
    }

    fn is_special(&self, s: &str) -> bool {
        self.specials.contains_key(s)
    }

    /// spaCy's `_split_affixes` followed by `_attach_tokens`.
    fn split_chunk<'a>(
        &self,
        text: &'a str,
        span: Range<usize>,
        with_special_cases: bool,
        tokens: &mut Vec<Token<'a>>,
    ) {
        let mut prefixes: Vec<Range<usize>> = Vec::new();
        let mut suffixes: Vec<Range<usize>> = Vec::new();
        let mut rest = span;
        let mut last_size = usize::MAX;
        while !rest.is_empty() && rest.len() != last_size {
            let string = &text[rest.clone()];
            if with_special_cases && self.is_special(string) {
                break;
            }
            last_size = rest.len();
            let pre_len = self.find_prefix(string);
            if pre_len != 0 {
                let minus_pre = rest.start + pre_len..rest.end;
                if !minus_pre.is_empty() && with_special_cases && self.is_special(&text[minus_pre.clone()]) {
                    prefixes.push(rest.start..rest.start + pre_len);
                    rest = minus_pre;
                    break;
                }
            }
            let suf_len = self.find_suffix(&string[pre_len..]);
            if suf_len != 0 {
                let minus_suf = rest.start..rest.end - suf_len;
                if !minus_suf.is_empty() && with_special_cases && self.is_special(&text[minus_suf.clone()]) {
                    suffixes.push(rest.end - suf_len..rest.end);
                    rest = minus_suf;
                    break;
                }
            }
            if pre_len != 0 && suf_len != 0 && pre_len + suf_len <= rest.len() {
                prefixes.push(rest.start..rest.start + pre_len);
                suffixes.push(rest.end - suf_len..rest.end);
                rest = rest.start + pre_len..rest.end - suf_len;
            } else if pre_len != 0 {
                prefixes.push(rest.start..rest.start + pre_len);
                rest = rest.start + pre_len..rest.end;
            } else if suf_len != 0 {
                suffixes.push(rest.end - suf_len..rest.end);
                rest = rest.start..rest.end - suf_len;
            }
        }
        let push = |tokens: &mut Vec<Token<'a>>, range: Range<usize>| {
            tokens.push(Token { text: &text[range.clone()], offset: range.start, whitespace: false });
        };
        for prefix in prefixes {
            push(tokens, prefix);
        }
        if !rest.is_empty() {
            let string = &text[rest.clone()];
            if with_special_cases && self.push_special(text, rest.clone(), tokens) {
            } else if self.url.as_ref().is_some_and(|url| matches!(url.is_match(string), Ok(true))) {
                push(tokens, rest.clone());
            } else {
                let mut start = 0;
                if let Some(infix) = &self.infix {
                    for found in infix.find_iter(string).flatten() {
                        // spaCy skips an infix at the very start of the string.
                        if found.start() == 0 {
                            continue;
                        }
                        if found.start() != start {
                            push(tokens, rest.start + start..rest.start + found.start());
                        }
                        if found.start() != found.end() {
                            push(tokens, rest.start + found.start()..rest.start + found.end());
                        }
                        start = found.end();
                    }
                }
                if start < string.len() {
                    push(tokens, rest.start + start..rest.end);
                }
            }
        }
        for suffix in suffixes.into_iter().rev() {
            push(tokens, suffix);
        }
    }

    /// Length in bytes of the prefix to split off, or 0.
    pub(crate) fn find_prefix(&self, s: &str) -> usize {
        search(self.prefix.as_ref(), s).map_or(0, |m| m.end - m.start)
    }

    /// Length in bytes of the suffix to split off, or 0.
    pub(crate) fn find_suffix(&self, s: &str) -> usize {
        search(self.suffix.as_ref(), s).map_or(0, |m| m.end - m.start)
    }

    /// Whether an infix occurs anywhere in `s`.
    pub(crate) fn has_infix(&self, s: &str) -> bool {
        self.infix.as_ref().is_some_and(|infix| infix.find_iter(s).flatten().next().is_some())
    }
}

/// `pattern.search(s)`: the leftmost match. A match abandoned for exceeding the backtracking limit
/// counts as no match.
fn search(pattern: Option<&Regex>, s: &str) -> Option<Range<usize>> {
    pattern?.find(s).ok().flatten().map(|m| m.start()..m.end())
}
