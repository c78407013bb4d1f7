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

/// The two passes. Both run as one kernel ([`weigh_lines`]) over lines laid side by side in
/// memory: the vertical pass over rows, the horizontal pass over the columns of the transposed
/// image (then transposed back), so that both vectorise. Integer sums are exact in any order, so
/// the result is Pillow's.
#[inline(always)]
fn resize(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_width, in_height) = (image.width() as usize, image.height() as usize);
    let (out_width, out_height) = (width as usize, height as usize);
    let vertical = coefficients(in_height, out_height);
    let source = image.as_raw();

    let horizontal_pass;
    let (rows, first_row): (&[u8], usize) = if in_width != out_width {
        // Only the rows the vertical pass reads.
        let first = vertical.bounds[0].0;
        let (last_start, last_count) = vertical.bounds[out_height - 1];
        let used = &source[first * in_width * 3..(last_start + last_count) * in_width * 3];
        let count = last_start + last_count - first;
        let columns = transpose(used, count, in_width);
        let resized = weigh_lines(&columns, count * 3, &coefficients(in_width, out_width));
        horizontal_pass = transpose(&resized, out_width, count);
        (&horizontal_pass, first)
    } else {
        (source.as_slice(), 0)
    };
    let pixels = if in_height == out_height {
        rows[..in_height * out_width * 3].to_vec()
    } else {
        let shifted = Coefficients {
            bounds: vertical.bounds.iter().map(|&(start, count)| (start - first_row, count)).collect(),
            ..vertical
        };
        weigh_lines(rows, out_width * 3, &shifted)
    };
    RgbImage::from_raw(width, height, pixels).expect("the buffer holds width × height RGB pixels")
}

/// One resampling pass: output line `i` is the weighted sum of input lines
/// `bounds[i].0 .. bounds[i].0 + bounds[i].1` (each `line_len` bytes, laid one after another),
/// rounded and clipped to 8 bits as Pillow does.
#[inline(always)]
fn weigh_lines(lines: &[u8], line_len: usize, coefficients: &Coefficients) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; coefficients.bounds.len() * line_len];
    let mut sums = vec![0i32; line_len];
    let samples = coefficients.bounds.iter().zip(coefficients.weights.chunks_exact(coefficients.size));
    for ((&(start, count), weights), output) in samples.zip(out.chunks_exact_mut(line_len)) {
        sums.fill(half);
        for (line, &weight) in lines[start * line_len..(start + count) * line_len].chunks_exact(line_len).zip(weights) {
            for (sum, &value) in sums.iter_mut().zip(line) {
                *sum = sum.wrapping_add(i32::from(value).wrapping_mul(weight));
            }
        }
        for (sample, &sum) in output.iter_mut().zip(&sums) {
            *sample = clip8(sum);
        }
    }
    out
}

/// An RGB image of `rows` × `columns` pixels, transposed: pixel (y, x) moves to (x, y).
#[inline(always)]
fn transpose(pixels: &[u8], rows: usize, columns: usize) -> Vec<u8> {
    // In tiles, so that both the rows read and the columns written stay in the cache.
    const TILE: usize = 32;
    let (source, _) = pixels.as_chunks::<3>();
    let mut out = vec![[0u8; 3]; rows * columns];
    for row_tile in (0..rows).step_by(TILE) {
        for column_tile in (0..columns).step_by(TILE) {
            let column_end = (column_tile + TILE).min(columns);
            for y in row_tile..(row_tile + TILE).min(rows) {
                let mut to = column_tile * rows + y;
                for &pixel in &source[y * columns + column_tile..y * columns + column_end] {
                    out[to] = pixel;
                    to += rows;
                }
            }
        }
    }
    out.into_flattened()
}
