//! Adam's update on CUDA: one kernel over parameter, both moments and gradient, in place.

use candle_core::cuda_backend::CudaStorage;
use candle_core::{InplaceOp1, Layout, Result, Tensor};

use super::kernels;
use crate::backend::adam::AdamUpdate;

/// Updates `theta`, `exp_avg` and `exp_avg_sq` (contiguous float32 tensors of one size on one
/// CUDA device, each starting at its storage's first element) in place from `grad`.
pub(crate) fn apply(
    update: &AdamUpdate,
    theta: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &Tensor,
) -> Result<()> {
    super::with_device_views(&[grad], |device, views| {
        let grad = &views[0];
        with_storage_mut(theta, |theta| {
            with_storage_mut(exp_avg, |m| {
                with_storage_mut(exp_avg_sq, |v| {
                    let (theta, m) = (theta.as_cuda_slice_mut::<f32>()?, m.as_cuda_slice_mut::<f32>()?);
                    kernels::adam_update(device, [theta, m, v.as_cuda_slice_mut::<f32>()?], grad, update)
                })
            })
        })
    })
}

/// Runs `f` on the storage of a contiguous tensor that starts at its storage's first element and
/// covers all of it, mutably (candle's in-place operation hands out one storage at a time;
/// nesting these gives the update all three).
fn with_storage_mut(tensor: &Tensor, mut f: impl FnMut(&mut CudaStorage) -> Result<()>) -> Result<()> {
    tensor.inplace_op1(&WithStorageMut(std::cell::RefCell::new(&mut f)))
}

/// What [`with_storage_mut`] runs.
type StorageFn<'f> = dyn FnMut(&mut CudaStorage) -> Result<()> + 'f;

/// The in-place operation behind [`with_storage_mut`].
struct WithStorageMut<'a, 'f>(std::cell::RefCell<&'a mut StorageFn<'f>>);

impl InplaceOp1 for WithStorageMut<'_, '_> {
    fn name(&self) -> &'static str {
        "adam-update"
    }

    fn cpu_fwd(&self, _: &mut candle_core::CpuStorage, _: &Layout) -> Result<()> {
        candle_core::bail!("Adam's CUDA update was given a tensor in CPU memory")
    }

    fn cuda_fwd(&self, storage: &mut CudaStorage, layout: &Layout) -> Result<()> {
        let whole = layout.contiguous_offsets() == Some((0, layout.shape().elem_count()));
        if !whole || storage.as_cuda_slice::<f32>()?.len() != layout.shape().elem_count() {
            candle_core::bail!("Adam's CUDA update needs tensors that fill their storage");
        }
        let mut f = self.0.try_borrow_mut().map_err(|_| candle_core::Error::Msg("Adam: nested update".into()))?;
        (*f)(storage)
    }
}
