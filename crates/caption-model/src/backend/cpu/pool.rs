//! Inception's two 3×3 pools on the CPU without a backward pass: the average pool with stride 1,
//! zero padding 1 and `count_include_pad=True` (always divided by 9), and the max pool with stride
//! 2 and no padding, each a pass over every channel plane in parallel.
//!
//! Through candle the average pool first padded the tensor (two copies) and both ran candle's
//! generic pooling loops; in Inception v3's eval forward these took about a tenth of the time.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::with_host_slices;

/// Which pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// `avg_pool2d(x, 3, stride=1, padding=1)`, `count_include_pad=True`.
    Average3x3Same,
    /// `max_pool2d(x, 3, stride=2)`.
    Max3x3Stride2,
}

/// The pool of `x` (N × C × H × W, float32 in CPU memory: [`choose`](crate::backend::choose())).
///
/// # Errors
/// An input smaller than the max pool's window, or a tensor that is not four-dimensional.
pub(crate) fn pool(x: &Tensor, pool: Pool) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (out_h, out_w) = match pool {
        Pool::Average3x3Same => (h, w),
        Pool::Max3x3Stride2 => {
            if h < 3 || w < 3 {
                candle_core::bail!("max pool 3x3: input {h}x{w} is smaller than the kernel");
            }
            ((h - 3) / 2 + 1, (w - 3) / 2 + 1)
        }
    };
    let output = with_host_slices(&[x], |input| Ok(pooled(input[0], pool, (n, c, h, w), (out_h, out_w))))?;
    Tensor::from_vec(output, (n, c, out_h, out_w), x.device())
}

/// The pool of one N × C × H × W input's data to `out_h` × `out_w` planes.
fn pooled(
    input: &[f32],
    pool: Pool,
    (n, c, h, w): (usize, usize, usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<f32> {
    let mut output = vec![0f32; n * c * out_h * out_w];
    if !output.is_empty() {
        output.par_chunks_mut(out_h * out_w).zip(input.par_chunks(h * w)).for_each(|(out, plane)| match pool {
            Pool::Average3x3Same => average_3x3_same(plane, h, w, out),
            Pool::Max3x3Stride2 => max_3x3_stride_2(plane, w, out_w, out),
        });
    }
    output
}

/// One plane's 3×3 average with zero padding: sums of three along each row, then of three rows.
fn average_3x3_same(plane: &[f32], h: usize, w: usize, out: &mut [f32]) {
    let mut row_sums = vec![0f32; h * w];
    for (sums, row) in row_sums.chunks_exact_mut(w).zip(plane.chunks_exact(w)) {
        for x in 0..w {
            let left = if x > 0 { row[x - 1] } else { 0.0 };
            let right = if x + 1 < w { row[x + 1] } else { 0.0 };
            sums[x] = left + row[x] + right;
        }
    }
    for y in 0..h {
        let out_row = &mut out[y * w..][..w];
        out_row.copy_from_slice(&row_sums[y * w..][..w]);
        for neighbour in [y.checked_sub(1), Some(y + 1).filter(|&below| below < h)].into_iter().flatten() {
            out_row.iter_mut().zip(&row_sums[neighbour * w..][..w]).for_each(|(o, s)| *o += s);
        }
        out_row.iter_mut().for_each(|o| *o /= 9.0);
    }
}

/// One plane's 3×3 maximum with stride 2 (`out_w` columns; as many rows as `out` holds).
fn max_3x3_stride_2(plane: &[f32], w: usize, out_w: usize, out: &mut [f32]) {
    for (oy, out_row) in out.chunks_exact_mut(out_w).enumerate() {
        let rows = [0, 1, 2].map(|dy| &plane[(2 * oy + dy) * w..][..w]);
        for (ox, o) in out_row.iter_mut().enumerate() {
            let mut max = f32::NEG_INFINITY;
            for row in &rows {
                for &v in &row[2 * ox..2 * ox + 3] {
                    max = max.max(v);
                }
            }
            *o = max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn input(n: usize, c: usize, h: usize, w: usize) -> Tensor {
        let values: Vec<f32> = (0..n * c * h * w).map(|i| ((i * 7919) % 1013) as f32 / 101.0 - 5.0).collect();
        Tensor::from_vec(values, (n, c, h, w), &Device::Cpu).unwrap()
    }

    fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Both pools equal candle's (padding first for the average, as PyTorch's count_include_pad),
    /// on odd and even sizes down to the smallest the windows allow.
    #[test]
    fn pools_equal_candles() {
        for (h, w) in [(35, 35), (17, 17), (8, 8), (3, 4), (1, 1), (2, 5)] {
            let x = input(2, 3, h, w);
            let ours = pool(&x, Pool::Average3x3Same).unwrap();
            let padded = x.pad_with_zeros(2, 1, 1).unwrap().pad_with_zeros(3, 1, 1).unwrap();
            let candle = padded.avg_pool2d_with_stride(3, 1).unwrap();
            assert!(largest_difference(&ours, &candle) < 1e-5, "average {h}x{w}");
            if h >= 3 && w >= 3 {
                let ours = pool(&x, Pool::Max3x3Stride2).unwrap();
                assert_eq!(largest_difference(&ours, &x.max_pool2d_with_stride(3, 2).unwrap()), 0.0, "max {h}x{w}");
            }
        }
        let error = pool(&input(1, 1, 2, 5), Pool::Max3x3Stride2).unwrap_err().to_string();
        assert!(error.contains("smaller than the kernel"), "{error}");
    }
}
