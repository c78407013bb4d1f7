//! Train-mode BatchNorm + ReLU on the CPU without a backward pass, as two loops the model's
//! `BatchNorm2d` composes around its own running-statistics update: each channel's batch mean and
//! biased variance gathered in float64 ([`channel_statistics`]), then `relu(x·scale + shift)` in
//! place ([`scale_shift_relu`]), each over the channels in parallel.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::conv::Nchw;

/// Each channel's mean and biased variance over float32 `values` (NCHW, `dims`), in float64.
pub(crate) fn channel_statistics(values: &[f32], (n, c, h, w): Nchw) -> Vec<(f64, f64)> {
    let plane = h * w;
    let count = (n * plane) as f64;
    (0..c)
        .into_par_iter()
        .map(|k| {
            // Channel `k`'s values, image after image, read in place.
            let data = || (0..n).flat_map(|image| &values[(image * c + k) * plane..][..plane]);
            let mean = data().map(|&v| v as f64).sum::<f64>() / count;
            let var = data().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / count;
            (mean, var)
        })
        .collect()
}

/// `relu(x·scale[c] + shift[c])` over `values` (NCHW, `dims`) in place, as a CPU tensor.
pub(crate) fn scale_shift_relu(
    mut values: Vec<f32>,
    scale: &[f32],
    shift: &[f32],
    (n, c, h, w): Nchw,
) -> Result<Tensor> {
    let plane = h * w;
    values.par_chunks_mut(plane).enumerate().for_each(|(at, values)| {
        let (a, b) = (scale[at % c], shift[at % c]);
        values.iter_mut().for_each(|v| *v = (*v * a + b).max(0.0));
    });
    Tensor::from_vec(values, (n, c, h, w), &candle_core::Device::Cpu)
}
