//! sacrebleu 2.6's default tokenizer, `13a` (mteval-v13a's, as WMT scores with it):
//! `Tokenizer13a` then `TokenizerRegexp`, rewritten without regular expressions.
//!
//! Each of `TokenizerRegexp`'s four substitutions matches exactly two characters, so
//! `re.sub`'s left-to-right, non-overlapping scan is a scan over pairs of code points here.

use crate::python_text::python_split;

/// `sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(line)`: the tokens of `line` joined by
/// single spaces.
///
/// ```
/// use caption_metrics::tokenize_13a;
/// assert_eq!(tokenize_13a("Hello, world! It's 3.5-4 km."), "Hello , world ! It's 3.5 - 4 km .");
/// assert_eq!(tokenize_13a("a &amp; b&quot;"), "a & b \"");
/// ```
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let mut chars: Vec<char> = Vec::with_capacity(line.len() + 2);
    chars.push(' ');
    chars.extend(line.chars());
    chars.push(' ');
    // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
    let mut spaced = Vec::with_capacity(chars.len() * 2);
    for c in chars {
        if is_13a_punctuation(c) {
            spaced.extend([' ', c, ' ']);
        } else {
            spaced.push(c);
        }
    }
    let not_digit = |c: char| !c.is_ascii_digit();
    let period_or_comma = |c: char| c == '.' || c == ',';
    // ([^0-9])([\.,]) -> "\1 \2 "
    let chars = substitute_pairs(&spaced, not_digit, period_or_comma, |a, b| vec![a, ' ', b, ' ']);
    // ([\.,])([^0-9]) -> " \1 \2"
    let chars = substitute_pairs(&chars, period_or_comma, not_digit, |a, b| vec![' ', a, ' ', b]);
    // ([0-9])(-) -> "\1 \2 "
    let chars = substitute_pairs(&chars, |c| c.is_ascii_digit(), |c| c == '-', |a, b| vec![a, ' ', b, ' ']);
    let text: String = chars.into_iter().collect();
    python_split(&text).collect::<Vec<_>>().join(" ")
}

/// `TokenizerRegexp`'s first class: ASCII punctuation and symbols except `'`, `,`, `-` and `.`
/// (and the space, which only gains spaces around it).
fn is_13a_punctuation(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// `re.sub("(first)(second)", replacement, text)` for two one-character classes.
fn substitute_pairs(
    text: &[char],
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    replacement: impl Fn(char, char) -> Vec<char>,
) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 4);
    let mut i = 0;
    while i < text.len() {
        if i + 1 < text.len() && first(text[i]) && second(text[i + 1]) {
            out.extend(replacement(text[i], text[i + 1]));
            i += 2;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}
