//! The kernels of `kernels.cu` (compiled to PTX by build.rs, embedded here, loaded once per
//! device by candle's module cache), one launch function each. Arguments are device buffers of
//! float32 (`CudaView` to read, `CudaSlice` to write) and sizes; see `kernels.cu` for each
//! kernel's equation.

use candle_core::Result;
use std::sync::Arc;

use candle_core::cuda_backend::CudaDevice;
use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, CudaView, LaunchArgs, LaunchConfig, PushKernelArg,
};

/// The PTX nvcc made of `kernels.cu`.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/caption_kernels.ptx"));

/// The module's name in candle's per-device cache.
const MODULE: &str = "caption_kernels";

/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;

/// Threads per block of `softmax_cross_entropy` (its `ROW_THREADS`).
const ROW_THREADS: u32 = 256;

/// A driver error as candle's.
pub(crate) fn driver_error(error: impl std::error::Error + Send + Sync + 'static) -> candle_core::Error {
    candle_core::Error::Cuda(Box::new(error))
}

/// A launch of `elements` threads in blocks of [`THREADS`].
fn elementwise(elements: usize) -> LaunchConfig {
    let blocks = elements.div_ceil(THREADS as usize) as u32;
    LaunchConfig { grid_dim: (blocks.max(1), 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// A size as the kernels' `int`.
fn int(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("{n} elements: too many for one CUDA kernel")))
}

/// Kernel `name` of the module, loaded on `device` (once; later calls find it in candle's cache),
/// and the device's stream, which candle's operations run on too.
fn function(device: &CudaDevice, name: &str) -> Result<(CudaFunction, Arc<CudaStream>)> {
    Ok((device.get_or_load_custom_func(name, MODULE, PTX)?.into_cuda_function(), device.cuda_stream()))
}

/// Launches a kernel whose arguments `args` holds.
fn run(args: &mut LaunchArgs<'_>, cfg: LaunchConfig) -> Result<()> {
    // SAFETY: each launch function below pushes the arguments its kernel in kernels.cu declares,
    // in order and of those types, and checks that the buffers hold what the sizes say.
    unsafe { args.launch(cfg) }.map_err(driver_error)?;
    Ok(())
}

/// A null pointer for an optional buffer.
const NULL: u64 = 0;

/// The scale pushed with a null mask.
const ZERO: f32 = 0.0;

/// Checks that `buffer` holds at least `needed` elements.
fn holds(buffer: usize, needed: usize, what: &str) -> Result<()> {
    if buffer < needed {
        candle_core::bail!("CUDA kernel: {what} holds {buffer} elements, {needed} needed");
    }
    Ok(())
}

/// The LSTM cell forward for the `rows` packed rows from `start` (`previous`: the packed row of
/// the same sequences' step before, `None` at a first step).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_cell_forward(
    device: &CudaDevice,
    gates: &mut CudaSlice<f32>,
    cells: &mut CudaSlice<f32>,
    cells_tanh: &mut CudaSlice<f32>,
    hidden: &mut CudaSlice<f32>,
    start: usize,
    previous: Option<usize>,
    rows: usize,
    units: usize,
) -> Result<()> {
    let end = (start + rows) * units;
    holds(gates.len(), 4 * end, "gates")?;
    for (buffer, what) in [(cells.len(), "cells"), (cells_tanh.len(), "cells_tanh"), (hidden.len(), "hidden")] {
        holds(buffer, end, what)?;
    }
    let (start, previous, n, units) = (int(start)?, previous.map_or(Ok(-1), int)?, int(rows)?, int(units)?);
    let (func, stream) = function(device, "lstm_cell_forward")?;
    let mut b = stream.launch_builder(&func);
    b.arg(gates).arg(cells).arg(cells_tanh).arg(hidden).arg(&start).arg(&previous).arg(&n).arg(&units);
    run(&mut b, elementwise(rows * units as usize))
}

/// The buffers the LSTM cell's backward pass reads (the forward pass's).
pub(crate) struct CellActivations<'a> {
    /// Activated gates, rows × 4·units.
    pub gates: CudaView<'a, f32>,
    /// Cell states, rows × units.
    pub cells: CudaView<'a, f32>,
    /// `tanh` of the cell states.
    pub cells_tanh: CudaView<'a, f32>,
}

/// The LSTM cell backward for the `rows` packed rows of one step from `start`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_cell_backward(
    device: &CudaDevice,
    forward: &CellActivations,
    d_output: &CudaView<f32>,
    d_hidden_next: &CudaView<f32>,
    d_cell_next: &mut CudaSlice<f32>,
    d_gates: &mut CudaSlice<f32>,
    start: usize,
    previous: Option<usize>,
    rows: usize,
    units: usize,
) -> Result<()> {
    let end = (start + rows) * units;
    holds(forward.gates.len(), 4 * end, "gates")?;
    holds(d_gates.len(), 4 * end, "d_gates")?;
    for (buffer, what) in
        [(forward.cells.len(), "cells"), (forward.cells_tanh.len(), "cells_tanh"), (d_output.len(), "d_output")]
    {
        holds(buffer, end, what)?;
    }
    holds(d_hidden_next.len(), rows * units, "d_hidden_next")?;
    holds(d_cell_next.len(), rows * units, "d_cell_next")?;
    let (start, previous, n, units) = (int(start)?, previous.map_or(Ok(-1), int)?, int(rows)?, int(units)?);
    let (func, stream) = function(device, "lstm_cell_backward")?;
    let mut b = stream.launch_builder(&func);
    b.arg(&forward.gates).arg(&forward.cells).arg(&forward.cells_tanh).arg(d_output).arg(d_hidden_next);
    b.arg(d_cell_next).arg(d_gates).arg(&start).arg(&previous).arg(&n).arg(&units);
    run(&mut b, elementwise(rows * units as usize))
}

/// The targets of [`softmax_cross_entropy`]'s rows: each row's token and its weight (float32
/// bits).
pub(crate) struct Targets<'v, 'a> {
    /// One token per row.
    pub ids: &'v CudaView<'a, u32>,
    /// One weight per row, as `f32::to_bits`.
    pub weights: &'v CudaView<'a, u32>,
}

/// The softmax cross-entropy over the rows of `logits` (rows × vocab, the output layer's products
/// without its bias): adds `bias`, writes each row's loss times its weight to `losses` and turns
/// the rows into `weight · scale · (softmax − onehot(target))`.
pub(crate) fn softmax_cross_entropy(
    device: &CudaDevice,
    logits: &mut CudaSlice<f32>,
    bias: &CudaView<f32>,
    targets: &Targets,
    losses: &mut CudaSlice<f32>,
    scale: f32,
) -> Result<()> {
    let vocab = bias.len();
    let rows = targets.ids.len();
    if rows == 0 {
        return Ok(());
    }
    holds(logits.len(), rows * vocab, "logits")?;
    holds(losses.len(), rows, "losses")?;
    holds(targets.weights.len(), rows, "target weights")?;
    let cfg = LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (ROW_THREADS, 1, 1), shared_mem_bytes: 0 };
    let vocab = int(vocab)?;
    let (func, stream) = function(device, "softmax_cross_entropy")?;
    let mut b = stream.launch_builder(&func);
    b.arg(logits).arg(bias).arg(targets.ids).arg(targets.weights).arg(losses).arg(&scale).arg(&vocab);
    run(&mut b, cfg)
}

/// The `count` most probable words of each row of `logits` (rows × vocab, without the output
/// layer's `bias`), best first, into `words`, and their log-probabilities into `log_probs`, each
/// from element `at` on (`count` per row).
pub(crate) fn top_words(
    device: &CudaDevice,
    logits: &CudaView<f32>,
    bias: &CudaView<f32>,
    words: &mut CudaSlice<u32>,
    log_probs: &mut CudaSlice<f32>,
    at: usize,
    count: usize,
) -> Result<()> {
    let vocab = bias.len();
    if count == 0 || count > vocab {
        candle_core::bail!("top words: {count} of a vocabulary of {vocab}");
    }
    let rows = logits.len() / vocab;
    if rows == 0 {
        return Ok(());
    }
    let end = at + rows * count;
    holds(words.len(), end, "the words")?;
    holds(log_probs.len(), end, "the log-probabilities")?;
    let (mut words, mut log_probs) = (words.slice_mut(at..end), log_probs.slice_mut(at..end));
    let cfg = LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (ROW_THREADS, 1, 1), shared_mem_bytes: 0 };
    let (vocab, count) = (int(vocab)?, int(count)?);
    let (func, stream) = function(device, "top_words")?;
    let mut b = stream.launch_builder(&func);
    b.arg(logits).arg(bias).arg(&mut words).arg(&mut log_probs).arg(&vocab).arg(&count);
    run(&mut b, cfg)
}

/// Every row of `out` (rows × width) set to `first + second` (`second` may be absent).
pub(crate) fn fill_rows(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    first: &CudaView<f32>,
    second: Option<&CudaView<f32>>,
) -> Result<()> {
    let width = first.len();
    if width == 0 || out.is_empty() {
        return Ok(());
    }
    let rows = out.len() / width;
    if let Some(second) = second {
        holds(second.len(), width, "the second row")?;
    }
    let (n, w) = (int(rows)?, int(width)?);
    let (func, stream) = function(device, "fill_rows")?;
    let mut b = stream.launch_builder(&func);
    b.arg(&mut *out).arg(first);
    match second {
        Some(second) => b.arg(second),
        None => b.arg(&NULL),
    };
    b.arg(&n).arg(&w);
    run(&mut b, elementwise(rows * width))
}

/// A dropout mask in device memory as [`Dropout::mask_bits`](crate::Dropout::mask_bits) gives
/// it: bit `i` set where element `i` is kept (and multiplied by `scale`).
#[derive(Clone, Copy)]
pub(crate) struct DeviceMask<'v, 'a> {
    pub bits: &'v CudaView<'a, u32>,
    pub scale: f32,
}

/// A dropout mask and which of its rows each gathered or summed row takes.
pub(crate) struct RowMask<'v, 'a> {
    /// The mask, rows × cols.
    pub mask: DeviceMask<'v, 'a>,
    /// The mask's row for each row.
    pub rows: &'v CudaView<'a, u32>,
}

/// `out[k] = table[index[k]] · mask[mask_rows[k]]` for the first `index.len()` rows of `out`
/// (`cols` wide), from row `offset` of `out` on.
pub(crate) fn gather_rows(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    offset: usize,
    table: &CudaView<f32>,
    index: &CudaView<u32>,
    mask: Option<&RowMask>,
    cols: usize,
) -> Result<()> {
    let rows = index.len();
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    holds(out.len(), (offset + rows) * cols, "the gathered rows")?;
    let mut out = out.slice_mut(offset * cols..(offset + rows) * cols);
    let (n, c) = (int(rows)?, int(cols)?);
    let (func, stream) = function(device, "gather_rows")?;
    let mut b = stream.launch_builder(&func);
    b.arg(&mut out).arg(table).arg(index);
    match mask {
        Some(mask) => b.arg(mask.mask.bits).arg(&mask.mask.scale).arg(mask.rows),
        None => b.arg(&NULL).arg(&ZERO).arg(&NULL),
    };
    b.arg(&n).arg(&c);
    run(&mut b, elementwise(rows * cols))
}

/// `out[index[k]] = source[k]` for the rows of `source` (rows × cols).
pub(crate) fn scatter_rows(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    source: &CudaView<f32>,
    index: &CudaView<u32>,
    cols: usize,
) -> Result<()> {
    let rows = index.len();
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    holds(source.len(), rows * cols, "the scattered rows")?;
    let (n, c) = (int(rows)?, int(cols)?);
    let (func, stream) = function(device, "scatter_rows")?;
    let mut b = stream.launch_builder(&func);
    b.arg(out).arg(source).arg(index).arg(&n).arg(&c);
    run(&mut b, elementwise(rows * cols))
}

/// The segments of rows [`segment_sum_rows`] adds up: segment `s` adds the rows
/// `order[starts[s]..starts[s + 1]]` into row `tokens[s]`.
pub(crate) struct Segments<'v, 'a> {
    /// Where each segment starts in `order`, and the end of the last.
    pub starts: &'v CudaView<'a, u32>,
    /// The output row of each segment.
    pub tokens: &'v CudaView<'a, u32>,
    /// Source rows, segment after segment.
    pub order: &'v CudaView<'a, u32>,
}

/// Adds the segments' rows of `source` (times their mask rows) into `out`, row by row in order.
pub(crate) fn segment_sum_rows(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    source: &CudaView<f32>,
    segments: &Segments,
    mask: Option<&RowMask>,
    cols: usize,
) -> Result<()> {
    let count = segments.tokens.len();
    if count == 0 || cols == 0 {
        return Ok(());
    }
    holds(segments.starts.len(), count + 1, "the segment starts")?;
    let (n, c) = (int(count)?, int(cols)?);
    let (func, stream) = function(device, "segment_sum_rows")?;
    let mut b = stream.launch_builder(&func);
    b.arg(out).arg(source).arg(segments.starts).arg(segments.tokens).arg(segments.order);
    match mask {
        Some(mask) => b.arg(mask.mask.bits).arg(&mask.mask.scale).arg(mask.rows),
        None => b.arg(&NULL).arg(&ZERO).arg(&NULL),
    };
    b.arg(&n).arg(&c);
    run(&mut b, elementwise(count * cols))
}

/// The column sums of `matrix` (rows × cols) into `out` (cols), in row order.
pub(crate) fn column_sums(device: &CudaDevice, out: &mut CudaSlice<f32>, matrix: &CudaView<f32>) -> Result<()> {
    let cols = out.len();
    if cols == 0 {
        return Ok(());
    }
    let rows = matrix.len() / cols;
    let (r, c) = (int(rows)?, int(cols)?);
    let (func, stream) = function(device, "column_sums")?;
    let mut b = stream.launch_builder(&func);
    b.arg(out).arg(matrix).arg(&r).arg(&c);
    run(&mut b, elementwise(cols))
}

/// `values ·= mask`, element by element (dropout).
pub(crate) fn dropout(device: &CudaDevice, values: &mut CudaSlice<f32>, mask: &DeviceMask) -> Result<()> {
    let n = values.len();
    if n == 0 {
        return Ok(());
    }
    holds(mask.bits.len() * 32, n, "the mask")?;
    let count = int(n)?;
    let (func, stream) = function(device, "dropout")?;
    let mut b = stream.launch_builder(&func);
    b.arg(values).arg(mask.bits).arg(&mask.scale).arg(&count);
    run(&mut b, elementwise(n))
}

/// `out = relu(pre) · mask`.
pub(crate) fn relu_dropout(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    pre: &CudaView<f32>,
    mask: Option<&DeviceMask>,
) -> Result<()> {
    let n = out.len();
    if n == 0 {
        return Ok(());
    }
    holds(pre.len(), n, "the pre-activations")?;
    let count = int(n)?;
    let (func, stream) = function(device, "relu_dropout")?;
    let mut b = stream.launch_builder(&func);
    b.arg(out).arg(pre);
    match mask {
        Some(mask) => b.arg(mask.bits).arg(&mask.scale),
        None => b.arg(&NULL).arg(&ZERO),
    };
    b.arg(&count);
    run(&mut b, elementwise(n))
}

/// The backward pass of [`relu_dropout`] in place on `gradient`.
pub(crate) fn relu_dropout_backward(
    device: &CudaDevice,
    gradient: &mut CudaSlice<f32>,
    pre: &CudaView<f32>,
    mask: Option<&DeviceMask>,
) -> Result<()> {
    let n = gradient.len();
    if n == 0 {
        return Ok(());
    }
    holds(pre.len(), n, "the pre-activations")?;
    let count = int(n)?;
    let (func, stream) = function(device, "relu_dropout_backward")?;
    let mut b = stream.launch_builder(&func);
    b.arg(gradient).arg(pre);
    match mask {
        Some(mask) => b.arg(mask.bits).arg(&mask.scale),
        None => b.arg(&NULL).arg(&ZERO),
    };
    b.arg(&count);
    run(&mut b, elementwise(n))
}

/// A batch norm's parameters and running statistics (per channel) and its ε.
pub(crate) struct BatchNormParameters<'v, 'a> {
    pub weight: &'v CudaView<'a, f32>,
    pub bias: &'v CudaView<'a, f32>,
    pub mean: &'v CudaView<'a, f32>,
    pub var: &'v CudaView<'a, f32>,
    pub eps: f32,
}

/// Eval-mode batch norm and ReLU of `x` (N × channels × plane) into `out`.
pub(crate) fn batch_norm_relu_eval(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    x: &CudaView<f32>,
    bn: &BatchNormParameters,
    plane: usize,
) -> Result<()> {
    let n = out.len();
    let channels = bn.weight.len();
    holds(x.len(), n, "the input")?;
    for (buffer, what) in [(bn.bias.len(), "bias"), (bn.mean.len(), "running_mean"), (bn.var.len(), "running_var")] {
        holds(buffer, channels, what)?;
    }
    if n == 0 {
        return Ok(());
    }
    let (count, c, p) = (int(n)?, int(channels)?, int(plane)?);
    let (func, stream) = function(device, "batch_norm_relu_eval")?;
    let mut b = stream.launch_builder(&func);
    b.arg(out).arg(x).arg(bn.weight).arg(bn.bias).arg(bn.mean).arg(bn.var).arg(&bn.eps).arg(&c).arg(&p).arg(&count);
    run(&mut b, elementwise(n))
}

/// Train-mode batch norm's statistics of `x` (N × channels × plane) into `scale` and `shift`,
/// moving `running_mean` and `running_var` in place, and keeping the mean and 1/√(var + ε) in
/// `saved` for a backward pass (see `kernels.cu`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm_statistics(
    device: &CudaDevice,
    x: &CudaView<f32>,
    affine: [&CudaView<f32>; 2],
    running: [&mut CudaSlice<f32>; 2],
    [scale, shift]: [&mut CudaSlice<f32>; 2],
    saved: Option<[&mut CudaSlice<f32>; 2]>,
    plane: usize,
    momentum: f64,
    eps: f64,
) -> Result<()> {
    let [weight, bias] = affine;
    let [running_mean, running_var] = running;
    let channels = weight.len();
    for (buffer, what) in [
        (bias.len(), "bias"),
        (running_mean.len(), "running_mean"),
        (running_var.len(), "running_var"),
        (scale.len(), "scale"),
        (shift.len(), "shift"),
    ] {
        holds(buffer, channels, what)?;
    }
    if channels == 0 || plane == 0 || x.len() % (channels * plane) != 0 {
        candle_core::bail!("batch norm: {} values for {channels} channels of {plane}", x.len());
    }
    let n = x.len() / (channels * plane);
    let cfg = LaunchConfig { grid_dim: (channels as u32, 1, 1), block_dim: (ROW_THREADS, 1, 1), shared_mem_bytes: 0 };
    let (images, c, p) = (int(n)?, int(channels)?, int(plane)?);
    let (func, stream) = function(device, "batch_norm_statistics")?;
    let mut b = stream.launch_builder(&func);
    b.arg(x).arg(weight).arg(bias).arg(running_mean).arg(running_var).arg(scale).arg(shift);
    match saved {
        Some([mean, invstd]) => b.arg(mean).arg(invstd),
        None => b.arg(&NULL).arg(&NULL),
    };
    b.arg(&images).arg(&c).arg(&p).arg(&momentum).arg(&eps);
    run(&mut b, cfg)
}

/// `out = max(x·scale + shift, 0)` per channel over `x` (N × channels × plane).
pub(crate) fn scale_shift_relu(
    device: &CudaDevice,
    out: &mut CudaSlice<f32>,
    x: &CudaView<f32>,
    scale: &CudaView<f32>,
    shift: &CudaView<f32>,
    plane: usize,
) -> Result<()> {
    let n = out.len();
    let channels = scale.len();
    holds(x.len(), n, "the input")?;
    holds(shift.len(), channels, "shift")?;
    if n == 0 {
        return Ok(());
    }
    let (count, c, p) = (int(n)?, int(channels)?, int(plane)?);
    let (func, stream) = function(device, "scale_shift_relu")?;
    let mut b = stream.launch_builder(&func);
    b.arg(out).arg(x).arg(scale).arg(shift).arg(&c).arg(&p).arg(&count);
    run(&mut b, elementwise(n))
}

/// What the backward pass of train-mode batch norm + ReLU reads: the output's gradient, the
/// output, the input (each N × channels × plane), and the forward pass's mean and 1/√(var + ε).
pub(crate) struct BatchNormBackward<'v, 'a> {
    pub grad: &'v CudaView<'a, f32>,
    pub y: &'v CudaView<'a, f32>,
    pub x: &'v CudaView<'a, f32>,
    pub mean: &'v CudaView<'a, f32>,
    pub invstd: &'v CudaView<'a, f32>,
}

/// The per-channel sums of that backward pass: `sum_g` (the bias's gradient) and `sum_gx` (the
/// weight's).
pub(crate) fn batch_norm_relu_backward_sums(
    device: &CudaDevice,
    pass: &BatchNormBackward,
    sum_g: &mut CudaSlice<f32>,
    sum_gx: &mut CudaSlice<f32>,
    plane: usize,
) -> Result<()> {
    let channels = sum_g.len();
    holds(sum_gx.len(), channels, "sum_gx")?;
    for (buffer, what) in [(pass.mean.len(), "the mean"), (pass.invstd.len(), "invstd")] {
        holds(buffer, channels, what)?;
    }
    let n = pass.x.len();
    if channels == 0 || plane == 0 || n % (channels * plane) != 0 || pass.grad.len() != n || pass.y.len() != n {
        candle_core::bail!("batch norm backward: {n} values for {channels} channels of {plane}");
    }
    let cfg = LaunchConfig { grid_dim: (channels as u32, 1, 1), block_dim: (ROW_THREADS, 1, 1), shared_mem_bytes: 0 };
    let (images, c, p) = (int(n / (channels * plane))?, int(channels)?, int(plane)?);
    let (func, stream) = function(device, "batch_norm_relu_backward_sums")?;
    let mut b = stream.launch_builder(&func);
    b.arg(pass.grad).arg(pass.y).arg(pass.x).arg(pass.mean).arg(pass.invstd).arg(sum_g).arg(sum_gx);
    b.arg(&images).arg(&c).arg(&p);
    run(&mut b, cfg)
}

/// The input's gradient of that backward pass into `d_x`, from the sums.
pub(crate) fn batch_norm_relu_backward_input(
    device: &CudaDevice,
    d_x: &mut CudaSlice<f32>,
    pass: &BatchNormBackward,
    [weight, sum_g, sum_gx]: [&CudaView<f32>; 3],
    plane: usize,
) -> Result<()> {
    let n = d_x.len();
    let channels = weight.len();
    if n == 0 {
        return Ok(());
    }
    for (buffer, what) in [(pass.grad.len(), "grad"), (pass.y.len(), "y"), (pass.x.len(), "x")] {
        holds(buffer, n, what)?;
    }
    for (buffer, what) in [(sum_g.len(), "sum_g"), (sum_gx.len(), "sum_gx"), (pass.mean.len(), "mean")] {
        holds(buffer, channels, what)?;
    }
    let count = (n / channels.max(1)) as f32;
    let (total, c, p) = (int(n)?, int(channels)?, int(plane)?);
    let (func, stream) = function(device, "batch_norm_relu_backward_input")?;
    let mut b = stream.launch_builder(&func);
    b.arg(d_x).arg(pass.grad).arg(pass.y).arg(pass.x).arg(pass.mean).arg(pass.invstd).arg(weight);
    b.arg(sum_g).arg(sum_gx).arg(&c).arg(&p).arg(&total).arg(&count);
    run(&mut b, elementwise(n))
}

/// Adam's update of one parameter in place (see [`AdamUpdate`](crate::backend::adam::AdamUpdate)).
pub(crate) fn adam_update(
    device: &CudaDevice,
    parameter: [&mut CudaSlice<f32>; 3],
    grad: &CudaView<f32>,
    update: &crate::backend::adam::AdamUpdate,
) -> Result<()> {
    let [theta, exp_avg, exp_avg_sq] = parameter;
    let n = theta.len();
    if [exp_avg.len(), exp_avg_sq.len(), grad.len()].iter().any(|&len| len != n) {
        candle_core::bail!("Adam: parameter, moments and gradient differ in size");
    }
    if n == 0 {
        return Ok(());
    }
    let count = int(n)?;
    let u = update;
    let (func, stream) = function(device, "adam_update")?;
    let mut b = stream.launch_builder(&func);
    b.arg(theta).arg(exp_avg).arg(exp_avg_sq).arg(grad).arg(&count);
    b.arg(&u.beta1).arg(&u.beta2).arg(&u.grad_scale).arg(&u.l2).arg(&u.decay);
    b.arg(&u.step_size).arg(&u.bias2_sqrt).arg(&u.eps);
    run(&mut b, elementwise(n))
}
