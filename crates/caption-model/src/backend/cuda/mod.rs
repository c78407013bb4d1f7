//! The CUDA backend (the `cuda` feature): the decoder's training pass, greedy decoding and beam
//! search, Adam's update and Inception's convolutions and batch norms as cuBLAS or cuDNN calls and
//! fused kernels instead of candle's many small operations, for float32 tensors on a CUDA device.
//! Each fast path computes what the CPU backend's (or the reference path) does, with the same
//! equations (`kernels.cu` holds them, once), and is tested against it on a GPU
//! (`tests/cuda_backend.rs`, run by `tools/device/cuda_check.sh`).
//!
//! - `kernels.cu`, `kernels.rs`: the kernels (compiled by build.rs with nvcc to PTX, embedded)
//!   and one launch function each;
//! - `blas.rs`: row-major matrix products on cuBLAS (no TF32 unless
//!   [`allow_tf32`](super::allow_tf32));
//! - `training_pass.rs`: the teacher-forced decoder (and the encoder head) forward and backward,
//!   PyTorch's `lstm_cell_forward`/`backward` per step;
//! - `decoder_step.rs`: one step of the LSTM decoder for a batch of rows (a few products and the
//!   fused cell per layer, the output layer's product);
//! - `greedy.rs`: greedy decoding, the step and two kernels per step, no wait per step;
//! - `beam.rs`: beam search, the step and one kernel that picks each hypothesis's best next
//!   words, so only those reach the host;
//! - `conv.rs` (the `cudnn` feature): convolutions on cuDNN, forward and backward (a candle
//!   operation with its own gradient), descriptors and algorithms chosen once per shape;
//! - `batch_norm.rs`: batch norm + ReLU after each of Inception's convolutions, in eval mode, with
//!   batch statistics, and in train mode with its backward pass;
//! - `adam.rs`: Adam's update of a parameter and both moments in one kernel.
//!
//! Which path runs is decided in one place, [`choose`](super::choose).

pub(crate) mod adam;
pub(crate) mod batch_norm;
pub(crate) mod beam;
pub(crate) mod blas;
#[cfg(feature = "cudnn")]
pub(crate) mod conv;
pub(crate) mod decoder_step;
pub(crate) mod greedy;
pub(crate) mod kernels;
pub(crate) mod training_pass;

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::cuda_backend::{CudaDevice, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{InplaceOp1, Layout};
use candle_core::{Result, Shape, Storage, Tensor};

/// Keeps the memory freed on `device` in its memory pool for the next allocations instead of
/// handing it back to the driver at each synchronisation: the pool's release threshold (0 by
/// default) raised to the maximum. Candle allocates every tensor with `cuMemAllocAsync` from that
/// pool, so without this each training step that waits for its loss returns its buffers and maps
/// them again in the next step (PyTorch's caching allocator keeps freed blocks the same way).
/// Nothing to do where the driver has no stream-ordered allocation (cudarc then allocates
/// synchronously).
pub(crate) fn keep_freed_memory(device: &CudaDevice) -> Result<()> {
    use candle_core::cuda_backend::cudarc::driver::{result, sys};
    let stream = device.cuda_stream();
    let context = stream.context();
    if !context.has_async_alloc() {
        return Ok(());
    }
    context.bind_to_thread().map_err(kernels::driver_error)?;
    let mut threshold = u64::MAX;
    // SAFETY: the device is the context's, bound to this thread; the release threshold is a
    // cuuint64_t attribute, which `threshold` is.
    unsafe {
        let pool = result::device::get_mem_pool(context.cu_device()).map_err(kernels::driver_error)?;
        let attribute = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
        result::mem_pool::set_attribute(pool, attribute, (&raw mut threshold).cast()).map_err(kernels::driver_error)
    }
}

/// Runs `f` on the data of `tensors` (float32 on one CUDA device, as [`choose`](super::choose)
/// made sure), read in place under their storages' read locks; a tensor that is not contiguous is
/// copied first.
pub(crate) fn with_device_views<R>(
    tensors: &[&Tensor],
    f: impl FnOnce(&CudaDevice, &[CudaView<f32>]) -> Result<R>,
) -> Result<R> {
    let contiguous: Vec<Tensor> = tensors.iter().map(|t| t.contiguous()).collect::<Result<_>>()?;
    let guards: Vec<_> = contiguous.iter().map(Tensor::storage_and_layout).collect();
    let mut device: Option<CudaDevice> = None;
    let mut views = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let Storage::Cuda(cuda) = &**storage else {
            candle_core::bail!("the CUDA backend was given a tensor outside GPU memory")
        };
        if device.as_ref().is_some_and(|d| d.id() != cuda.device.id()) {
            candle_core::bail!("the CUDA backend was given tensors on two devices");
        }
        device.get_or_insert_with(|| cuda.device.clone());
        views.push(view(cuda, layout)?);
    }
    let Some(device) = device else { candle_core::bail!("the CUDA backend was given no tensor") };
    f(&device, &views)
}

/// The float32 elements a contiguous layout covers in `storage` (what a candle operation's CUDA
/// forward pass is handed).
pub(crate) fn view<'a>(storage: &'a CudaStorage, layout: &Layout) -> Result<CudaView<'a, f32>> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the CUDA backend needs contiguous tensors")
    };
    Ok(storage.as_cuda_slice::<f32>()?.slice(start..end))
}

/// `data` (float32 in `device`'s memory) as a tensor of `shape`, tracking no gradient.
pub(crate) fn tensor(data: CudaSlice<f32>, shape: impl Into<Shape>, device: &CudaDevice) -> Result<Tensor> {
    let shape = shape.into();
    if shape.elem_count() != data.len() {
        candle_core::bail!("{} elements for a tensor of shape {shape:?}", data.len());
    }
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(data, device.clone()));
    Ok(Tensor::from_storage(storage, shape, BackpropOp::none(), false))
}

/// `values` copied to `device`.
pub(crate) fn upload<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr + 'static>(
    device: &CudaDevice,
    values: &[T],
) -> Result<CudaSlice<T>> {
    device.clone_htod(values)
}

/// `count` zeros in `device`'s memory.
pub(crate) fn zeros(device: &CudaDevice, count: usize) -> Result<CudaSlice<f32>> {
    device.alloc_zeros::<f32>(count)
}

/// Runs `f` on the storage of a contiguous tensor that starts at its storage's first element and
/// covers all of it, mutably (candle's in-place operation hands out one storage at a time;
/// nesting these gives an update several: Adam's parameter and moments, batch norm's running
/// statistics).
pub(crate) fn with_storage_mut(tensor: &Tensor, mut f: impl FnMut(&mut CudaStorage) -> Result<()>) -> Result<()> {
    tensor.inplace_op1(&WithStorageMut(std::cell::RefCell::new(&mut f)))
}

/// What [`with_storage_mut`] runs.
type StorageFn<'f> = dyn FnMut(&mut CudaStorage) -> Result<()> + 'f;

/// The in-place operation behind [`with_storage_mut`].
struct WithStorageMut<'a, 'f>(std::cell::RefCell<&'a mut StorageFn<'f>>);

impl InplaceOp1 for WithStorageMut<'_, '_> {
    fn name(&self) -> &'static str {
        "cuda-in-place"
    }

    fn cpu_fwd(&self, _: &mut candle_core::CpuStorage, _: &Layout) -> Result<()> {
        candle_core::bail!("the CUDA backend's in-place update was given a tensor in CPU memory")
    }

    fn cuda_fwd(&self, storage: &mut CudaStorage, layout: &Layout) -> Result<()> {
        let whole = layout.contiguous_offsets() == Some((0, layout.shape().elem_count()));
        if !whole || storage.as_cuda_slice::<f32>()?.len() != layout.shape().elem_count() {
            candle_core::bail!("the CUDA backend's in-place update needs tensors that fill their storage");
        }
        let mut f = self
            .0
            .try_borrow_mut()
            .map_err(|_| candle_core::Error::Msg("CUDA in-place update: nested on one tensor".into()))?;
        (*f)(storage)
    }
}
