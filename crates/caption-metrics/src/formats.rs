//! Readers for the files captions are scored from (feature `formats`).
//!
//! - JSON Lines, one object per line: `{"id": ..., "hypothesis": "text", "references": ["text", ...]}`;
//! - COCO style, pycocoevalcap's inputs: a results file `[{"image_id": ..., "caption": "..."}]` and
//!   an annotations file `captions_*.json` (`{"annotations": [{"image_id": ..., "caption": ...}]}`).
//!
//! Readers return raw text; tokenization is the caller's choice. Every problem is an error naming
//! the file (and line, for JSON Lines); nothing is skipped silently.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::Value;
use thiserror::Error;

/// Hypotheses and references read from evaluation files, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSet {
    /// Segment ids as written in the file (numbers are kept as their JSON text).
    pub ids: Vec<String>,
    /// One hypothesis per segment.
    pub hypotheses: Vec<String>,
    /// The references of each segment (at least one).
    pub references: Vec<Vec<String>>,
    /// Annotated images that have no result: pycocoevalcap does not score them either.
    pub unscored_annotations: usize,
}

/// Why an evaluation file could not be read.
#[derive(Debug, Error)]
pub enum FormatError {
    /// The file could not be read.
    #[error("cannot read {file}")]
    Io {
        /// The file's name.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line or file is not valid JSON.
    #[error("{file}:{line}: malformed JSON: {message}")]
    Json {
        /// The file's name.
        file: String,
        /// One-based line number (1 for whole-file JSON).
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A record lacks a field or has one of the wrong type.
    #[error("{file}:{line}: {problem}")]
    Record {
        /// The file's name.
        file: String,
        /// One-based line (JSON Lines) or record number (COCO files).
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A hypothesis has no reference.
    #[error("{file}:{line}: segment {id} has no references")]
    NoReferences {
        /// The file's name.
        file: String,
        /// One-based line or record number.
        line: usize,
        /// The segment's id.
        id: String,
    },
    /// The same id appears twice.
    #[error("{file}:{line}: id {id} appears twice (first on {first})")]
    DuplicateId {
        /// The file's name.
        file: String,
        /// One-based line or record number of the repeat.
        line: usize,
        /// The repeated id.
        id: String,
        /// One-based line or record number of the first occurrence.
        first: usize,
    },
    /// Results name images the annotations lack.
    #[error("{results}: {count} image id(s) are not in {annotations}, e.g. {example}")]
    UnknownImages {
        /// The results file.
        results: String,
        /// The annotations file.
        annotations: String,
        /// How many ids are unknown.
        count: usize,
        /// The first unknown id.
        example: String,
    },
    /// There is nothing to score.
    #[error("{file}: no segments")]
    Empty {
        /// The file's name.
        file: String,
    },
}

/// Reads JSON Lines with `id`, `hypothesis` and `references`; blank lines are allowed.
///
/// # Errors
/// [`FormatError`] naming `file` and the line of the first problem.
pub fn read_jsonl(reader: impl BufRead, file: &str) -> Result<EvalSet, FormatError> {
    let mut set = EvalSet { ids: Vec::new(), hypotheses: Vec::new(), references: Vec::new(), unscored_annotations: 0 };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let mut line = line.map_err(|source| FormatError::Io { file: file.to_string(), source })?;
        if index == 0 && line.starts_with('\u{feff}') {
            // A UTF-8 byte-order mark, as editors on Windows write one.
            line.drain(..'\u{feff}'.len_utf8());
        }
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(&line).map_err(|e| FormatError::Json {
            file: file.to_string(),
            line: line_number,
            message: e.to_string(),
        })?;
        let problem = |problem: String| FormatError::Record { file: file.to_string(), line: line_number, problem };
        let id = match record.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(v @ Value::Number(_)) => v.to_string(),
            Some(other) => return Err(problem(format!("\"id\" must be a string or a number, not {other}"))),
            None => return Err(problem("missing \"id\"".into())),
        };
        let hypothesis = match record.get("hypothesis") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(problem(format!("\"hypothesis\" must be a string, not {other}"))),
            None => return Err(problem("missing \"hypothesis\"".into())),
        };
        let references: Vec<String> = match record.get("references") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|r| {
                    r.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| problem(format!("a reference must be a string, not {r}")))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(problem(format!("\"references\" must be a list of strings, not {other}"))),
            None => return Err(problem("missing \"references\"".into())),
        };
        if references.is_empty() {
            return Err(FormatError::NoReferences { file: file.to_string(), line: line_number, id });
        }
        if let Some(&first) = seen.get(&id) {
            return Err(FormatError::DuplicateId { file: file.to_string(), line: line_number, id, first });
        }
        seen.insert(id.clone(), line_number);
        set.ids.push(id);
        set.hypotheses.push(hypothesis);
        set.references.push(references);
    }
    if set.ids.is_empty() {
        return Err(FormatError::Empty { file: file.to_string() });
    }
    Ok(set)
}

/// Reads a COCO results file against a COCO captions annotations file, as pycocoevalcap's
/// `COCOEvalCap` pairs them: every result image is scored against all its annotated captions, in
/// results order.
///
/// # Errors
/// [`FormatError`] for malformed JSON, a result image the annotations lack, an image with two
/// results, or an empty results file.
pub fn read_coco(
    results: &str,
    results_file: &str,
    annotations: &str,
    annotations_file: &str,
) -> Result<EvalSet, FormatError> {
    let parse = |text: &str, file: &str| -> Result<Value, FormatError> {
        serde_json::from_str(text).map_err(|e| FormatError::Json {
            file: file.to_string(),
            line: e.line(),
            message: e.to_string(),
        })
    };
    let annotations_json = parse(annotations, annotations_file)?;
    let records = annotations_json.get("annotations").and_then(Value::as_array).ok_or_else(|| FormatError::Record {
        file: annotations_file.to_string(),
        line: 1,
        problem: "expected an object with an \"annotations\" list (a COCO captions file)".into(),
    })?;
    let mut captions: HashMap<String, Vec<String>> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        let (image, caption) = image_and_caption(record, annotations_file, index + 1)?;
        captions.entry(image).or_default().push(caption);
    }

    let results_json = parse(results, results_file)?;
    let results_list = results_json.as_array().ok_or_else(|| FormatError::Record {
        file: results_file.to_string(),
        line: 1,
        problem: "expected a list of {\"image_id\", \"caption\"} objects (COCO results format)".into(),
    })?;
    let mut set = EvalSet { ids: Vec::new(), hypotheses: Vec::new(), references: Vec::new(), unscored_annotations: 0 };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut unknown: Vec<String> = Vec::new();
    for (index, record) in results_list.iter().enumerate() {
        let (image, caption) = image_and_caption(record, results_file, index + 1)?;
        if let Some(&first) = seen.get(&image) {
            return Err(FormatError::DuplicateId { file: results_file.to_string(), line: index + 1, id: image, first });
        }
        seen.insert(image.clone(), index + 1);
        match captions.get(&image) {
            Some(references) => {
                set.ids.push(image);
                set.hypotheses.push(caption);
                set.references.push(references.clone());
            }
            None => unknown.push(image),
        }
    }
    if let Some(example) = unknown.first() {
        return Err(FormatError::UnknownImages {
            results: results_file.to_string(),
            annotations: annotations_file.to_string(),
            count: unknown.len(),
            example: example.clone(),
        });
    }
    if set.ids.is_empty() {
        return Err(FormatError::Empty { file: results_file.to_string() });
    }
    set.unscored_annotations = captions.len() - set.ids.len();
    Ok(set)
}

/// `image_id` (string or number) and `caption` of a COCO record.
fn image_and_caption(record: &Value, file: &str, number: usize) -> Result<(String, String), FormatError> {
    let problem =
        |problem: &str| FormatError::Record { file: file.to_string(), line: number, problem: problem.to_string() };
    let image = match record.get("image_id") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => return Err(problem("record without a string or numeric \"image_id\"")),
    };
    let caption =
        record.get("caption").and_then(Value::as_str).ok_or_else(|| problem("record without a \"caption\" string"))?;
    Ok((image, caption.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_errors_name_the_line() {
        let text = "{\"id\": 1, \"hypothesis\": \"a\", \"references\": [\"a\"]}\n\n{\"id\": 2, \"hypothesis\": \"b\"\n";
        let error = read_jsonl(text.as_bytes(), "x.jsonl").unwrap_err();
        assert!(error.to_string().starts_with("x.jsonl:3: malformed JSON"), "{error}");
    }

    #[test]
    fn jsonl_refuses_missing_references_and_duplicates() {
        let empty = "{\"id\": \"a\", \"hypothesis\": \"x\", \"references\": []}\n";
        assert!(matches!(read_jsonl(empty.as_bytes(), "f"), Err(FormatError::NoReferences { line: 1, .. })));
        let twice = "{\"id\": 1, \"hypothesis\": \"x\", \"references\": [\"y\"]}\n{\"id\": 1, \"hypothesis\": \"x\", \"references\": [\"y\"]}";
        assert!(matches!(read_jsonl(twice.as_bytes(), "f"), Err(FormatError::DuplicateId { line: 2, first: 1, .. })));
        assert!(matches!(read_jsonl("\n".as_bytes(), "f"), Err(FormatError::Empty { .. })));
    }

    #[test]
    fn coco_pairs_results_with_annotations() {
        let annotations = r#"{"annotations": [{"image_id": 1, "id": 9, "caption": "a b"}, {"image_id": 1, "id": 10, "caption": "c"},
                               {"image_id": 2, "id": 11, "caption": "d"}]}"#;
        let set = read_coco(r#"[{"image_id": 1, "caption": "a"}]"#, "r.json", annotations, "a.json").unwrap();
        assert_eq!(set.references, vec![vec!["a b".to_string(), "c".to_string()]]);
        assert_eq!(set.unscored_annotations, 1);
        let unknown = read_coco(r#"[{"image_id": 3, "caption": "a"}]"#, "r.json", annotations, "a.json").unwrap_err();
        assert!(unknown.to_string().contains("1 image id(s) are not in a.json"), "{unknown}");
    }
}
