//! Adam's (and AdamW's) update on the CPU, in place: one pass over parameter, both moments and
//! gradient ([`AdamUpdate`]), the chunks in parallel.

use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Tensor};
use rayon::prelude::*;

use crate::backend::adam::AdamUpdate;

/// Elements per parallel task of the in-place update.
const CHUNK: usize = 1 << 14;

/// [`AdamUpdate::apply`] for tensors in CPU memory.
pub(crate) fn apply(
    update: &AdamUpdate,
    theta: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &Tensor,
) -> Result<()> {
    let (grad_storage, grad_layout) = grad.storage_and_layout();
    let candle_core::Storage::Cpu(grad_storage) = &*grad_storage else {
        candle_core::bail!("Adam's CPU update needs the gradient in CPU memory")
    };
    let g = &grad_storage.as_slice::<f32>()?[contiguous_range(grad_layout)?];
    with_slice_mut(theta, |theta| {
        with_slice_mut(exp_avg, |m| {
            with_slice_mut(exp_avg_sq, |v| {
                if [m.len(), v.len(), g.len()].iter().any(|&len| len != theta.len()) {
                    candle_core::bail!("Adam: parameter, moments and gradient differ in size");
                }
                update_in_place(update, theta, m, v, g);
                Ok(())
            })
        })
    })
}

fn update_in_place(update: &AdamUpdate, theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let AdamUpdate { beta1, beta2, grad_scale, l2, decay, step_size, bias2_sqrt, eps } = *update;
    let (weight1, weight2) = (1.0 - beta1, 1.0 - beta2);
    let chunks = theta.par_chunks_mut(CHUNK).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK));
    chunks.zip(g.par_chunks(CHUNK)).for_each(|(((theta, m), v), g)| {
        for (((theta, m), v), &g) in theta.iter_mut().zip(m).zip(v).zip(g) {
            let g = if l2 == 0.0 { g * grad_scale } else { g * grad_scale + l2 * *theta };
            *m += weight1 * (g - *m);
            *v = *v * beta2 + weight2 * g * g;
            *theta = *theta * decay - step_size * (*m / (v.sqrt() / bias2_sqrt + eps));
        }
    });
}

/// The range of a contiguous layout's elements in its storage.
fn contiguous_range(layout: &Layout) -> Result<std::ops::Range<usize>> {
    let Some((lo, hi)) = layout.contiguous_offsets() else { candle_core::bail!("Adam needs contiguous tensors") };
    Ok(lo..hi)
}

/// Runs `f` on the elements of a contiguous f32 CPU tensor, mutably (candle's in-place operation
/// hands out one storage at a time; nesting these gives the update all three).
fn with_slice_mut(tensor: &Tensor, mut f: impl FnMut(&mut [f32]) -> Result<()>) -> Result<()> {
    tensor.inplace_op1(&WithSliceMut(std::cell::RefCell::new(&mut f)))
}

/// What [`with_slice_mut`] runs.
type SliceFn<'f> = dyn FnMut(&mut [f32]) -> Result<()> + 'f;

/// The in-place operation behind [`with_slice_mut`].
struct WithSliceMut<'a, 'f>(std::cell::RefCell<&'a mut SliceFn<'f>>);

impl InplaceOp1 for WithSliceMut<'_, '_> {
    fn name(&self) -> &'static str {
        "adam-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let range = contiguous_range(layout)?;
        let CpuStorage::F32(values) = storage else { candle_core::bail!("Adam's CPU update needs f32 tensors") };
        let mut f = self.0.try_borrow_mut().map_err(|_| candle_core::Error::Msg("Adam: nested update".into()))?;
        (*f)(&mut values[range])
    }
}
