//! A training batch for the training-pass tests (tests/training_pass.rs, tests/cuda_backend.rs).

use candle_core::{Device, Tensor};

/// The PAD token of these batches.
pub const PAD: u32 = 0;

/// Pooled features (batch × 2048, non-negative like real ones) and PAD-padded captions (steps ×
/// batch) of mixed lengths, not sorted, with one caption running the full length; in batches of
/// four or more, caption 2 is PAD only and caption 3 has a PAD inside.
pub fn batch(batch: usize, steps: usize, vocab: usize) -> (Tensor, Tensor) {
    let pooled: Vec<f32> = (0..batch * 2048).map(|i| ((i as f32 * 0.618).sin() + 1.0) * 0.5).collect();
    let mut ids = vec![PAD; steps * batch];
    for b in 0..batch {
        let length = if batch >= 4 && b == 2 { 0 } else { steps - (b * 2) % steps.min(5) };
        for t in 0..length {
            ids[t * batch + b] = 1 + ((t * 31 + b * 17) % (vocab - 1)) as u32;
        }
    }
    if batch >= 4 && steps >= 3 {
        ids[batch + 3] = PAD;
    }
    (
        Tensor::from_vec(pooled, (batch, 2048), &Device::Cpu).unwrap(),
        Tensor::from_vec(ids, (steps, batch), &Device::Cpu).unwrap(),
    )
}
