//! Greedy decoding on CUDA: the loop of [`DecoderRNN::greedy_with_tensors`] with each step as a
//! few cuBLAS products, the fused LSTM cell of the training pass, one kernel that picks every row's
//! word and its log-probability, and an embedding gather that reads the chosen ids where the
//! choice wrote them. The host does not wait for a step: it looks at the ids every
//! [`CHECK_EVERY`] steps and stops once every row has reached `<EOS>`.

use candle_core::cuda_backend::CudaDevice;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::{Result, Tensor};

use super::blas::{Matrix, matmul};
use super::kernels;
use super::{with_device_views, zeros};
use crate::DecoderRNN;

/// Steps between two looks at the chosen ids (each look waits for the GPU).
const CHECK_EVERY: usize = 8;

/// Each row's word ids and summed log-probability.
type Captions = Vec<(Vec<u32>, f32)>;

/// Greedy decoding of `features` (batch × embed, float32 on a CUDA device) as
/// [`DecoderRNN::greedy`].
pub(crate) fn greedy(decoder: &DecoderRNN, features: &Tensor, max_length: usize, eos: u32) -> Result<Captions> {
    let parameters = decoder.named_parameters()?;
    let (batch, embed) = features.dims2()?;
    let (vocab, hidden) = decoder.linear_weight().dims2()?;
    let (_, embed_size) = decoder.embed_weights().dims2()?;
    if embed != embed_size {
        candle_core::bail!("greedy decoding: the features have {embed} columns, the decoder takes {embed_size}");
    }
    let mut tensors = vec![features];
    tensors.extend(parameters.iter().map(|(_, tensor)| tensor));
    with_device_views(&tensors, |device, views| {
        let weights =
            Weights { embed: &views[1], linear_weight: &views[2], linear_bias: &views[3], layers: &views[4..] };
        let sizes = Sizes { batch, embed, hidden, vocab };
        decode(device, &weights, &views[0], sizes, max_length, eos)
    })
}

/// The decoder's parameters in device memory.
struct Weights<'a, 'b> {
    embed: &'b CudaView<'a, f32>,
    linear_weight: &'b CudaView<'a, f32>,
    linear_bias: &'b CudaView<'a, f32>,
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` of each layer.
    layers: &'b [CudaView<'a, f32>],
}

#[derive(Clone, Copy)]
struct Sizes {
    batch: usize,
    embed: usize,
    hidden: usize,
    vocab: usize,
}

fn decode(
    device: &CudaDevice,
    w: &Weights,
    features: &CudaView<f32>,
    sizes: Sizes,
    max_length: usize,
    eos: u32,
) -> Result<Captions> {
    let Sizes { batch, embed, hidden, vocab } = sizes;
    let mut results: Captions = vec![(Vec::new(), 0.0); batch];
    if batch == 0 || max_length == 0 {
        return Ok(results);
    }
    let blas = device.cublas_handle();
    let layers = w.layers.len() / 4;
    let width = 4 * hidden;
    // Each layer's hidden and cell state (zeros before the first step), and scratch.
    let mut hiddens = (0..layers).map(|_| zeros(device, batch * hidden)).collect::<Result<Vec<_>>>()?;
    let mut cells = (0..layers).map(|_| zeros(device, batch * hidden)).collect::<Result<Vec<_>>>()?;
    let mut cells_tanh = zeros(device, batch * hidden)?;
    let mut gates = zeros(device, batch * width)?;
    let mut logits = zeros(device, batch * vocab)?;
    let mut input = zeros(device, batch * embed)?;
    device.memcpy_dtod(features, &mut input)?;
    // The chosen word and its log-probability of every step, step after step.
    let mut ids: CudaSlice<u32> = device.alloc_zeros(max_length * batch)?;
    let mut scores = zeros(device, max_length * batch)?;
    let mut finished = vec![false; batch];
    let mut looked = 0;
    for step in 0..max_length {
        for layer in 0..layers {
            let [w_ih, w_hh, b_ih, b_hh] = &w.layers[4 * layer..4 * layer + 4] else {
                candle_core::bail!("an LSTM layer has four parameters")
            };
            kernels::fill_rows(device, &mut gates, b_ih, Some(b_hh))?;
            let input_size = w_ih.len() / width;
            {
                let below = if layer == 0 { input.as_view() } else { hiddens[layer - 1].as_view() };
                let x = Matrix::rows(&below, batch, input_size);
                matmul(&blas, &mut gates, 0, true, x, Matrix::rows(w_ih, width, input_size).t())?;
            }
            if step > 0 {
                let h = hiddens[layer].as_view();
                matmul(
                    &blas,
                    &mut gates,
                    0,
                    true,
                    Matrix::rows(&h, batch, hidden),
                    Matrix::rows(w_hh, width, hidden).t(),
                )?;
            }
            let previous = (step > 0).then_some(0);
            let (h, c) = (&mut hiddens[layer], &mut cells[layer]);
            kernels::lstm_cell_forward(device, &mut gates, c, &mut cells_tanh, h, 0, previous, batch, hidden)?;
        }
        {
            let top = hiddens[layers - 1].as_view();
            let linear = Matrix::rows(w.linear_weight, vocab, hidden).t();
            matmul(&blas, &mut logits, 0, false, Matrix::rows(&top, batch, hidden), linear)?;
        }
        kernels::greedy_choice(device, &logits.as_view(), w.linear_bias, &mut ids, &mut scores, step * batch)?;
        let chosen = ids.slice(step * batch..(step + 1) * batch);
        kernels::gather_rows(device, &mut input, 0, w.embed, &chosen, None, embed)?;
        if (step + 1) % CHECK_EVERY == 0 || step + 1 == max_length {
            let range = looked * batch..(step + 1) * batch;
            let (new_ids, new_scores) =
                (device.clone_dtoh(&ids.slice(range.clone()))?, device.clone_dtoh(&scores.slice(range))?);
            for (k, (&id, &score)) in new_ids.iter().zip(&new_scores).enumerate() {
                let row = k % batch;
                if !finished[row] {
                    results[row].0.push(id);
                    results[row].1 += score;
                    finished[row] = id == eos;
                }
            }
            looked = step + 1;
            if finished.iter().all(|&f| f) {
                break;
            }
        }
    }
    Ok(results)
}
