//! Kaggle's Flickr8k `captions.txt`: CSV with the header `image,caption`, a caption containing a
//! comma wrapped in double quotes, five rows per image.

use crate::{CaptionRecord, DataError};

/// Whether `line` is the Kaggle header (`image,caption`, optionally with a CR or a byte-order mark).
pub fn is_header(line: &[u8]) -> bool {
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line == b"image,caption"
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
    if !is_header(first_line) {
        return Err(malformed(1, "expected the header \"image,caption\"".into()));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
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
