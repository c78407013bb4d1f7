//! Small-batch CPU kernels: rows of a matrix-vector product (each weight row a dot product with
//! each input row) for decoding, vectorised `exp`, `sigmoid` and `tanh`, and one row of the
//! softmax cross-entropy with its gradient.
//!
//! Decoding one image multiplies a 1 × 256 row by the decoder's weights 50 times; a general matrix
//! product spends most of that time packing and dispatching. These kernels read each weight row
//! once, in place, and are compiled for AVX-512 and for AVX2 + FMA (chosen at run time) with a
//! portable fallback. They are single-threaded: the caller splits the rows between threads.

use std::ops::Range;

/// One product term: `weights` (rows × `width`, row-major: PyTorch's `[out, in]`) times the
/// `inputs` rows (batch × `width`).
#[derive(Clone, Copy)]
pub(crate) struct Term<'a> {
    pub weights: &'a [f32],
    pub inputs: &'a [f32],
    pub width: usize,
}

/// `out[(j − rows.start) · batch + b] = Σ terms weights[j] · inputs[b] + Σ biases[j]` for `j` in
/// `rows` (output-major, then batch row). The biases are summed first, in the order given.
pub(crate) fn affine(terms: &[Term], biases: &[&[f32]], rows: Range<usize>, batch: usize, out: &mut [f32]) {
    debug_assert!(out.len() == rows.len() * batch);
    debug_assert!(terms.iter().all(|t| t.weights.len() >= rows.end * t.width && t.inputs.len() == batch * t.width));
    debug_assert!(biases.iter().all(|b| b.len() >= rows.end));
    rows_kernel()(terms, biases, rows.start, batch, out)
}

/// `x ← exp(x)` for every element.
pub(crate) fn exp_in_place(values: &mut [f32]) {
    map_kernel(Map::Exp)(values)
}

/// `x ← 1 / (1 + exp(−x))` for every element.
pub(crate) fn sigmoid_in_place(values: &mut [f32]) {
    map_kernel(Map::Sigmoid)(values)
}

/// `x ← tanh(x)` for every element.
pub(crate) fn tanh_in_place(values: &mut [f32]) {
    map_kernel(Map::Tanh)(values)
}

type RowsKernel = fn(&[Term], &[&[f32]], usize, usize, &mut [f32]);

/// The widest variant of [`rows`] this CPU runs.
fn rows_kernel() -> RowsKernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected just above.
            return |t, b, first, batch, out| unsafe { rows_avx512(t, b, first, batch, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return |t, b, first, batch, out| unsafe { rows_avx2(t, b, first, batch, out) };
        }
    }
    // SAFETY: the portable kernel needs no CPU feature.
    |t, b, first, batch, out| unsafe { rows::<Portable>(t, b, first, batch, out) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn rows_avx512(terms: &[Term], biases: &[&[f32]], first: usize, batch: usize, out: &mut [f32]) {
    // SAFETY: this function only runs where AVX-512F was detected.
    unsafe { rows::<x86::Avx512>(terms, biases, first, batch, out) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_avx2(terms: &[Term], biases: &[&[f32]], first: usize, batch: usize, out: &mut [f32]) {
    // SAFETY: this function only runs where AVX2 and FMA were detected.
    unsafe { rows::<x86::Avx2>(terms, biases, first, batch, out) }
}

/// Dot products of one input row with one or four weight rows (all of the input's length). Both
/// give every row the same result, to the bit, so that a row's value does not depend on how rows
/// are grouped.
///
/// # Safety
/// The methods may use vector instructions: call them only where the CPU has the features the
/// implementation names.
trait Dot {
    unsafe fn dot4(w: [&[f32]; 4], x: &[f32]) -> [f32; 4];

    /// One row: lane 0 of [`dot4`](Self::dot4) (rare: at most three rows per call of [`rows`]).
    #[inline(always)]
    unsafe fn dot(w: &[f32], x: &[f32]) -> f32 {
        // SAFETY: the caller's guarantee.
        unsafe { Self::dot4([w, w, w, w], x)[0] }
    }
}

/// Output rows `first..` into `out` (rows × batch), four weight rows at a time (each input load
/// then serves four rows).
///
/// # Safety
/// As [`Dot`]'s methods.
#[inline(always)]
unsafe fn rows<D: Dot>(terms: &[Term], biases: &[&[f32]], first: usize, batch: usize, out: &mut [f32]) {
    let count = out.len() / batch.max(1);
    let bias = |j: usize| biases.iter().fold(0.0f32, |sum, b| sum + b[j]);
    let mut offset = 0;
    while offset + 4 <= count {
        let j = first + offset;
        for b in 0..batch {
            let mut sums = [0.0f32; 4];
            for term in terms {
                let w = |k: usize| &term.weights[(j + k) * term.width..][..term.width];
                // SAFETY: the caller's guarantee.
                let dots = unsafe { D::dot4([w(0), w(1), w(2), w(3)], &term.inputs[b * term.width..][..term.width]) };
                for (sum, dot) in sums.iter_mut().zip(dots) {
                    *sum += dot;
                }
            }
            for (k, sum) in sums.into_iter().enumerate() {
                out[(offset + k) * batch + b] = sum + bias(j + k);
            }
        }
        offset += 4;
    }
    for offset in offset..count {
        let j = first + offset;
        for b in 0..batch {
            let mut sum = 0.0f32;
            for term in terms {
                let (w, x) =
                    (&term.weights[j * term.width..][..term.width], &term.inputs[b * term.width..][..term.width]);
                // SAFETY: the caller's guarantee.
                sum += unsafe { D::dot(w, x) };
            }
            out[offset * batch + b] = sum + bias(j);
        }
    }
}

/// Plain Rust over 8 independent lanes (for CPUs without the vector units the x86 variants use).
struct Portable;

impl Dot for Portable {
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        const LANES: usize = 8;
        let mut acc = [0.0f32; LANES];
        let (a_chunks, a_tail) = a.as_chunks::<LANES>();
        let (b_chunks, b_tail) = b.as_chunks::<LANES>();
        for (x, y) in a_chunks.iter().zip(b_chunks) {
            for lane in 0..LANES {
                acc[lane] += x[lane] * y[lane];
            }
        }
        let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
        (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
    }

    unsafe fn dot4(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
        // SAFETY: no CPU feature needed.
        w.map(|w| unsafe { Self::dot(w, x) })
    }
}

/// Dot products with x86 vector instructions: one vector accumulator per weight row.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Dot;

    /// 16 lanes, the tail through a masked load; needs AVX-512F.
    pub(super) struct Avx512;

    impl Dot for Avx512 {
        #[inline(always)]
        unsafe fn dot4(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
            let n = x.len();
            assert!(w.iter().all(|w| w.len() == n));
            // SAFETY: the caller has checked AVX-512F; every load reads lanes below `n` of slices
            // of length `n` (the tail through a mask).
            unsafe {
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                while i < n {
                    let mask: __mmask16 = if n - i >= 16 { 0xffff } else { (1u16 << (n - i)) - 1 };
                    let xv = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i));
                    for (acc, w) in acc.iter_mut().zip(w) {
                        *acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w.as_ptr().add(i)), xv, *acc);
                    }
                    i += 16;
                }
                acc.map(|acc| _mm512_reduce_add_ps(acc))
            }
        }
    }

    /// 8 lanes and a scalar tail; needs AVX2 and FMA.
    pub(super) struct Avx2;

    impl Dot for Avx2 {
        #[inline(always)]
        unsafe fn dot4(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
            let n = x.len();
            assert!(w.iter().all(|w| w.len() == n));
            let body = n - n % 8;
            // SAFETY: the caller has checked AVX2 and FMA; every vector load reads lanes below
            // `body <= n`.
            let sums = unsafe {
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i < body {
                    let xv = _mm256_loadu_ps(x.as_ptr().add(i));
                    for (acc, w) in acc.iter_mut().zip(w) {
                        *acc = _mm256_fmadd_ps(_mm256_loadu_ps(w.as_ptr().add(i)), xv, *acc);
                    }
                    i += 8;
                }
                acc.map(|v| {
                    let v = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
                    _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps(v, v, 1)))
                })
            };
            let tail = |w: &[f32]| w[body..].iter().zip(&x[body..]).map(|(a, b)| a * b).sum::<f32>();
            [sums[0] + tail(w[0]), sums[1] + tail(w[1]), sums[2] + tail(w[2]), sums[3] + tail(w[3])]
        }
    }
}

/// Multiply-add, fused where the CPU has FMA.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a * b + c` rounded once (compiled to FMA instructions inside the FMA variants).
struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// `a * b + c` rounded twice (no FMA instruction: a fused one would be a slow library call).
struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// An elementwise function.
#[derive(Clone, Copy)]
enum Map {
    Exp,
    Sigmoid,
    Tanh,
}

/// One row of the softmax cross-entropy's forward and backward pass: adds `bias` to the logits in
/// `row`, then turns the row into `scale · (softmax(row) − onehot(target))` and returns the row's
/// loss `logsumexp(row) − row[target]`. The sum and the maximum run over 16 lanes (a sum in one
/// register would wait on each addition's latency).
pub(crate) fn softmax_cross_entropy_row(row: &mut [f32], bias: &[f32], target: usize, scale: f32) -> f32 {
    match vector_width() {
        // SAFETY: `vector_width` detected the features.
        #[cfg(target_arch = "x86_64")]
        VectorWidth::Avx512 => unsafe { softmax_cross_entropy_row_avx512(row, bias, target, scale) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        VectorWidth::Avx2 => unsafe { softmax_cross_entropy_row_avx2(row, bias, target, scale) },
        VectorWidth::Portable => softmax_cross_entropy::<Separate>(row, bias, target, scale),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn softmax_cross_entropy_row_avx512(row: &mut [f32], bias: &[f32], target: usize, scale: f32) -> f32 {
    softmax_cross_entropy::<Fused>(row, bias, target, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_cross_entropy_row_avx2(row: &mut [f32], bias: &[f32], target: usize, scale: f32) -> f32 {
    softmax_cross_entropy::<Fused>(row, bias, target, scale)
}

/// Lanes of the row reductions.
const LANES: usize = 16;

#[inline(always)]
fn softmax_cross_entropy<M: MulAdd>(row: &mut [f32], bias: &[f32], target: usize, scale: f32) -> f32 {
    assert_eq!(row.len(), bias.len());
    let mut maxima = [f32::NEG_INFINITY; LANES];
    for (chunk, b) in row.chunks_exact_mut(LANES).zip(bias.chunks_exact(LANES)) {
        for ((x, b), m) in chunk.iter_mut().zip(b).zip(&mut maxima) {
            *x += b;
            *m = if *x > *m { *x } else { *m };
        }
    }
    let body = row.len() / LANES * LANES;
    let mut max = maxima.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (x, b) in row[body..].iter_mut().zip(&bias[body..]) {
        *x += b;
        max = max.max(*x);
    }
    let target_logit = row[target] - max;
    let mut sums = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (x, s) in chunk.iter_mut().zip(&mut sums) {
            *x = exp::<M>(*x - max);
            *s += *x;
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp::<M>(*x - max);
        sum += *x;
    }
    let factor = scale / sum;
    row.iter_mut().for_each(|x| *x *= factor);
    row[target] -= scale;
    sum.ln() - target_logit
}

/// The widest variant of [`map`] this CPU runs, for `f`.
fn map_kernel(f: Map) -> impl Fn(&mut [f32]) {
    let width = vector_width();
    move |values: &mut [f32]| match width {
        // SAFETY: `vector_width` detected the features.
        #[cfg(target_arch = "x86_64")]
        VectorWidth::Avx512 => unsafe { map_avx512(f, values) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        VectorWidth::Avx2 => unsafe { map_avx2(f, values) },
        VectorWidth::Portable => map::<Separate>(f, values),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn map_avx512(f: Map, values: &mut [f32]) {
    map::<Fused>(f, values)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn map_avx2(f: Map, values: &mut [f32]) {
    map::<Fused>(f, values)
}

/// The widest vector instructions this CPU runs that the elementwise kernels are compiled for.
#[derive(Clone, Copy)]
enum VectorWidth {
    /// AVX-512 with FMA.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 with FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Whatever the build targets.
    Portable,
}

/// This CPU's [`VectorWidth`].
fn vector_width() -> VectorWidth {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("fma") {
            return VectorWidth::Portable;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            return VectorWidth::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return VectorWidth::Avx2;
        }
    }
    VectorWidth::Portable
}

#[inline(always)]
fn map<M: MulAdd>(f: Map, values: &mut [f32]) {
    match f {
        Map::Exp => values.iter_mut().for_each(|x| *x = exp::<M>(*x)),
        Map::Sigmoid => values.iter_mut().for_each(|x| *x = 1.0 / (1.0 + exp::<M>(-*x))),
        // 1 − 2 / (e^{2x} + 1): within 1e-7 of tanh in absolute terms (relative error grows
        // only where |tanh x| < 1e-3, far below what an LSTM state resolves).
        Map::Tanh => values.iter_mut().for_each(|x| *x = 1.0 - 2.0 / (exp::<M>(2.0 * *x) + 1.0)),
    }
}

/// `e^x` within 2 ulp (Cephes' `expf`: x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-6
/// polynomial for e^r, then 2^n from the exponent bits), branch-free so that it vectorises.
/// Inputs are clamped to [−87.3, 88], where results are normal floats (2^n stays below 2^128).
#[inline(always)]
fn exp<M: MulAdd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 · 2^23 rounds to the nearest integer in float arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.0);
    let n = M::mul_add(x, LOG2E, ROUND) - ROUND;
    let r = M::mul_add(n, -LN2_LO, M::mul_add(n, -LN2_HI, x));
    let mut p = 1.987_569_1e-4;
    p = M::mul_add(p, r, 1.398_199_9e-3);
    p = M::mul_add(p, r, 8.333_452e-3);
    p = M::mul_add(p, r, 4.166_579_6e-2);
    p = M::mul_add(p, r, 1.666_666_5e-1);
    p = M::mul_add(p, r, 0.5);
    let e_r = M::mul_add(p, r * r, r) + 1.0;
    // n ∈ [−126, 127] after the clamp: the biased exponent fits. Wrapping arithmetic (no overflow
    // check in debug builds) keeps the loop vectorised.
    let two_n = f32::from_bits(((n as i32).wrapping_add(127) as u32).wrapping_shl(23));
    e_r * two_n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let inputs: Vec<f32> = (-87_000..88_000).map(|i| i as f32 * 1e-3 + 1.234e-4).collect();
        let mut values = inputs.clone();
        exp_in_place(&mut values);
        let mut portable = inputs.clone();
        map::<Separate>(Map::Exp, &mut portable);
        // The AVX2 variant too where the CPU has AVX-512 (which `exp_in_place` picks then).
        let mut avx2 = inputs.clone();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected just above.
            unsafe { map_avx2(Map::Exp, &mut avx2) };
        }
        for (((x, fast), slow), other) in inputs.iter().zip(&values).zip(&portable).zip(&avx2) {
            // libm's expf is itself within 1 ulp of e^x.
            let want = (*x as f64).exp() as f32;
            assert!(ulps(*fast, want) <= 2, "exp({x}) = {fast}, want {want}");
            assert!(ulps(*slow, want) <= 2, "portable exp({x}) = {slow}, want {want}");
            assert!(other == x || ulps(*other, want) <= 2, "AVX2 exp({x}) = {other}, want {want}");
        }
    }

    #[test]
    fn softmax_cross_entropy_rows_equal_float64() {
        for len in [1, 15, 16, 37, 2994] {
            let logits: Vec<f32> = (0..len).map(|i| ((i * 7919 % 1000) as f32 / 100.0 - 5.0) * 1.7).collect();
            let bias: Vec<f32> = (0..len).map(|i| (i as f32 * 0.3).sin()).collect();
            let target = len / 3;
            let mut row = logits.clone();
            let loss = softmax_cross_entropy_row(&mut row, &bias, target, 0.25);
            let z: Vec<f64> = logits.iter().zip(&bias).map(|(&x, &b)| f64::from(x) + f64::from(b)).collect();
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|x| (x - max).exp()).sum();
            let expected_loss = max + sum.ln() - z[target];
            assert!((f64::from(loss) - expected_loss).abs() < 1e-5 * expected_loss.max(1.0), "{len}: {loss}");
            for (i, (&g, x)) in row.iter().zip(&z).enumerate() {
                let expected = 0.25 * ((x - max).exp() / sum - if i == target { 1.0 } else { 0.0 });
                assert!((f64::from(g) - expected).abs() < 1e-7, "{len}, {i}: {g} vs {expected}");
            }
        }
    }

    #[test]
    fn sigmoid_and_tanh_are_within_float_precision() {
        let inputs: Vec<f32> = (-20_000..20_000).map(|i| i as f32 * 1e-3 + 3.3e-5).collect();
        let (mut sigmoid, mut tanh) = (inputs.clone(), inputs.clone());
        sigmoid_in_place(&mut sigmoid);
        tanh_in_place(&mut tanh);
        for ((x, s), t) in inputs.iter().zip(&sigmoid).zip(&tanh) {
            let x64 = *x as f64;
            assert!((*s as f64 - 1.0 / (1.0 + (-x64).exp())).abs() < 2e-7, "sigmoid({x}) = {s}");
            assert!((*t as f64 - x64.tanh()).abs() < 2e-7, "tanh({x}) = {t}");
        }
        let mut extremes = [-1e30f32, -100.0, 100.0, 1e30];
        tanh_in_place(&mut extremes);
        assert_eq!(extremes, [-1.0, -1.0, 1.0, 1.0]);
    }

    #[test]
    fn affine_equals_a_plain_sum_for_any_batch_and_width() {
        for (rows, width, batch) in [(1, 1, 1), (7, 33, 1), (70, 256, 3), (300, 100, 17)] {
            let w1: Vec<f32> = (0..rows * width).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let w2: Vec<f32> = (0..rows * 5).map(|i| (i % 7) as f32 - 3.0).collect();
            let x1: Vec<f32> = (0..batch * width).map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0).collect();
            let x2: Vec<f32> = (0..batch * 5).map(|i| i as f32 * 0.25).collect();
            let b1: Vec<f32> = (0..rows).map(|j| j as f32).collect();
            let b2: Vec<f32> = (0..rows).map(|j| -0.5 * j as f32).collect();
            let terms = [Term { weights: &w1, inputs: &x1, width }, Term { weights: &w2, inputs: &x2, width: 5 }];
            // The whole range, and a range from the middle.
            for range in [0..rows, rows / 3..rows] {
                let mut out = vec![0.0; range.len() * batch];
                affine(&terms, &[&b1, &b2], range.clone(), batch, &mut out);
                for j in range.clone() {
                    for b in 0..batch {
                        let mut want = b1[j] as f64 + b2[j] as f64;
                        want += (0..width).map(|k| w1[j * width + k] as f64 * x1[b * width + k] as f64).sum::<f64>();
                        want += (0..5).map(|k| w2[j * 5 + k] as f64 * x2[b * 5 + k] as f64).sum::<f64>();
                        let got = out[(j - range.start) * batch + b] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{rows}×{width}×{batch} [{j},{b}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_dot_product_variant_agrees() {
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 256, 259] {
            let row = |k: usize| (0..n).map(|i| (i as f32 * 0.7 + k as f32).sin()).collect::<Vec<f32>>();
            let w = [row(0), row(1), row(2), row(3)];
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 1.3).cos()).collect();
            let want = |k: usize| w[k].iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
            let close = |got: f32, k: usize| (got as f64 - want(k)).abs() <= 1e-5 * (n as f64).max(1.0);
            fn check<D: Dot>(w: &[Vec<f32>; 4], x: &[f32], close: impl Fn(f32, usize) -> bool, name: &str) {
                // SAFETY: every caller checks the features `D` needs.
                let four = unsafe { D::dot4([&w[0], &w[1], &w[2], &w[3]], x) };
                for k in 0..4 {
                    assert!(close(four[k], k), "{name} dot4, n = {}", x.len());
                    // SAFETY: as above.
                    assert_eq!(unsafe { D::dot(&w[k], x) }.to_bits(), four[k].to_bits(), "{name}: dot and dot4 differ");
                }
            }
            check::<Portable>(&w, &x, close, "portable");
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn check_avx512(w: &[Vec<f32>; 4], x: &[f32], close: impl Fn(f32, usize) -> bool) {
                    check::<x86::Avx512>(w, x, close, "AVX-512")
                }
                #[target_feature(enable = "avx2,fma")]
                fn check_avx2(w: &[Vec<f32>; 4], x: &[f32], close: impl Fn(f32, usize) -> bool) {
                    check::<x86::Avx2>(w, x, close, "AVX2")
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: detected.
                    unsafe { check_avx512(&w, &x, close) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: detected.
                    unsafe { check_avx2(&w, &x, close) };
                }
            }
        }
    }
}
