//! Greedy decoding on CUDA: the loop of [`DecoderRNN::greedy_with_tensors`](crate::DecoderRNN::greedy_with_tensors) with each step as
//! the decoder step of [`decoder_step`](super::decoder_step), one kernel that picks every row's
//! word and its log-probability ([`top_words`](super::kernels::top_words) with one word), and an
//! embedding gather that reads the chosen ids where the choice wrote them. The host does not wait
//! for a step: it looks at the ids every [`CHECK_EVERY`] steps and stops once every row has
//! reached `<EOS>`.

use candle_core::cuda_backend::CudaDevice;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::{Result, Tensor};

use super::decoder_step::{DecoderWeights, Scratch, Sizes, State, step, with_decoder};
use super::{kernels, zeros};
use crate::backend::views::LstmDecoderTensors;

/// Steps between two looks at the chosen ids (each look waits for the GPU).
const CHECK_EVERY: usize = 8;

/// Each row's word ids and summed log-probability.
type Captions = Vec<(Vec<u32>, f32)>;

/// Greedy decoding of `features` (batch × embed, float32 on a CUDA device) as
/// [`DecoderRNN::greedy`](crate::DecoderRNN::greedy).
pub(crate) fn greedy(decoder: &LstmDecoderTensors, features: &Tensor, max_length: usize, eos: u32) -> Result<Captions> {
    let batch = features.dim(0)?;
    with_decoder(decoder, features, |device, weights, features, sizes| {
        decode(device, weights, features, batch, sizes, max_length, eos)
    })
}

fn decode(
    device: &CudaDevice,
    weights: &DecoderWeights,
    features: &CudaView<f32>,
    batch: usize,
    sizes: Sizes,
    max_length: usize,
    eos: u32,
) -> Result<Captions> {
    let mut results: Captions = vec![(Vec::new(), 0.0); batch];
    if batch == 0 || max_length == 0 {
        return Ok(results);
    }
    let blas = device.cublas_handle();
    let mut state = State::zeros(device, weights, sizes, batch)?;
    let mut scratch = Scratch::new(device, sizes, batch)?;
    let mut input = zeros(device, batch * sizes.embed)?;
    device.memcpy_dtod(features, &mut input)?;
    // The chosen word and its log-probability of every step, step after step.
    let mut ids: CudaSlice<u32> = device.alloc_zeros(max_length * batch)?;
    let mut scores = zeros(device, max_length * batch)?;
    let mut finished = vec![false; batch];
    let mut looked = 0;
    for at in 0..max_length {
        step(device, &blas, weights, sizes, &input.as_view(), batch, at == 0, &mut state, &mut scratch)?;
        let logits = scratch.logits.as_view();
        kernels::top_words(device, &logits, weights.linear_bias, &mut ids, &mut scores, at * batch, 1)?;
        let chosen = ids.slice(at * batch..(at + 1) * batch);
        kernels::gather_rows(device, &mut input, 0, weights.embed, &chosen, None, sizes.embed)?;
        if (at + 1) % CHECK_EVERY == 0 || at + 1 == max_length {
            let range = looked * batch..(at + 1) * batch;
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
            looked = at + 1;
            if finished.iter().all(|&f| f) {
                break;
            }
        }
    }
    Ok(results)
}
