//! Convolutions through cuDNN (the `cudnn` feature), for Inception v3's eval-mode forward pass:
//! for each shape, cuDNN's descriptors and its choice of algorithm are made once and kept, and one
//! workspace per device only grows (candle's own `cudnn` path rebuilds all three on every call).
//! Math is cuDNN's FMA math: no TF32, so results agree with the CPU and PyTorch's strict float32.
//!
//! The cache lives on the thread that convolves (cuDNN's handle is not shared across threads),
//! one per device.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::cuda_backend::DeviceId;
use candle_core::cuda_backend::cudarc::cudnn::sys::{
    cudnnConvolutionFwdAlgo_t, cudnnConvolutionMode_t, cudnnMathType_t, cudnnTensorFormat_t,
};
use candle_core::cuda_backend::cudarc::cudnn::{
    ConvDescriptor, ConvForward, Cudnn, CudnnError, FilterDescriptor, TensorDescriptor,
};
use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::{Result, Tensor};

use super::{tensor, with_device_views};

/// What fixes a convolution's descriptors and algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    /// Input N, C, H, W.
    input: [i32; 4],
    /// Filter K, C, R, S.
    filter: [i32; 4],
    padding: [i32; 2],
    stride: i32,
}

impl Shape {
    /// The output's N, K, H, W.
    fn output(&self) -> [i32; 4] {
        let [n, _, h, w] = self.input;
        let [k, _, r, s] = self.filter;
        let [pad_h, pad_w] = self.padding;
        [n, k, (h + 2 * pad_h - r) / self.stride + 1, (w + 2 * pad_w - s) / self.stride + 1]
    }
}

/// One shape's descriptors and algorithm.
struct Plan {
    input: TensorDescriptor<f32>,
    filter: FilterDescriptor<f32>,
    convolution: ConvDescriptor<f32>,
    output: TensorDescriptor<f32>,
    algorithm: cudnnConvolutionFwdAlgo_t,
    workspace_bytes: usize,
}

/// A device's cuDNN handle, plans and workspace.
struct DeviceState {
    cudnn: Arc<Cudnn>,
    plans: HashMap<Shape, Plan>,
    workspace: Option<CudaSlice<u8>>,
}

thread_local! {
    static STATES: RefCell<HashMap<DeviceId, DeviceState>> = RefCell::new(HashMap::new());
}

/// cuDNN's error as candle's.
fn cudnn_error(error: CudnnError) -> candle_core::Error {
    candle_core::Error::Cuda(Box::new(error))
}

/// A size as cuDNN's `int`.
fn int(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("convolution size {n}: too large for cuDNN")))
}

/// `x` (N × C × H × W) convolved with `weight` (K × C × R × S), zero-padded by `padding` (height,
/// width) and with `stride`, as PyTorch's `F.conv2d` (no bias); float32 on a CUDA device.
pub(crate) fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: (usize, usize)) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (k, filter_c, r, s) = weight.dims4()?;
    if filter_c != c {
        candle_core::bail!("convolution: {c} input channels, the filter takes {filter_c}");
    }
    let shape = Shape {
        input: [int(n)?, int(c)?, int(h)?, int(w)?],
        filter: [int(k)?, int(c)?, int(r)?, int(s)?],
        padding: [int(padding.0)?, int(padding.1)?],
        stride: int(stride)?,
    };
    let [_, _, out_h, out_w] = shape.output();
    if out_h <= 0 || out_w <= 0 {
        candle_core::bail!("convolution: a {r}×{s} filter does not fit a padded {h}×{w} input");
    }
    with_device_views(&[x, weight], |device, views| {
        let mut output = device.alloc_zeros::<f32>(n * k * out_h as usize * out_w as usize)?;
        STATES.with(|states| -> Result<()> {
            let mut states = states.borrow_mut();
            let state = match states.entry(device.id()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => entry.insert(DeviceState {
                    cudnn: Cudnn::new(device.cuda_stream()).map_err(cudnn_error)?,
                    plans: HashMap::new(),
                    workspace: None,
                }),
            };
            if !state.plans.contains_key(&shape) {
                let plan = plan(&state.cudnn, &shape).map_err(cudnn_error)?;
                state.plans.insert(shape, plan);
            }
            let plan = &state.plans[&shape];
            if plan.workspace_bytes > state.workspace.as_ref().map_or(0, CudaSlice::len) {
                state.workspace = Some(device.alloc_zeros::<u8>(plan.workspace_bytes)?);
            }
            let forward = ConvForward { conv: &plan.convolution, x: &plan.input, w: &plan.filter, y: &plan.output };
            let workspace = state.workspace.as_mut().filter(|_| plan.workspace_bytes > 0);
            // SAFETY: the descriptors were made for these float32 NCHW buffers' shapes, and the
            // workspace holds at least what the algorithm asked for.
            unsafe { forward.launch(plan.algorithm, workspace, (1.0, 0.0), &views[0], &views[1], &mut output) }
                .map_err(cudnn_error)
        })?;
        tensor(output, (n, k, out_h as usize, out_w as usize), device)
    })
}

/// The descriptors of `shape` and cuDNN's heuristic choice of algorithm under FMA math.
fn plan(cudnn: &Arc<Cudnn>, shape: &Shape) -> std::result::Result<Plan, CudnnError> {
    let nchw = cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
    let input = cudnn.create_4d_tensor::<f32>(nchw, shape.input)?;
    let filter = cudnn.create_4d_filter::<f32>(nchw, shape.filter)?;
    let mut convolution = cudnn.create_conv2d::<f32>(
        shape.padding,
        [shape.stride; 2],
        [1, 1],
        cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
    )?;
    convolution.set_math_type(cudnnMathType_t::CUDNN_FMA_MATH)?;
    let output = cudnn.create_4d_tensor::<f32>(nchw, shape.output())?;
    let forward = ConvForward { conv: &convolution, x: &input, w: &filter, y: &output };
    let algorithm = forward.pick_algorithm()?;
    let workspace_bytes = forward.get_workspace_size(algorithm)?;
    Ok(Plan { input, filter, convolution, output, algorithm, workspace_bytes })
}
