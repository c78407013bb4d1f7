//! [`detokenize`]: words as a person writes them, from tokens that carry no spacing (a model's
//! output, or lowercased words): no space before closing punctuation and clitics, none after
//! opening brackets, hyphens and slashes joined to their neighbours, quotes paired.

/// Characters of closing punctuation: a token made of them only (".", "?!", "..") is written
/// without the space before it.
const CLOSING: &str = ".,!?;:%)]}…";
/// Tokens written without the space after them: opening brackets and currency signs.
const OPENING: [&str; 7] = ["(", "[", "{", "$", "£", "€", "#"];
/// Tokens joined to both neighbours, as in "black-and-white" and "and/or" (spaCy splits both).
const JOINING: [&str; 2] = ["-", "/"];
/// Quote marks: paired, the first of a pair joined to the word after it, the second to the word
/// before it.
const QUOTES: [&str; 2] = ["\"", "''"];

/// The words joined as a person writes them: `["a", "dog", "'s", "ball", "."]` becomes
/// `"a dog's ball."`. Every token is kept as it is (no case change); only the spaces between them
/// are chosen. English contractions that spaCy splits off (`'s`, `n't`, `'re`, `'ll`, …) join the
/// word before them.
///
/// ```
/// assert_eq!(caption_text::detokenize(&["a", "black", "-", "and", "-", "white", "dog", "."]), "a black-and-white dog.");
/// assert_eq!(caption_text::detokenize(&["a", "sign", "says", "\"", "stop", "\"", "."]), "a sign says \"stop\".");
/// ```
pub fn detokenize<S: AsRef<str>>(words: &[S]) -> String {
    let mut text = String::new();
    let mut open_quote = false;
    // Whether the next token is written without a space before it.
    let mut glue_next = true;
    for word in words.iter().map(AsRef::as_ref) {
        let glue_before = if QUOTES.contains(&word) {
            open_quote = !open_quote;
            // The closing quote joins the word before it; the opening one is spaced.
            !open_quote
        } else {
            word.chars().all(|c| CLOSING.contains(c)) || JOINING.contains(&word) || is_clitic(word)
        };
        if !(glue_next || glue_before) {
            text.push(' ');
        }
        text.push_str(word);
        glue_next = OPENING.contains(&word) || JOINING.contains(&word) || (QUOTES.contains(&word) && open_quote);
    }
    text
}

/// Whether `word` is a contraction spaCy splits from the word before it ("'s", "n't", "'ll", …;
/// also with a typographic apostrophe).
fn is_clitic(word: &str) -> bool {
    let lower = word.to_lowercase().replace('’', "'");
    matches!(lower.as_str(), "'s" | "n't" | "'re" | "'ve" | "'ll" | "'d" | "'m" | "nt")
}

#[cfg(test)]
mod tests {
    use super::detokenize;

    #[test]
    fn spaces_follow_the_rules_of_written_english() {
        let cases: [(&[&str], &str); 10] = [
            (&["a", "dog", "runs", "."], "a dog runs."),
            (&["two", "dogs", ",", "one", "brown", ",", "play", "!"], "two dogs, one brown, play!"),
            (&["a", "dog", "'s", "ball"], "a dog's ball"),
            (&["it", "does", "n't", "stop", "and", "it", "'s", "wet"], "it doesn't stop and it's wet"),
            (&["a", "man", "(", "left", ")", "waves"], "a man (left) waves"),
            (
                &["a", "sign", "reading", "\"", "no", "dogs", "\"", "and", "\"", "stop", "\""],
                "a sign reading \"no dogs\" and \"stop\"",
            ),
            (&["a", "black", "-", "and", "-", "white", "dog"], "a black-and-white dog"),
            (&["costs", "$", "5", "or", "10", "%"], "costs $5 or 10%"),
            (&["wait", "...", "what", "?", "!"], "wait... what?!"),
            (&[".", "<UNK>", "dog"], ". <UNK> dog"),
        ];
        for (words, expected) in cases {
            assert_eq!(detokenize(words), expected, "{words:?}");
        }
        assert_eq!(detokenize::<&str>(&[]), "");
    }
}
