//! Python's string operations that the reproduced libraries tokenize with, where Rust's differ.

/// Whether Python's `str.isspace()` holds for `c`: Unicode's White_Space (Rust's
/// [`char::is_whitespace`]) and the four ASCII information separators U+001C..U+001F, which
/// Python's `str.split()` also splits on.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The words of `text` as Python's `str.split()` gives them (runs of [`is_python_space`]
/// characters separate words; no empty words).
///
/// ```
/// let words: Vec<&str> = caption_metrics::python_split("a\u{1f}dog \u{a0} runs\n").collect();
/// assert_eq!(words, ["a", "dog", "runs"]);
/// ```
pub fn python_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_python_space).filter(|word| !word.is_empty())
}

/// `text` without trailing [`is_python_space`] characters: Python's `str.rstrip()`.
pub fn python_rstrip(text: &str) -> &str {
    text.trim_end_matches(is_python_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_splits_on_the_information_separators_and_rust_does_not() {
        let text = "a\u{1c}b\u{1d}c\u{1e}d\u{1f}e";
        assert_eq!(text.split_whitespace().count(), 1);
        assert_eq!(python_split(text).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
        assert_eq!(python_split("  \u{3000} ").count(), 0);
        assert_eq!(python_rstrip("a b \u{1f}\u{85}"), "a b");
        // Python 3.11: '\u200b'.isspace() and '\u180e'.isspace() are False.
        assert!(!is_python_space('\u{200b}') && !is_python_space('\u{180e}'));
    }
}
