//! Properties over arbitrary input: no panic, valid offsets, exact reconstruction.

use std::sync::LazyLock;

use caption_text::{Ordering, Tokenizer, Vocabulary, reconstruct};
use proptest::prelude::*;

/// Built once: compiling the rules takes tens of milliseconds.
static TOKENIZER: LazyLock<Tokenizer> = LazyLock::new(Tokenizer::english);

/// Text built from pieces that trigger the rules, mixed with arbitrary characters.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        prop::sample::select(vec![
            " ", "  ", "\t", "\n", "\u{a0}", "\u{2003}", "n't", "'s", "U.S.", "http://", "www.", ".com", "@", ":)",
            "(", ")", "\"", "'", "…", "...", "-", "—", "$", "€", "%", "5", "10km", "a.m.", "Mr.", "can't", "e.g.", "x",
            "Dog",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn tokens_rebuild_the_input(text in tricky_text()) {
        let tokenizer = &*TOKENIZER;
        let tokens = tokenizer.tokenize(&text);
        prop_assert_eq!(reconstruct(&tokens), text.clone());
        let mut position = 0;
        for token in &tokens {
            prop_assert!(!token.text.is_empty());
            // Offsets point at the token, in order; between tokens there is at most the one space.
            prop_assert_eq!(&text[token.offset..token.end()], token.text);
            prop_assert!(token.offset >= position);
            position = token.end() + usize::from(token.whitespace);
        }
        prop_assert_eq!(position, text.len());
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,60}") {
        let tokenizer = &*TOKENIZER;
        let tokens = tokenizer.tokenize(&text);
        prop_assert_eq!(reconstruct(&tokens), text);
    }

    #[test]
    fn batch_equals_one_by_one(texts in prop::collection::vec(tricky_text(), 0..20)) {
        let tokenizer = &*TOKENIZER;
        let batch = tokenizer.tokenize_batch(&texts);
        for (text, tokens) in texts.iter().zip(&batch) {
            prop_assert_eq!(&tokenizer.tokenize(text), tokens);
        }
    }

    #[test]
    fn vocabulary_round_trips_through_tokenizer_json(
        captions in prop::collection::vec(prop::collection::vec("[a-e]{1,3}", 0..8), 0..30),
        threshold in 1usize..4,
        seed in any::<bool>(),
    ) {
        let ordering = if seed { Ordering::Original } else { Ordering::Frequency };
        let vocabulary = Vocabulary::build(&captions, threshold, ordering).unwrap().with_tokenizer_rules("spacy-3.8.18-en");
        let back = Vocabulary::from_tokenizer_json(&vocabulary.to_tokenizer_json(), "test").unwrap();
        prop_assert_eq!(&back, &vocabulary);
        for caption in &captions {
            let ids = vocabulary.numericalize(caption);
            let decoded = vocabulary.decode(&ids);
            prop_assert_eq!(decoded.len(), caption.len());
            for (word, back) in caption.iter().zip(&decoded) {
                prop_assert!(back == word || back == "<UNK>");
            }
        }
    }
}
