//! [`matmul`]: a bounds-checked matrix product over float32 slices, through the `gemm` crate
//! (candle's own CPU matrix product, built with its AVX-512 kernels), for CPU loops that keep their
//! data in plain vectors.

use std::ops::Range;

/// A read-only matrix over a slice: element `(r, c)` is `data[r · row_stride + c · col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// `data` as a row-major `rows × cols` matrix.
    ///
    /// # Panics
    /// When `data` holds fewer than `rows · cols` floats (a bug in the caller).
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "a {rows} × {cols} matrix over {} floats", data.len());
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// The rows in `range`.
    ///
    /// # Panics
    /// When `range` reaches past the last row.
    pub(crate) fn row_range(self, range: Range<usize>) -> Self {
        assert!(range.start <= range.end && range.end <= self.rows, "rows {range:?} of {}", self.rows);
        let data = if range.is_empty() { &self.data[..0] } else { &self.data[range.start * self.row_stride..] };
        Self { data, rows: range.len(), ..self }
    }
}

/// A row-major copy of the transpose of `data` (row-major `rows × cols`): products whose right
/// operand is a transposed view run ~2.5× slower in the `gemm` crate for a few rows on the left
/// than with the operand laid out row by row.
pub(crate) fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    transpose_into(data, rows, cols, &mut out);
    out
}

/// Writes the transpose of `data` (row-major `rows × cols`) into `out`, row-major `cols × rows`.
pub(crate) fn transpose_into(data: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    assert_eq!(data.len(), rows * cols, "a {rows} × {cols} matrix over {} floats", data.len());
    assert_eq!(out.len(), rows * cols, "a {cols} × {rows} matrix over {} floats", out.len());
    // Sixteen input rows at a time, read side by side along their columns: sixteen sequential
    // read streams, and each output row gets sixteen consecutive floats per visit.
    const BLOCK: usize = 16;
    for r0 in (0..rows).step_by(BLOCK) {
        let n = BLOCK.min(rows - r0);
        let block = &data[r0 * cols..(r0 + n) * cols];
        for c in 0..cols {
            let destination = &mut out[c * rows + r0..][..n];
            for (i, d) in destination.iter_mut().enumerate() {
                *d = block[i * cols + c];
            }
        }
    }
}

/// The sums of the columns of `matrix` (rows × `width`, row-major), in row order.
pub(crate) fn column_sums(matrix: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0; width];
    for row in matrix.chunks_exact(width) {
        sums.iter_mut().zip(row).for_each(|(s, x)| *s += x);
    }
    sums
}

/// Multiply-adds below which a product runs on the calling thread (splitting it costs more).
const PARALLEL_WORK: usize = 1 << 22;

/// `dst ← a · b`, or `dst ← dst + a · b` with `accumulate`; `dst` is row-major `a.rows × b.cols`.
///
/// # Panics
/// When the shapes do not match (a bug in the caller).
pub(crate) fn matmul(dst: &mut [f32], accumulate: bool, a: View, b: View) {
    product(dst, accumulate, a, b, true);
}

/// [`matmul`] on the calling thread only (for a thread that already owns its share of the work).
pub(crate) fn matmul_on_this_thread(dst: &mut [f32], accumulate: bool, a: View, b: View) {
    product(dst, accumulate, a, b, false);
}

/// [`matmul`], split between rayon's threads when `may_split` and the product is large enough.
fn product(dst: &mut [f32], accumulate: bool, a: View, b: View, may_split: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "a {m} × {k} matrix times a {} × {n} one", b.rows);
    assert_eq!(dst.len(), m * n, "a {m} × {n} product into {} floats", dst.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism =
        if !may_split || m * n * k < PARALLEL_WORK || threads == 1 || rayon::current_thread_index().is_some() {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(threads)
        };
    for view in [a, b] {
        let last = (view.rows - 1) * view.row_stride + (view.cols - 1) * view.col_stride;
        assert!(last < view.data.len(), "matrix view reaches past its slice");
    }
    // SAFETY: every element the product reads lies inside `a.data` or `b.data` (checked just
    // above), and `dst` holds exactly m × n floats in row-major order.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        (0..m * n).map(|i| (0..k).map(|p| a[i / n * k + p] * b[p * n + i % n]).sum()).collect()
    }

    #[test]
    fn products_with_transposes_and_row_ranges_equal_a_plain_sum() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let expected = naive(&a, &b, m, k, n);
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);

        let mut dst = vec![9.0; m * n];
        matmul(&mut dst, false, View::rows(&a, m, k), View::rows(&b, k, n));
        assert!(close(&dst, &expected));
        matmul(&mut dst, true, View::rows(&a, m, k), View::rows(&b, k, n));
        assert!(close(&dst, &expected.iter().map(|x| 2.0 * x).collect::<Vec<_>>()));

        // aᵀ stored as k × m, used transposed; b stored as n × k, used transposed.
        let a_t: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut dst = vec![0.0; m * n];
        matmul(&mut dst, false, View::rows(&a_t, k, m).t(), View::rows(&b_t, n, k).t());
        assert!(close(&dst, &expected));

        let mut dst = vec![0.0; 2 * n];
        matmul(&mut dst, false, View::rows(&a, m, k).row_range(3..5), View::rows(&b, k, n));
        assert!(close(&dst, &expected[3 * n..5 * n]));
    }

    #[test]
    fn transposed_swaps_rows_and_columns() {
        let data: Vec<f32> = (0..35 * 41).map(|i| i as f32).collect();
        let t = transposed(&data, 35, 41);
        for r in 0..35 {
            for c in 0..41 {
                assert_eq!(t[c * 35 + r], data[r * 41 + c]);
            }
        }
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros() {
        let mut dst = vec![1.0; 6];
        matmul(&mut dst, false, View::rows(&[], 2, 0), View::rows(&[], 0, 3));
        assert!(dst.iter().all(|&x| x == 0.0));
    }
}
