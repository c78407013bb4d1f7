//! [`Token`]: one token, a slice of the input with its byte offset and trailing-space flag, and
//! [`reconstruct`], which rebuilds the input from tokens.

/// One token: a slice of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token<'a> {
    /// The token's text (spaCy's `token.text`).
    pub text: &'a str,
    /// Byte offset of the token in the input.
    pub offset: usize,
    /// Whether a single space follows the token (spaCy's `token.whitespace_`).
    pub whitespace: bool,
}

impl Token<'_> {
    /// Byte offset just past the token.
    pub fn end(&self) -> usize {
        self.offset + self.text.len()
    }

    /// The token lowercased as Python's `str.lower()` does (what the original's
    /// `tok.text.lower()` gives).
    pub fn lower(&self) -> String {
        self.text.to_lowercase()
    }
}

/// Rebuilds the text a token sequence came from: each token followed by a space where it has one.
pub fn reconstruct(tokens: &[Token<'_>]) -> String {
    let mut text = String::with_capacity(tokens.iter().map(|t| t.text.len() + 1).sum());
    for token in tokens {
        text.push_str(token.text);
        if token.whitespace {
            text.push(' ');
        }
    }
    text
}
