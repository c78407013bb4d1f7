//! How the parity tests compare a tensor with a PyTorch fixture's.

use candle_core::{DType, Tensor};

/// The largest difference between `actual` and `expected` relative to the largest magnitude of
/// `expected` (which must not be all zero: such a reference proves nothing).
pub fn relative(actual: &Tensor, expected: &Tensor) -> f64 {
    let actual = actual.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let expected = expected.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert_eq!(actual.len(), expected.len());
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "a zero reference proves nothing");
    actual.iter().zip(&expected).fold(0.0f64, |m, (a, e)| m.max((a - e).abs())) / scale
}
