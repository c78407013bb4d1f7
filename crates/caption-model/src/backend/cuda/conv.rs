//! Convolutions through cuDNN (the `cudnn` feature) for Inception v3 on CUDA: forward, and for
//! fine-tuning the backward passes for the input (backward data) and the filter (backward filter),
//! as a candle operation with its own gradient ([`conv2d`]). For each shape, cuDNN's descriptors
//! and its choice of algorithm for each pass are made once and kept, and one workspace per device
//! only grows (candle's own `cudnn` path rebuilds all three on every call, and without it the
//! filter's gradient is an im2col convolution with an output-sized kernel). Math is cuDNN's FMA
//! math: no TF32, so results agree with the CPU and PyTorch's strict float32; cuDNN's default math
//! (TF32 allowed) when [`allow_tf32`](crate::backend::allow_tf32) says so.
//!
//! The cache lives on the thread that convolves (cuDNN's handle is not shared across threads),
//! one per device.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::cudnn::sys::{
    cudnnConvolutionBwdDataAlgo_t, cudnnConvolutionBwdFilterAlgo_t, cudnnConvolutionFwdAlgo_t, cudnnConvolutionMode_t,
    cudnnMathType_t, cudnnTensorFormat_t,
};
use candle_core::cuda_backend::cudarc::cudnn::{
    ConvBackwardData, ConvBackwardFilter, ConvDescriptor, ConvForward, Cudnn, CudnnError, FilterDescriptor,
    TensorDescriptor,
};
use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::cuda_backend::{CudaDevice, CudaStorage, DeviceId};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Tensor};

use super::view;
use crate::backend::Gradient;

/// `x` (N × C × H × W) convolved with `weight` (K × C × R × S), zero-padded by `padding` (height,
/// width) and with `stride`, as PyTorch's `F.conv2d` (no bias); float32 on a CUDA device. With
/// [`Gradient::Tracked`] candle's autograd records it, and its backward pass is cuDNN's.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: (usize, usize),
    gradient: Gradient,
) -> Result<Tensor> {
    let op = Conv2d { stride, padding };
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    match gradient {
        Gradient::Tracked => x.apply_op2(&weight, op),
        Gradient::NotTracked => x.apply_op2_no_bwd(&weight, &op),
    }
}

/// The forward convolution as a candle operation.
#[derive(Debug, Clone, Copy)]
struct Conv2d {
    stride: usize,
    padding: (usize, usize),
}

/// Its backward pass for the input: the output's gradient (first operand) and the filter.
#[derive(Debug, Clone, Copy)]
struct BackwardData {
    geometry: Geometry,
}

/// Its backward pass for the filter: the input (first operand) and the output's gradient.
#[derive(Debug, Clone, Copy)]
struct BackwardFilter {
    geometry: Geometry,
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "cudnn-conv2d"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        candle_core::bail!("cuDNN's convolution was given tensors in CPU memory")
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        x_layout: &Layout,
        w: &CudaStorage,
        w_layout: &Layout,
    ) -> Result<(CudaStorage, candle_core::Shape)> {
        let geometry = Geometry::new(dims4(x_layout)?, dims4(w_layout)?, self.padding, self.stride)?;
        let device = x.device();
        let (x, w) = (view(x, x_layout)?, view(w, w_layout)?);
        let output = with_plan(device, geometry, |plan, workspace| {
            let mut y = device.alloc_zeros::<f32>(geometry.elements(geometry.output))?;
            let forward = ConvForward { conv: &plan.convolution, x: &plan.input, w: &plan.filter, y: &plan.output };
            let (algorithm, bytes) = chosen(&mut plan.forward, || {
                let algorithm = forward.pick_algorithm()?;
                Ok((algorithm, forward.get_workspace_size(algorithm)?))
            })?;
            let workspace = workspace.at_least(device, bytes)?;
            // SAFETY: the descriptors were made for these float32 NCHW buffers' shapes, and the
            // workspace holds at least what the algorithm asked for.
            unsafe { forward.launch(algorithm, workspace, (1.0, 0.0), &x, &w, &mut y) }.map_err(cudnn_error)?;
            Ok(y)
        })?;
        Ok((CudaStorage::wrap_cuda_slice(output, device.clone()), geometry.shape(geometry.output)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let geometry = Geometry::new(x.dims4()?.into(), w.dims4()?.into(), self.padding, self.stride)?;
        let grad = grad.contiguous()?;
        let d_x = grad.apply_op2_no_bwd(&w.contiguous()?, &BackwardData { geometry })?;
        let d_w = x.contiguous()?.apply_op2_no_bwd(&grad, &BackwardFilter { geometry })?;
        Ok((Some(d_x), Some(d_w)))
    }
}

impl CustomOp2 for BackwardData {
    fn name(&self) -> &'static str {
        "cudnn-conv2d-backward-data"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        candle_core::bail!("cuDNN's convolution was given tensors in CPU memory")
    }

    fn cuda_fwd(
        &self,
        dy: &CudaStorage,
        dy_layout: &Layout,
        w: &CudaStorage,
        w_layout: &Layout,
    ) -> Result<(CudaStorage, candle_core::Shape)> {
        let geometry = self.geometry;
        geometry.expect(dy_layout, geometry.output, "the output's gradient")?;
        geometry.expect(w_layout, geometry.filter, "the filter")?;
        let device = dy.device();
        let (dy, w) = (view(dy, dy_layout)?, view(w, w_layout)?);
        let d_x = with_plan(device, geometry, |plan, workspace| {
            let mut d_x = device.alloc_zeros::<f32>(geometry.elements(geometry.input))?;
            let pass = ConvBackwardData { conv: &plan.convolution, dx: &plan.input, w: &plan.filter, dy: &plan.output };
            let (algorithm, bytes) = chosen(&mut plan.backward_data, || {
                let algorithm = pass.pick_algorithm()?;
                Ok((algorithm, pass.get_workspace_size(algorithm)?))
            })?;
            let workspace = workspace.at_least(device, bytes)?;
            // SAFETY: as in the forward pass.
            unsafe { pass.launch(algorithm, workspace, (1.0, 0.0), &mut d_x, &w, &dy) }.map_err(cudnn_error)?;
            Ok(d_x)
        })?;
        Ok((CudaStorage::wrap_cuda_slice(d_x, device.clone()), geometry.shape(geometry.input)))
    }
}

impl CustomOp2 for BackwardFilter {
    fn name(&self) -> &'static str {
        "cudnn-conv2d-backward-filter"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        candle_core::bail!("cuDNN's convolution was given tensors in CPU memory")
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        x_layout: &Layout,
        dy: &CudaStorage,
        dy_layout: &Layout,
    ) -> Result<(CudaStorage, candle_core::Shape)> {
        let geometry = self.geometry;
        geometry.expect(x_layout, geometry.input, "the input")?;
        geometry.expect(dy_layout, geometry.output, "the output's gradient")?;
        let device = x.device();
        let (x, dy) = (view(x, x_layout)?, view(dy, dy_layout)?);
        let d_w = with_plan(device, geometry, |plan, workspace| {
            let mut d_w = device.alloc_zeros::<f32>(geometry.elements(geometry.filter))?;
            let pass =
                ConvBackwardFilter { conv: &plan.convolution, x: &plan.input, dw: &plan.filter, dy: &plan.output };
            let (algorithm, bytes) = chosen(&mut plan.backward_filter, || {
                let algorithm = pass.pick_algorithm()?;
                Ok((algorithm, pass.get_workspace_size(algorithm)?))
            })?;
            let workspace = workspace.at_least(device, bytes)?;
            // SAFETY: as in the forward pass.
            unsafe { pass.launch(algorithm, workspace, (1.0, 0.0), &x, &mut d_w, &dy) }.map_err(cudnn_error)?;
            Ok(d_w)
        })?;
        Ok((CudaStorage::wrap_cuda_slice(d_w, device.clone()), geometry.shape(geometry.filter)))
    }
}

/// What fixes a convolution's descriptors and algorithms: input N, C, H, W; filter K, C, R, S;
/// output N, K, H', W'; padding and stride; whether TF32 is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Geometry {
    input: [i32; 4],
    filter: [i32; 4],
    output: [i32; 4],
    padding: [i32; 2],
    stride: i32,
    tf32: bool,
}

impl Geometry {
    fn new(input: [usize; 4], filter: [usize; 4], padding: (usize, usize), stride: usize) -> Result<Self> {
        let [n, c, h, w] = input;
        let [k, filter_c, r, s] = filter;
        if filter_c != c {
            candle_core::bail!("convolution: {c} input channels, the filter takes {filter_c}");
        }
        let (padded_h, padded_w) = (h + 2 * padding.0, w + 2 * padding.1);
        if stride == 0 || r > padded_h || s > padded_w {
            candle_core::bail!(
                "convolution: a {r}×{s} filter (stride {stride}) does not fit a padded {padded_h}×{padded_w} input"
            );
        }
        let output = [n, k, (padded_h - r) / stride + 1, (padded_w - s) / stride + 1];
        Ok(Self {
            input: ints(input)?,
            filter: ints(filter)?,
            output: ints(output)?,
            padding: [int(padding.0)?, int(padding.1)?],
            stride: int(stride)?,
            tf32: crate::backend::allow_tf32(),
        })
    }

    fn elements(&self, dims: [i32; 4]) -> usize {
        dims.iter().map(|&d| d as usize).product()
    }

    fn shape(&self, dims: [i32; 4]) -> candle_core::Shape {
        dims.map(|d| d as usize).to_vec().into()
    }

    /// Checks that `layout` has `dims`.
    fn expect(&self, layout: &Layout, dims: [i32; 4], what: &str) -> Result<()> {
        if dims4(layout)? != dims.map(|d| d as usize) {
            candle_core::bail!("convolution: {what} has shape {:?}, {dims:?} expected", layout.dims());
        }
        Ok(())
    }
}

/// One geometry's descriptors and, once chosen, each pass's algorithm and workspace bytes.
struct Plan {
    input: TensorDescriptor<f32>,
    filter: FilterDescriptor<f32>,
    convolution: ConvDescriptor<f32>,
    output: TensorDescriptor<f32>,
    forward: Option<(cudnnConvolutionFwdAlgo_t, usize)>,
    backward_data: Option<(cudnnConvolutionBwdDataAlgo_t, usize)>,
    backward_filter: Option<(cudnnConvolutionBwdFilterAlgo_t, usize)>,
}

impl Plan {
    /// The descriptors of `geometry`, under FMA math (cuDNN's default math with TF32 allowed).
    fn new(cudnn: &Arc<Cudnn>, geometry: &Geometry) -> std::result::Result<Self, CudnnError> {
        let nchw = cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
        let mut convolution = cudnn.create_conv2d::<f32>(
            geometry.padding,
            [geometry.stride; 2],
            [1, 1],
            cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
        )?;
        let math = if geometry.tf32 { cudnnMathType_t::CUDNN_DEFAULT_MATH } else { cudnnMathType_t::CUDNN_FMA_MATH };
        convolution.set_math_type(math)?;
        Ok(Self {
            input: cudnn.create_4d_tensor::<f32>(nchw, geometry.input)?,
            filter: cudnn.create_4d_filter::<f32>(nchw, geometry.filter)?,
            convolution,
            output: cudnn.create_4d_tensor::<f32>(nchw, geometry.output)?,
            forward: None,
            backward_data: None,
            backward_filter: None,
        })
    }
}

/// A device's workspace: one buffer that only grows.
struct Workspace(Option<CudaSlice<u8>>);

impl Workspace {
    /// The workspace, at least `bytes` long (`None` when no bytes are needed).
    fn at_least(&mut self, device: &CudaDevice, bytes: usize) -> Result<Option<&mut CudaSlice<u8>>> {
        if bytes == 0 {
            return Ok(None);
        }
        if self.0.as_ref().map_or(0, CudaSlice::len) < bytes {
            self.0 = Some(device.alloc_zeros::<u8>(bytes)?);
        }
        Ok(self.0.as_mut())
    }
}

/// A device's cuDNN handle, plans and workspace.
struct DeviceState {
    cudnn: Arc<Cudnn>,
    plans: HashMap<Geometry, Plan>,
    workspace: Workspace,
}

thread_local! {
    static STATES: RefCell<HashMap<DeviceId, DeviceState>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the plan of `geometry` on `device` (made on first use, with the device's cuDNN
/// handle) and the device's workspace.
fn with_plan<R>(
    device: &CudaDevice,
    geometry: Geometry,
    f: impl FnOnce(&mut Plan, &mut Workspace) -> Result<R>,
) -> Result<R> {
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        let state = match states.entry(device.id()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(DeviceState {
                cudnn: Cudnn::new(device.cuda_stream()).map_err(cudnn_error)?,
                plans: HashMap::new(),
                workspace: Workspace(None),
            }),
        };
        let DeviceState { cudnn, plans, workspace } = state;
        let plan = match plans.entry(geometry) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(Plan::new(cudnn, &geometry).map_err(cudnn_error)?)
            }
        };
        f(plan, workspace)
    })
}

/// A pass's algorithm and workspace bytes: those chosen before for this geometry, else `pick`'s
/// (cuDNN's heuristics), kept in `slot`.
fn chosen<A: Copy>(
    slot: &mut Option<(A, usize)>,
    pick: impl FnOnce() -> std::result::Result<(A, usize), CudnnError>,
) -> Result<(A, usize)> {
    if let Some(chosen) = *slot {
        return Ok(chosen);
    }
    Ok(*slot.insert(pick().map_err(cudnn_error)?))
}

/// A layout's four dimensions.
fn dims4(layout: &Layout) -> Result<[usize; 4]> {
    match *layout.dims() {
        [a, b, c, d] => Ok([a, b, c, d]),
        _ => candle_core::bail!("convolution: a tensor of shape {:?}, four dimensions expected", layout.dims()),
    }
}

/// cuDNN's error as candle's.
fn cudnn_error(error: CudnnError) -> candle_core::Error {
    candle_core::Error::Cuda(Box::new(error))
}

/// A size as cuDNN's `int`.
fn int(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("convolution size {n}: too large for cuDNN")))
}

fn ints(dims: [usize; 4]) -> Result<[i32; 4]> {
    Ok([int(dims[0])?, int(dims[1])?, int(dims[2])?, int(dims[3])?])
}
