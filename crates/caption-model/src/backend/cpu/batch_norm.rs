//! Train-mode BatchNorm + ReLU on the CPU without a backward pass: the batch statistics of the
//! original mode's frozen-but-train-mode encoder, gathered by loops over each channel in parallel.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::conv::Nchw;
use crate::BatchNorm2d;

impl BatchNorm2d {
    /// Train mode followed by ReLU for float32 `values` (NCHW, `dims`) in CPU memory, without a
    /// backward pass: the same statistics and running-statistics update as
    /// [`forward_t`](candle_core::ModuleT::forward_t) with `train`, gathered and applied in place by plain
    /// loops over each channel (in parallel) instead of a dozen tensor operations over float64
    /// copies.
    pub(crate) fn batch_statistics_relu_cpu(&self, mut values: Vec<f32>, (n, c, h, w): Nchw) -> Result<Tensor> {
        let plane = h * w;
        let count = (n * plane) as f64;
        let statistics: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|k| {
                // Channel `k`'s values, image after image, read in place.
                let data = || (0..n).flat_map(|image| &values[(image * c + k) * plane..][..plane]);
                let mean = data().map(|&v| v as f64).sum::<f64>() / count;
                let var = data().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / count;
                (mean, var)
            })
            .collect();
        let device = &candle_core::Device::Cpu;
        let mean = Tensor::from_vec(statistics.iter().map(|s| s.0).collect::<Vec<_>>(), c, device)?;
        let var = Tensor::from_vec(statistics.iter().map(|s| s.1).collect::<Vec<_>>(), c, device)?;
        let (scale, shift) = self.train_scale_shift(&mean, &var, n * plane, DType::F32)?;
        let (scale, shift) = (scale.to_vec1::<f32>()?, shift.to_vec1::<f32>()?);
        values.par_chunks_mut(plane).enumerate().for_each(|(at, values)| {
            let (a, b) = (scale[at % c], shift[at % c]);
            values.iter_mut().for_each(|v| *v = (*v * a + b).max(0.0));
        });
        Tensor::from_vec(values, (n, c, h, w), device)
    }
}
