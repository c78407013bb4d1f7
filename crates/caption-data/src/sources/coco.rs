//! COCO captions annotations (`captions_train2017.json`, `captions_val2017.json`, …):
//! `{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`. No split: COCO's
//! own train/val are not the held-out splits captioning papers use.

use std::collections::HashMap;

use serde_json::Value;

use crate::{CaptionRecord, DataError};

/// Parses the JSON text; `path` names it in errors. Records follow the annotations' order and are
/// numbered by their position there; the image is its `file_name`.
///
/// # Errors
/// [`DataError::Malformed`] for invalid JSON, a missing field, or an annotation whose image is not
/// in `images`; [`DataError::Empty`] without annotations.
pub fn parse(text: &str, path: &str) -> Result<Vec<CaptionRecord>, DataError> {
    let malformed = |line: u64, problem: String| DataError::Malformed { path: path.to_string(), line, problem };
    let document: Value =
        serde_json::from_str(text).map_err(|e| malformed(e.line() as u64, format!("invalid JSON: {e}")))?;
    let list = |key: &str| {
        document.get(key).and_then(Value::as_array).ok_or_else(|| malformed(1, format!("no \"{key}\" list")))
    };
    let mut files: HashMap<String, &str> = HashMap::new();
    for (index, image) in list("images")?.iter().enumerate() {
        let id = image
            .get("id")
            .map(Value::to_string)
            .ok_or_else(|| malformed(1, format!("image #{index} has no \"id\"")))?;
        let file = image.get("file_name").and_then(Value::as_str);
        files.insert(id, file.ok_or_else(|| malformed(1, format!("image #{index} has no \"file_name\"")))?);
    }
    let mut records = Vec::new();
    for (index, annotation) in list("annotations")?.iter().enumerate() {
        let at = |problem: String| malformed(1, format!("annotation #{index}: {problem}"));
        let id = annotation.get("image_id").map(Value::to_string).ok_or_else(|| at("no \"image_id\"".into()))?;
        let file = files.get(&id).ok_or_else(|| at(format!("image {id} is not in \"images\"")))?;
        let caption = annotation.get("caption").and_then(Value::as_str).ok_or_else(|| at("no \"caption\"".into()))?;
        if caption.trim().is_empty() {
            return Err(at("an empty caption".into()));
        }
        records.push(CaptionRecord {
            image: file.to_string(),
            caption: caption.to_string(),
            line: index as u64 + 1,
            split: None,
        });
    }
    super::non_empty(records, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_of_unknown_images_are_errors() {
        let json = r#"{"images": [{"id": 1, "file_name": "1.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]}"#;
        assert!(parse(json, "c.json").unwrap_err().to_string().contains("image 2 is not in"));
        let empty = r#"{"images": [{"id": 1, "file_name": "1.jpg"}], "annotations": [{"image_id": 1, "caption": ""}]}"#;
        assert!(parse(empty, "c.json").unwrap_err().to_string().contains("annotation #0: an empty caption"));
    }
}
