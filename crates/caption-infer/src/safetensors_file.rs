//! safetensors files as this crate reads and writes them: a bounded size, tensors sorted by name
//! (the same tensors give the same bytes), and what is wrong with a file that does not read, as a
//! person would say it.

use std::collections::HashMap;

use candle_core::Tensor;

/// Largest model.safetensors read (Inception v3 with a decoder is about 100 MB).
pub const MAX_MODEL_FILE_BYTES: u64 = 16 << 30;

/// Model tensors by name.
pub type Tensors = HashMap<String, Tensor>;

/// `tensors` as the bytes of a safetensors file, sorted by name (the same tensors give the same
/// bytes), with `metadata`.
///
/// # Errors
/// A message when the tensors cannot be serialised.
pub fn serialize_sorted(tensors: &Tensors, metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>, String> {
    let mut sorted: Vec<(&String, &Tensor)> = tensors.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    safetensors::serialize(sorted, metadata).map_err(|e| e.to_string())
}

/// What is wrong with bytes that do not read as safetensors, as a person would say it: text, too
/// short, cut short, or the library's own words.
pub fn safetensors_problem(bytes: &[u8], error: &safetensors::SafeTensorError) -> String {
    let Some(length) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))) else {
        return format!("not a safetensors file: {} bytes, fewer than a header's 8", bytes.len());
    };
    let head = &bytes[..bytes.len().min(512)];
    if head.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        return "not a safetensors file: it is text".into();
    }
    if bytes.get(8) == Some(&b'{') && length > (bytes.len() as u64).saturating_sub(8) {
        return format!("cut short: its header alone says {length} bytes, the file has {}", bytes.len());
    }
    if bytes.get(8) == Some(&b'{') && matches!(error, safetensors::SafeTensorError::MetadataIncompleteBuffer) {
        return format!("cut short: the tensors its header lists need more than the file's {} bytes", bytes.len());
    }
    format!("not a safetensors file ({error})")
}
