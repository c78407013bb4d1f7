//! Karpathy's split files (`dataset_flickr8k.json`, `dataset_flickr30k.json`, `dataset_coco.json`):
//! `{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw", ...}]}]}`. The `restval`
//! split is training data, as everyone uses it.

use serde_json::Value;

use crate::{CaptionRecord, DataError, Split};

/// Parses the JSON text; `path` names it in errors. Records are numbered by their sentence's
/// position in the file.
///
/// # Errors
/// [`DataError::Malformed`] for invalid JSON, an image without `filename`, `split` or `sentences`,
/// an unknown split or a sentence without `raw`; [`DataError::Empty`] without sentences.
pub fn parse(text: &str, path: &str) -> Result<Vec<CaptionRecord>, DataError> {
    let malformed = |line: u64, problem: String| DataError::Malformed { path: path.to_string(), line, problem };
    let document: Value =
        serde_json::from_str(text).map_err(|e| malformed(e.line() as u64, format!("invalid JSON: {e}")))?;
    let images =
        document.get("images").and_then(Value::as_array).ok_or_else(|| malformed(1, "no \"images\" list".into()))?;
    let mut records = Vec::new();
    for (index, image) in images.iter().enumerate() {
        let at = |problem: &str| malformed(1, format!("image #{index}: {problem}"));
        let filename = image.get("filename").and_then(Value::as_str).ok_or_else(|| at("no \"filename\""))?;
        let name = match image.get("filepath").and_then(Value::as_str) {
            Some(folder) if !folder.is_empty() => format!("{folder}/{filename}"),
            _ => filename.to_string(),
        };
        let split = match image.get("split").and_then(Value::as_str).ok_or_else(|| at("no \"split\""))? {
            "restval" => Split::Train,
            other => other.parse::<Split>().map_err(|e| at(&e))?,
        };
        let sentences = image.get("sentences").and_then(Value::as_array).ok_or_else(|| at("no \"sentences\" list"))?;
        for sentence in sentences {
            let raw =
                sentence.get("raw").and_then(Value::as_str).ok_or_else(|| at("a sentence without \"raw\" text"))?;
            if raw.trim().is_empty() {
                return Err(at("an empty caption"));
            }
            let number = records.len() as u64 + 1;
            records.push(CaptionRecord {
                image: name.clone(),
                caption: raw.to_string(),
                line: number,
                split: Some(split),
            });
        }
    }
    super::non_empty(records, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restval_is_training_data_and_paths_join() {
        let json = r#"{"images": [
            {"filename": "a.jpg", "filepath": "val2014", "split": "restval", "sentences": [{"raw": "A cat."}, {"raw": "A pet."}]},
            {"filename": "b.jpg", "split": "test", "sentences": [{"raw": "A dog."}]}]}"#;
        let records = parse(json, "k.json").unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].image, "val2014/a.jpg");
        assert_eq!(records[0].split, Some(Split::Train));
        assert_eq!(records[2].split, Some(Split::Test));
        assert!(
            parse(r#"{"images": [{"filename": "a.jpg", "split": "holdout", "sentences": []}]}"#, "k.json").is_err()
        );
        assert!(parse("{", "k.json").unwrap_err().to_string().starts_with("k.json:"));
        let empty = r#"{"images": [{"filename": "a.jpg", "split": "val", "sentences": [{"raw": " "}]}]}"#;
        assert!(parse(empty, "k.json").unwrap_err().to_string().contains("image #0: an empty caption"));
    }
}
