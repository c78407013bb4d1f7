//! Every caption-file parser on arbitrary bytes: no panic; a failure is a typed error naming the file.

use std::path::Path;

use caption_data::DataError;
use caption_data::sources::{Format, coco, flickr8k_token, kaggle, karpathy, plain, read_captions};
use proptest::prelude::*;

/// Bytes that look a little like each format, and sometimes are pure noise.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            "image,caption\n",
            "1.jpg,",
            "\"A, dog\"",
            "\"",
            "\n",
            "\r\n",
            "#0\t",
            "a.jpg#1\tA cat .",
            "{",
            "}",
            "[",
            "]",
            "\"images\":",
            "\"annotations\":",
            "\"sentences\":",
            "{\"raw\": \"x\"}",
            "\"split\": \"val\"",
            "\"filename\": \"f\"",
            "\"id\": 1",
            "\"image_id\": 1",
            "\"caption\": \"c\"",
            "\"file_name\": \"f.jpg\"",
            ",",
            ":",
            "\u{feff}",
            "\u{e9}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn names_the_file(result: Result<Vec<caption_data::CaptionRecord>, DataError>) -> Result<(), TestCaseError> {
    match result {
        Ok(records) => prop_assert!(!records.is_empty()),
        Err(DataError::Malformed { path, .. } | DataError::Empty { path }) => prop_assert_eq!(path, "fuzz.txt"),
        Err(DataError::Io { .. }) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parsers_never_panic(bytes in input()) {
        let text = String::from_utf8_lossy(&bytes);
        names_the_file(kaggle::parse(&bytes, "fuzz.txt"))?;
        names_the_file(flickr8k_token::parse(&bytes, "fuzz.txt"))?;
        names_the_file(plain::parse(&bytes, "fuzz.txt"))?;
        names_the_file(karpathy::parse(&text, "fuzz.txt"))?;
        names_the_file(coco::parse(&text, "fuzz.txt"))?;
        let format = Format::detect(&bytes);
        if format != Format::Flickr8kToken {
            names_the_file(read_captions(Path::new("fuzz.txt"), &bytes, format))?;
        }
    }
}
