//! Pillow's bilinear resampling of 8-bit images (`Image.resize(size, Image.BILINEAR)`, which
//! torchvision's `Resize` runs on PIL images), bit for bit: the same antialiased filter support,
//! the same coefficients rounded to 22-bit fixed point, the same two passes (horizontal, then
//! vertical) with the intermediate image rounded to 8 bits, the same rounding and clipping.
//! Ported from Pillow's `libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
//! `ImagingResampleHorizontal_8bpc`, `ImagingResampleVertical_8bpc`, `ImagingResampleInner`).
//!
//! Exactness matters more than it seems: a network with random or lightly trained weights can
//! turn one 8-bit level of difference in 0.3 % of the pixels into a 15 % change of its features,
//! and another caption.

use image::RgbImage;

/// Fixed-point precision of the coefficients (`PRECISION_BITS` = 32 − 8 − 2): a sum of 8-bit
/// values times weights that add up to 2^22 stays far inside `i32` (the sums below wrap only in
/// name, so that overflow checks in the dev profile do not stop vectorisation).
const PRECISION_BITS: u32 = 22;

/// Where each output sample reads its inputs and with which weights.
struct Coefficients {
    /// Per output sample: first input index and the number of inputs.
    bounds: Vec<(usize, usize)>,
    /// Per output sample, `size` fixed-point weights (unused ones 0).
    weights: Vec<i32>,
    /// Weights per output sample.
    size: usize,
}

/// The triangle filter (`bilinear_filter`), support 1.
fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// `precompute_coeffs` and `normalize_coeffs_8bpc` for resampling `in_size` samples (the box
/// 0..in_size) to `out_size`.
fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    let size = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * size];
    let mut row = vec![0f64; size];
    for xx in 0..out_size {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        let inverse = 1.0 / filter_scale;
        // C's (int) truncates toward zero; the values are rounded by the + 0.5 first.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut total = 0.0;
        for (x, weight) in row.iter_mut().enumerate().take(xmax) {
            *weight = bilinear((x as f64 + xmin as f64 - center + 0.5) * inverse);
            total += *weight;
        }
        for (x, weight) in row.iter().enumerate().take(xmax) {
            let normalised = if total != 0.0 { weight / total } else { *weight };
            let fixed = normalised * f64::from(1u32 << PRECISION_BITS);
            weights[xx * size + x] = if fixed < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        bounds.push((xmin, xmax));
    }
    Coefficients { bounds, weights, size }
}

/// A fixed-point sum back to 8 bits (`clip8`).
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `image` to `width` × `height` as Pillow's `resize(..., BILINEAR)` does.
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { resize_avx2(image, width, height) };
    }
    resize(image, width, height)
}

/// [`resize`] compiled for AVX2 (its integer sums vectorise 8 wide; the results are the same).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_avx2(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize(image, width, height)
}

/// The two passes.
#[inline(always)]
fn resize(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_width, in_height) = (image.width() as usize, image.height() as usize);
    let (out_width, out_height) = (width as usize, height as usize);
    let horizontal = coefficients(in_width, out_width);
    let vertical = coefficients(in_height, out_height);
    let half = 1i32 << (PRECISION_BITS - 1);

    // The horizontal pass covers only the rows the vertical pass reads.
    let (first_row, rows) = if in_width != out_width {
        let first = vertical.bounds[0].0;
        let (last_start, last_count) = vertical.bounds[out_height - 1];
        (first, last_start + last_count - first)
    } else {
        (0, in_height)
    };
    let source = image.as_raw();
    let mut between: Vec<u8>;
    let (rows_data, row_width): (&[u8], usize) = if in_width != out_width {
        between = vec![0u8; rows * out_width * 3];
        for y in 0..rows {
            let input = &source[(first_row + y) * in_width * 3..(first_row + y + 1) * in_width * 3];
            let output = &mut between[y * out_width * 3..(y + 1) * out_width * 3];
            let samples = horizontal.bounds.iter().zip(horizontal.weights.chunks_exact(horizontal.size));
            for ((&(xmin, count), weights), out) in samples.zip(output.chunks_exact_mut(3)) {
                let (mut red, mut green, mut blue) = (half, half, half);
                for (pixel, &weight) in input[xmin * 3..(xmin + count) * 3].chunks_exact(3).zip(weights) {
                    red = red.wrapping_add(i32::from(pixel[0]).wrapping_mul(weight));
                    green = green.wrapping_add(i32::from(pixel[1]).wrapping_mul(weight));
                    blue = blue.wrapping_add(i32::from(pixel[2]).wrapping_mul(weight));
                }
                out.copy_from_slice(&[clip8(red), clip8(green), clip8(blue)]);
            }
        }
        (&between, out_width)
    } else {
        (source.as_slice(), in_width)
    };
    if in_height == out_height {
        let pixels = rows_data[..in_height * row_width * 3].to_vec();
        return RgbImage::from_raw(width, height, pixels).expect("the buffer holds width × height RGB pixels");
    }
    let mut out = vec![0u8; out_width * out_height * 3];
    let stride = row_width * 3;
    // Row by row (the same sums as Pillow's column-wise loop, in an order the compiler vectorises).
    let mut sums = vec![0i32; stride];
    let rows_of = vertical.bounds.iter().zip(vertical.weights.chunks_exact(vertical.size));
    for ((&(ymin, count), weights), output) in rows_of.zip(out.chunks_exact_mut(stride)) {
        let top = ymin - if in_width != out_width { first_row } else { 0 };
        sums.fill(half);
        for (row, &weight) in rows_data[top * stride..(top + count) * stride].chunks_exact(stride).zip(weights) {
            for (sum, &value) in sums.iter_mut().zip(row) {
                *sum = sum.wrapping_add(i32::from(value).wrapping_mul(weight));
            }
        }
        for (sample, &sum) in output.iter_mut().zip(&sums) {
            *sample = clip8(sum);
        }
    }
    RgbImage::from_raw(width, height, out).expect("the buffer holds width × height RGB pixels")
}
