//! Every caption-file parser on arbitrary bytes: no panic; a failure is a typed error naming the file.

use std::path::Path;

use caption_data::DataError;
use caption_data::sources::{Format, coco, flickr8k_token, kaggle, karpathy, plain, read_captions};
use proptest::prelude::*;

#[path = "../../../tests/support/shared_data.rs"]
mod shared_data;
use shared_data::shared_data;

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
        Err(other) => prop_assert!(false, "a parser returned an unexpected error: {other}"),
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

/// A real JPEG and a real PNG, for mutation.
fn real_images() -> Vec<Vec<u8>> {
    let jpeg = std::fs::read(shared_data("flickr8k/images/3637013_c675de7705.jpg")).unwrap();
    let mut png = Vec::new();
    image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    vec![jpeg, png]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Image checking on truncated and corrupted real files and on arbitrary bytes: never a panic,
    /// only a decoded RGB picture or a named problem.
    #[test]
    fn image_checks_never_panic(
        which in 0usize..2,
        cut in 0.0f64..1.0,
        flips in prop::collection::vec((0.0f64..1.0, any::<u8>()), 0..8),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let images = real_images();
        let mut bytes = images[which].clone();
        for (at, value) in flips {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = value;
        }
        bytes.truncate(((bytes.len() as f64) * cut) as usize + 1);
        for input in [&bytes, &noise] {
            match caption_data::check_image_bytes(input) {
                Ok(rgb) => prop_assert!(rgb.width() >= 8 && rgb.height() >= 8),
                Err(problem) => prop_assert!(!problem.to_string().is_empty()),
            }
        }
    }
}
