//! spaCy's `_apply_special_cases`: special cases matched over finished tokens.
//!
//! A special case such as `:)` or `a.m.` may reach the token sequence in pieces (affix splitting
//! saw `(:)` before it saw `:)`). spaCy keeps, for every special case that contains an affix, an
//! infix or a space, the tokens it would otherwise become, finds those token sequences in the
//! output with a phrase matcher, keeps the longest non-overlapping matches (by their first and
//! last token, as spaCy checks them) and replaces each by the special case when the matched text,
//! spaces included, is exactly that special case.

use foldhash::HashMap;

use std::ops::Range;

use crate::token::Token;

/// Token sequences to look for, each the affix-split form of a special case.
#[derive(Default)]
pub(crate) struct SpecialMatcher {
    /// Patterns by their first token's text.
    by_first: HashMap<String, Vec<usize>>,
    patterns: Vec<Vec<String>>,
    /// Patterns of a single token (they can change only a lone token).
    single_token_patterns: usize,
    /// Whether some pattern starts with a token of this first byte and length (capped): most
    /// tokens are ruled out here without hashing, as the matcher sees every token of a text.
    may_start: Vec<bool>,
    /// Whether some pattern of two or more tokens starts with tokens of these two first bytes.
    may_pair: Vec<bool>,
}

/// A token's first byte.
fn first_byte(token: &str) -> usize {
    usize::from(token.as_bytes().first().copied().unwrap_or(0))
}

/// Index into [`SpecialMatcher::may_start`].
fn start_key(token: &str) -> usize {
    first_byte(token) * 32 + token.len().min(31)
}

/// Index into [`SpecialMatcher::may_pair`].
fn pair_key(first: &str, second: &str) -> usize {
    first_byte(first) * 256 + first_byte(second)
}

impl SpecialMatcher {
    /// Looks for `patterns`: token sequences (the tokenizer's affix-split form of each special
    /// case worth matching).
    pub fn new(patterns: Vec<Vec<String>>) -> Self {
        let mut matcher = SpecialMatcher {
            may_start: vec![false; 256 * 32],
            may_pair: vec![false; 256 * 256],
            ..SpecialMatcher::default()
        };
        for pattern in patterns {
            matcher.single_token_patterns += usize::from(pattern.len() == 1);
            matcher.may_start[start_key(&pattern[0])] = true;
            if let [first, second, ..] = pattern.as_slice() {
                matcher.may_pair[pair_key(first, second)] = true;
            }
            matcher.by_first.entry(pattern[0].clone()).or_default().push(matcher.patterns.len());
            matcher.patterns.push(pattern);
        }
        matcher
    }

    /// Merges special cases that span several tokens, among `tokens[from..]`: `merge` pushes the
    /// special case whose text is `text[span]` onto the tokens and says whether there was one
    /// (the matched text, spaces included, must be the special case itself).
    pub fn apply<'a>(
        &self,
        text: &'a str,
        tokens: &mut Vec<Token<'a>>,
        from: usize,
        merge: impl Fn(&'a str, Range<usize>, &mut Vec<Token<'a>>) -> bool,
    ) {
        if tokens.len() - from < 2 && self.single_token_patterns == 0 {
            return;
        }
        let mut matches: Vec<(usize, usize)> = Vec::new();
        for (start, token) in tokens.iter().enumerate().skip(from) {
            if !self.may_start[start_key(token.text)] {
                continue;
            }
            if self.single_token_patterns == 0 {
                // Every pattern has a second token, so the next token must fit one too.
                let Some(next) = tokens.get(start + 1) else { break };
                if !self.may_pair[pair_key(token.text, next.text)] {
                    continue;
                }
            }
            let Some(candidates) = self.by_first.get(token.text) else { continue };
            for &p in candidates {
                let pattern = &self.patterns[p];
                let end = start + pattern.len();
                if end <= tokens.len() && tokens[start..end].iter().zip(pattern).all(|(t, p)| t.text == p) {
                    matches.push((start, end));
                }
            }
        }
        if matches.is_empty() {
            return;
        }
        // spaCy's len_start_cmp: shorter first, and among equal lengths the later start first;
        // then taken from the back: longest first, leftmost first.
        matches.sort_by(|a, b| (a.1 - a.0).cmp(&(b.1 - b.0)).then(b.0.cmp(&a.0)));
        matches.dedup();
        let mut seen = vec![false; tokens.len()];
        debug_assert!(matches.iter().all(|&(start, _)| start >= from));
        let mut kept: Vec<(usize, usize)> = Vec::new();
        for &(start, end) in matches.iter().rev() {
            if !seen[start] && !seen[end - 1] {
                kept.push((start, end));
            }
            for s in &mut seen[start..end] {
                *s = true;
            }
        }
        kept.sort_by_key(|&(start, _)| start);

        let old = tokens.split_off(from);
        let kept = kept.into_iter().map(|(start, end)| (start - from, end - from));
        let mut kept = kept.peekable();
        let mut i = 0;
        while i < old.len() {
            match kept.peek() {
                Some(&(start, end)) if start == i => {
                    kept.next();
                    let first = old[start];
                    let last = old[end - 1];
                    if merge(text, first.offset..last.end(), tokens) {
                        if let Some(token) = tokens.last_mut() {
                            token.whitespace = last.whitespace;
                        }
                    } else {
                        tokens.extend_from_slice(&old[start..end]);
                    }
                    i = end;
                }
                Some(&(start, _)) if start < i => {
                    // Overlaps a span already merged: spaCy skips it too.
                    kept.next();
                }
                _ => {
                    tokens.push(old[i]);
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Rules, Tokenizer};

    /// A special case with a space merges tokens across it, as spaCy's matcher does; such rules
    /// switch the tokenizer to matching over the whole text.
    #[test]
    fn special_cases_with_spaces_merge_across_them() {
        let mut rules = Rules::english();
        rules.special_cases.insert("New York".into(), vec!["New York".into()]);
        let tokenizer = Tokenizer::new(&rules).unwrap();
        let texts: Vec<&str> = tokenizer.tokenize("I love New York (a lot).").iter().map(|t| t.text).collect();
        assert_eq!(texts, ["I", "love", "New York", "(", "a", "lot", ")", "."]);
        let texts: Vec<&str> = tokenizer.tokenize("New  York").iter().map(|t| t.text).collect();
        assert_eq!(texts, ["New", " ", "York"]);
    }
}
