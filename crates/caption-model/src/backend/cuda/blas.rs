//! Row-major matrix products on cuBLAS (column-major), as the CPU backend's `gemm::matmul`:
//! `dst = a · b` or `dst += a · b`, either operand read transposed. cuBLAS's default math mode:
//! float32 with FMA, no TF32 (parity with the CPU and PyTorch's strict float32), unless
//! [`allow_tf32`](crate::backend::allow_tf32) says otherwise.
//!
//! A row-major `rows × cols` matrix is, to cuBLAS, its transpose with leading dimension `cols`;
//! so the row-major `dst = a · b` is computed as the column-major `dstᵀ = bᵀ · aᵀ`.

use candle_core::Result;
use candle_core::cuda_backend::cudarc::cublas::sys::{
    cublasMath_t, cublasOperation_t, cublasSetMathMode, cublasStatus_t,
};
use candle_core::cuda_backend::cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};

use super::kernels::driver_error;

/// A row-major matrix in device memory, read as it is or transposed.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a, 'b> {
    data: &'b CudaView<'a, f32>,
    /// The first element's index in `data`.
    offset: usize,
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a, 'b> Matrix<'a, 'b> {
    /// `data` as a `rows × cols` matrix.
    pub(crate) fn rows(data: &'b CudaView<'a, f32>, rows: usize, cols: usize) -> Self {
        Self { data, offset: 0, rows, cols, transposed: false }
    }

    /// The matrix read transposed.
    pub(crate) fn t(self) -> Self {
        Self { transposed: !self.transposed, ..self }
    }

    /// Rows `range` of the stored (not transposed) matrix.
    pub(crate) fn row_range(self, range: std::ops::Range<usize>) -> Self {
        Self { offset: self.offset + range.start * self.cols, rows: range.len(), ..self }
    }

    /// The shape as read: rows × cols of the product's operand.
    fn shape(&self) -> (usize, usize) {
        if self.transposed { (self.cols, self.rows) } else { (self.rows, self.cols) }
    }

    /// cuBLAS's operation on the stored data.
    fn operation(&self) -> cublasOperation_t {
        if self.transposed { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N }
    }
}

/// `dst` (rows `dst_rows` of a row-major buffer, from row `dst_row`) `= a · b`, or `+=` with
/// `accumulate`.
pub(crate) fn matmul(
    blas: &CudaBlas,
    dst: &mut CudaSlice<f32>,
    dst_row: usize,
    accumulate: bool,
    a: Matrix,
    b: Matrix,
) -> Result<()> {
    let ((m, k), (k_b, n)) = (a.shape(), b.shape());
    if k != k_b {
        candle_core::bail!("matmul: {m}×{k} times {k_b}×{n}");
    }
    let range = dst_row * n..(dst_row + m) * n;
    if range.end > dst.len() || a.offset + a.rows * a.cols > a.data.len() || b.offset + b.rows * b.cols > b.data.len() {
        candle_core::bail!("matmul: an operand or the result lies outside its buffer");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let stream = dst.stream().clone();
    let mut dst = dst.slice_mut(range);
    if k == 0 {
        if !accumulate {
            stream.memset_zeros(&mut dst).map_err(driver_error)?;
        }
        return Ok(());
    }
    let int = |n: usize| i32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("matmul: {n} is too large")));
    let cfg = GemmConfig {
        transa: b.operation(),
        transb: a.operation(),
        m: int(n)?,
        n: int(m)?,
        k: int(k)?,
        alpha: 1.0f32,
        lda: int(b.cols)?,
        ldb: int(a.cols)?,
        beta: if accumulate { 1.0 } else { 0.0 },
        ldc: int(n)?,
    };
    let math = if crate::backend::allow_tf32() {
        cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
    } else {
        cublasMath_t::CUBLAS_DEFAULT_MATH
    };
    // SAFETY: the handle is candle's, alive while `blas` is.
    let status = unsafe { cublasSetMathMode(*blas.handle(), math) };
    if status != cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        candle_core::bail!("cuBLAS: setting the math mode failed ({status:?})");
    }
    let b_data = b.data.slice(b.offset..b.offset + b.rows * b.cols);
    let a_data = a.data.slice(a.offset..a.offset + a.rows * a.cols);
    // SAFETY: the operands and the result lie inside their buffers (checked above) with the
    // leading dimensions of their row-major storage.
    unsafe { blas.gemm(cfg, &b_data, &a_data, &mut dst) }.map_err(driver_error)?;
    Ok(())
}
