//! Kaggle's Flickr8k `captions.txt`: CSV with the header `image,caption` (any case; files without
//! the header are read too), a caption containing a comma wrapped in double quotes, five rows per
//! image.

use crate::{CaptionRecord, DataError};

/// Whether `line` is the Kaggle header (`image,caption` in any case, optionally with spaces, a CR
/// or a byte-order mark).
pub fn is_header(line: &[u8]) -> bool {
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    let fields: Vec<Vec<u8>> = line.split(|&b| b == b',').map(|f| f.trim_ascii().to_ascii_lowercase()).collect();
    fields == [b"image".to_vec(), b"caption".to_vec()]
}

/// Whether `line` looks like a Kaggle row without a header: an image file name, a comma, text.
pub fn is_headerless_row(line: &[u8]) -> bool {
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    let Some(comma) = line.iter().position(|&b| b == b',') else { return false };
    let name = line[..comma].to_ascii_lowercase();
    let image = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"].iter().any(|e| name.ends_with(e.as_bytes()));
    image && !name.contains(&b' ') && line[comma + 1..].iter().any(|b| !b.is_ascii_whitespace())
}

/// Parses the file's bytes; `path` names it in errors.
///
/// # Errors
/// [`DataError::Malformed`] for a missing header, a row without exactly two fields, an empty
/// image name or caption, bad quoting or non-UTF-8 text, with its line; [`DataError::Empty`] when
/// there is no row.
pub fn parse(bytes: &[u8], path: &str) -> Result<Vec<CaptionRecord>, DataError> {
    let malformed = |line: u64, problem: String| DataError::Malformed { path: path.to_string(), line, problem };
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let has_header = is_header(first_line);
    if !has_header && !is_headerless_row(first_line) {
        return Err(malformed(1, "expected the header \"image,caption\" or a first row \"NAME.jpg,caption\"".into()));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(has_header).flexible(true).from_reader(bytes);
    let mut records = Vec::new();
    let mut row = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map_or(line, |p| p.line());
                return Err(malformed(line, format!("bad CSV: {error}")));
            }
        }
        let line = row.position().map_or(line, |p| p.line());
        if row.iter().any(|field| field.contains(&b'\n')) {
            // A quote with no partner on its line swallows the lines after it (to the next quote,
            // or to the end): Kaggle captions are one line each.
            let last = reader.position().line().saturating_sub(1).max(line + 1);
            return Err(malformed(
                line,
                format!("a double quote opened on this line is not closed on it (the field runs on to line {last})"),
            ));
        }
        if row.len() != 2 {
            return Err(malformed(line, format!("expected 2 fields (image,caption), found {}", row.len())));
        }
        let text = |i: usize, what: &str| {
            std::str::from_utf8(&row[i])
                .map(str::to_string)
                .map_err(|e| malformed(line, format!("the {what} is not UTF-8: {e}")))
        };
        let (image, caption) = (text(0, "image name")?, text(1, "caption")?);
        if image.trim().is_empty() {
            return Err(malformed(line, "empty image name".into()));
        }
        if caption.trim().is_empty() {
            return Err(malformed(line, format!("empty caption for {image}")));
        }
        records.push(CaptionRecord { image, caption, line, split: None });
    }
    super::non_empty(records, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_captions_keep_their_commas() {
        let text = b"image,caption\n1.jpg,A dog runs .\n1.jpg,\"A dog , brown , runs .\"\n";
        let records = parse(text, "c.txt").unwrap();
        assert_eq!(records[1].caption, "A dog , brown , runs .");
        assert_eq!(records[1].line, 3);
    }

    #[test]
    fn problems_name_the_line() {
        let error = |text: &[u8]| parse(text, "c.txt").unwrap_err().to_string();
        assert!(error(b"img,cap\n").contains("c.txt:1: expected the header"));
        // The header in other cases, or none at all.
        for text in [&b"Image,Caption\r\n1.jpg,A dog .\n"[..], b"1.jpg,A dog .\n", b" IMAGE , caption\n1.jpg,A dog .\n"]
        {
            let records = parse(text, "c.txt").unwrap();
            assert_eq!(
                (records.len(), records[0].caption.as_str()),
                (1, "A dog ."),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(parse(b"1.jpg,A dog .\n", "c.txt").unwrap()[0].line, 1);
        assert!(
            error(b"image,caption\n1.jpg,ok\n2.jpg\n").contains("c.txt:3: expected 2 fields"),
            "{}",
            error(b"image,caption\n1.jpg,ok\n2.jpg\n")
        );
        assert!(error(b"image,caption\n1.jpg,\xff\xfe\n").contains("c.txt:2: the caption is not UTF-8"));
        assert!(error(b"image,caption\n1.jpg,  \n").contains("c.txt:2: empty caption"));
        assert!(error(b"image,caption\n").contains("no captions"));
        // An unclosed quote is reported at its line, with or without a quote further down.
        let unclosed = b"image,caption\n1.jpg,ok\n1.jpg,\"A dog runs .\n2.jpg,A cat .\n2.jpg,A cat sits .\n";
        let message = error(unclosed);
        assert!(message.contains("c.txt:3: a double quote opened on this line is not closed"), "{message}");
        let later = b"image,caption\n1.jpg,\"A dog .\n2.jpg,A cat .\n2.jpg,\"A, cat\"\n";
        assert!(error(later).contains("c.txt:2: a double quote"), "{}", error(later));
    }
}
