//! Inference-only convolution on the CPU for float32 NCHW tensors, optionally followed by
//! eval-mode BatchNorm + ReLU in the same pass.
//!
//! candle's CPU convolution converts its input to NHWC and builds im2col tiles element by element,
//! then copies the product back to NCHW the same way; in Inception v3 those copies took more time
//! than the matrix products. Here each task takes one image and a band of output rows, builds its
//! im2col rows in PyTorch's weight order (channel, kernel row, kernel column) with contiguous row
//! copies, multiplies with the `gemm` crate (candle's own) straight into the NCHW output, and
//! applies BatchNorm's `x·scale + shift` and ReLU while the band is still in cache. A 1×1
//! convolution with stride 1 multiplies the input in place.
//!
//! No gradient flows through it: [`BasicConv2d`](crate::BasicConv2d) uses it only where no
//! backward pass is wanted.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::with_host_slices;

/// Floats of im2col rows per task (1 MB: about what a core's cache keeps close).
const COLUMNS_BUDGET: usize = 256 * 1024;

/// The output pointer shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: tasks write disjoint regions (one image's band of rows each) and the buffer outlives them.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

impl Output {
    /// The pointer `offset` floats further (a method, so that closures capture the whole `Output`).
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Dimensions of an NCHW tensor: images, channels, height, width.
pub(crate) type Nchw = (usize, usize, usize, usize);

/// What is applied to each output channel after the convolution, while it is in cache.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// `relu(y · scale[c] + shift[c])`: eval-mode BatchNorm and ReLU.
    ScaleShiftRelu(&'a Tensor, &'a Tensor),
    /// Nothing.
    None,
}

/// `conv(x, weight)` with zero padding `padding` (rows, columns) and `stride`, then `epilogue`:
/// the output's values (NCHW) and dimensions, left as a vector so that a caller can keep working
/// on them in place. Every tensor is float32 in CPU memory ([`choose`](crate::backend::choose())).
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: (usize, usize),
    epilogue: Epilogue,
) -> Result<(Vec<f32>, Nchw)> {
    let (batch, channels, height, width) = x.dims4()?;
    let (out_channels, weight_channels, kernel_h, kernel_w) = weight.dims4()?;
    if weight_channels != channels {
        candle_core::bail!("convolution: input has {channels} channels, the weight expects {weight_channels}");
    }
    let padded = (height + 2 * padding.0, width + 2 * padding.1);
    if padded.0 < kernel_h || padded.1 < kernel_w {
        candle_core::bail!("convolution: input {height}×{width} smaller than its {kernel_h}×{kernel_w} kernel");
    }
    let geometry = Geometry {
        channels,
        height,
        width,
        kernel: (kernel_h, kernel_w),
        stride,
        padding,
        out_h: (padded.0 - kernel_h) / stride + 1,
        out_w: (padded.1 - kernel_w) / stride + 1,
    };
    // The input and weight are read in place (no copy of the 88 MB of weights per forward).
    with_host_slices(&[x, weight], |slices| convolve(slices[0], slices[1], batch, out_channels, &geometry, epilogue))
}

/// [`conv2d`] on the input's and the weight's data.
fn convolve(
    input: &[f32],
    weight: &[f32],
    batch: usize,
    out_channels: usize,
    geometry: &Geometry,
    epilogue: Epilogue,
) -> Result<(Vec<f32>, Nchw)> {
    let Geometry { channels, height, width, kernel: (kernel_h, kernel_w), stride, padding, .. } = *geometry;
    let affine = match epilogue {
        Epilogue::ScaleShiftRelu(scale, shift) => Some((scale.to_vec1::<f32>()?, shift.to_vec1::<f32>()?)),
        Epilogue::None => None,
    };
    let out_plane = geometry.out_h * geometry.out_w;
    let mut output = vec![0.0f32; batch * out_channels * out_plane];

    let k = channels * kernel_h * kernel_w;
    let rows_per_band = (COLUMNS_BUDGET / (k * geometry.out_w).max(1)).clamp(1, geometry.out_h);
    let bands = geometry.out_h.div_ceil(rows_per_band);
    let threads = rayon::current_num_threads();
    // Few tasks (one small image): the matrix product itself runs on all threads.
    let parallelism =
        if batch * bands >= threads { gemm::Parallelism::None } else { gemm::Parallelism::Rayon(threads) };
    let out = Output(output.as_mut_ptr());
    (0..batch * bands).into_par_iter().for_each(|task| {
        let (image, band) = (task / bands, task % bands);
        let rows = band * rows_per_band..((band + 1) * rows_per_band).min(geometry.out_h);
        let pixels = rows.len() * geometry.out_w;
        let image_input = &input[image * channels * height * width..][..channels * height * width];
        let direct = kernel_h == 1 && kernel_w == 1 && stride == 1 && padding == (0, 0);
        let columns;
        let (rhs, rhs_rs) = if direct {
            (image_input[rows.start * geometry.out_w..].as_ptr(), (height * width) as isize)
        } else {
            columns = geometry.im2col(image_input, rows.clone());
            (columns.as_ptr(), pixels as isize)
        };
        let first = image * out_channels * out_plane + rows.start * geometry.out_w;
        // SAFETY: `lhs` is out_channels × k (the contiguous weight); `rhs` is k × pixels with row
        // stride `rhs_rs` inside `image_input` or `columns`; the destination rows start at `first`
        // with stride `out_plane` and hold `pixels` floats each, inside `output`, a region no
        // other task writes.
        unsafe {
            gemm::gemm(
                out_channels,
                pixels,
                k,
                out.at(first),
                1,
                out_plane as isize,
                false,
                weight.as_ptr(),
                1,
                k as isize,
                rhs,
                1,
                rhs_rs,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
            if let Some((scale, shift)) = &affine {
                for channel in 0..out_channels {
                    let values = std::slice::from_raw_parts_mut(out.at(first + channel * out_plane), pixels);
                    let (a, b) = (scale[channel], shift[channel]);
                    values.iter_mut().for_each(|v| *v = (*v * a + b).max(0.0));
                }
            }
        }
    });
    Ok((output, (batch, out_channels, geometry.out_h, geometry.out_w)))
}

/// A convolution's shapes.
#[derive(Clone, Copy)]
struct Geometry {
    channels: usize,
    height: usize,
    width: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: (usize, usize),
    out_h: usize,
    out_w: usize,
}

impl Geometry {
    /// im2col of one image (channels × height × width) for output rows `rows`: row
    /// `(c · kernel_h + i) · kernel_w + j` holds, for each output pixel of the band, the input at
    /// channel `c` under kernel tap `(i, j)` (zero in the padding).
    fn im2col(&self, image: &[f32], rows: std::ops::Range<usize>) -> Vec<f32> {
        let (kernel_h, kernel_w) = self.kernel;
        let pixels = rows.len() * self.out_w;
        let mut columns = vec![0.0f32; self.channels * kernel_h * kernel_w * pixels];
        let mut chunks = columns.chunks_mut(pixels);
        for channel in 0..self.channels {
            let plane = &image[channel * self.height * self.width..][..self.height * self.width];
            for i in 0..kernel_h {
                for j in 0..kernel_w {
                    let column = chunks.next().expect("one row per channel and tap");
                    // Output columns x whose input column x·stride + j − pad_w lies inside the image.
                    let x_first = self.padding.1.saturating_sub(j).div_ceil(self.stride);
                    let x_end = (self.width + self.padding.1).saturating_sub(j).div_ceil(self.stride).min(self.out_w);
                    for (at, y) in rows.clone().enumerate() {
                        let in_y = (y * self.stride + i) as isize - self.padding.0 as isize;
                        if in_y < 0 || in_y as usize >= self.height || x_first >= x_end {
                            continue;
                        }
                        let source = &plane[in_y as usize * self.width..][..self.width];
                        let target = &mut column[at * self.out_w..][..self.out_w];
                        let in_x = x_first * self.stride + j - self.padding.1;
                        if self.stride == 1 {
                            target[x_first..x_end].copy_from_slice(&source[in_x..in_x + (x_end - x_first)]);
                        } else {
                            for (t, s) in
                                target[x_first..x_end].iter_mut().zip(source[in_x..].iter().step_by(self.stride))
                            {
                                *t = *s;
                            }
                        }
                    }
                }
            }
        }
        columns
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// candle's convolution, BatchNorm's affine map and ReLU, composed.
    fn reference(
        x: &Tensor,
        w: &Tensor,
        stride: usize,
        padding: (usize, usize),
        scale: &Tensor,
        shift: &Tensor,
    ) -> Tensor {
        let padded =
            x.pad_with_zeros(2, padding.0, padding.0).unwrap().pad_with_zeros(3, padding.1, padding.1).unwrap();
        let c = scale.dim(0).unwrap();
        padded
            .conv2d(w, 0, stride, 1, 1)
            .unwrap()
            .broadcast_mul(&scale.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&shift.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
            .relu()
            .unwrap()
    }

    #[test]
    fn equals_candle_for_every_inception_shape() {
        // (channels in, out, kernel, stride, padding, input size) as Inception v3 uses them,
        // small; batch 3 so that tasks split images and bands.
        let cases = [
            (3, 8, (3, 3), 2, (0, 0), 17),
            (8, 6, (3, 3), 1, (0, 0), 15),
            (8, 6, (3, 3), 1, (1, 1), 15),
            (5, 7, (1, 1), 1, (0, 0), 9),
            (5, 7, (1, 7), 1, (0, 3), 9),
            (5, 7, (7, 1), 1, (3, 0), 9),
            (5, 7, (1, 3), 1, (0, 1), 8),
            (5, 7, (3, 1), 1, (1, 0), 8),
            (4, 6, (5, 5), 1, (2, 2), 11),
            (6, 4, (3, 3), 2, (0, 0), 16),
            (6, 4, (1, 1), 2, (0, 0), 7),
            // Wide enough that one image is split into bands of rows.
            (64, 3, (3, 3), 1, (1, 1), 40),
        ];
        for (cin, cout, kernel, stride, padding, size) in cases {
            let count = 3 * cin * size * size;
            let x = Tensor::from_vec(
                (0..count).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect(),
                (3, cin, size, size),
                &Device::Cpu,
            )
            .unwrap();
            let wcount = cout * cin * kernel.0 * kernel.1;
            let w = Tensor::from_vec(
                (0..wcount).map(|i| ((i * 104_729 % 997) as f32 / 498.5) - 1.0).collect(),
                (cout, cin, kernel.0, kernel.1),
                &Device::Cpu,
            )
            .unwrap();
            let scale =
                Tensor::from_vec((0..cout).map(|c| 0.5 + c as f32 * 0.1).collect(), cout, &Device::Cpu).unwrap();
            let shift =
                Tensor::from_vec((0..cout).map(|c| c as f32 * 0.3 - 1.0).collect(), cout, &Device::Cpu).unwrap();
            let (values, dims) = conv2d(&x, &w, stride, padding, Epilogue::ScaleShiftRelu(&scale, &shift)).unwrap();
            let got = Tensor::from_vec(values, dims, &Device::Cpu).unwrap();
            let want = reference(&x, &w, stride, padding, &scale, &shift);
            assert_eq!(got.dims(), want.dims(), "{cin}→{cout} {kernel:?} s{stride} p{padding:?}");
            let difference = (&got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale_max = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(
                difference <= 1e-5 * scale_max.max(1.0),
                "{cin}→{cout} {kernel:?} s{stride} p{padding:?}: {difference}"
            );
            assert!(scale_max > 0.0);
        }
    }
}
