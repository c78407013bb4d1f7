//! Beam search on CUDA: [`beam::search`](crate::beam)'s loop, with each step's decoder work on the
//! GPU. The live hypotheses' states are gathered by their parents' rows and their last words'
//! embeddings by id (one upload of both lists), the decoder step of
//! [`decoder_step`](super::decoder_step) runs for all rows at once, and
//! [`top_words`](super::kernels::top_words) picks each row's `beam_size` most probable next words
//! with their log-probabilities; only those (rows × beam pairs, not rows × vocabulary) travel back
//! to the host, which keeps each image's best extensions as on every path.

use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::{Result, Tensor};

use super::decoder_step::{Scratch, State, step, with_decoder};
use super::{kernels, upload, zeros};
use crate::backend::views::LstmDecoderTensors;
use crate::beam::{self, BeamConfig, BeamStep, Hypothesis};

/// Beam search of `features` (images × embed, float32 on a CUDA device) as
/// [`DecoderRNN::beam_search_n_best`](crate::DecoderRNN::beam_search_n_best).
pub(crate) fn beam_search_n_best(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    config: BeamConfig,
    n: usize,
) -> Result<Vec<Vec<Hypothesis>>> {
    let images = features.dim(0)?;
    if images == 0 {
        return Ok(Vec::new());
    }
    with_decoder(decoder, features, |device, weights, features, sizes| {
        // No step has more rows than each image's beam of live hypotheses.
        let capacity = images * config.beam_size.max(1);
        let count = config.beam_size.max(1).min(sizes.vocab);
        let blas = device.cublas_handle();
        let mut state = State::zeros(device, weights, sizes, capacity)?;
        let mut gathered = State::zeros(device, weights, sizes, capacity)?;
        let mut scratch = Scratch::new(device, sizes, capacity)?;
        let mut input = zeros(device, capacity * sizes.embed)?;
        let mut words: CudaSlice<u32> = device.alloc_zeros(capacity * count)?;
        let mut log_probs = zeros(device, capacity * count)?;
        beam::search(images, config, n, |continued| {
            let rows = match &continued {
                None => images,
                Some(continued) => {
                    let rows = continued.parents.len();
                    if rows > capacity {
                        candle_core::bail!("beam search: {rows} hypotheses, room for {capacity}");
                    }
                    let index = upload(device, &[continued.parents, continued.words].concat())?;
                    let (parents, last_words) = (index.slice(..rows), index.slice(rows..));
                    kernels::gather_rows(device, &mut input, 0, weights.embed, &last_words, None, sizes.embed)?;
                    for (from, to) in [(&state.hiddens, &mut gathered.hiddens), (&state.cells, &mut gathered.cells)] {
                        for (from, to) in from.iter().zip(to.iter_mut()) {
                            kernels::gather_rows(device, to, 0, &from.as_view(), &parents, None, sizes.hidden)?;
                        }
                    }
                    std::mem::swap(&mut state, &mut gathered);
                    rows
                }
            };
            let first = continued.is_none();
            let step_input = if first { features.slice(..) } else { input.as_view() };
            step(device, &blas, weights, sizes, &step_input, rows, first, &mut state, &mut scratch)?;
            let logits = scratch.logits.slice(..rows * sizes.vocab);
            kernels::top_words(device, &logits, weights.linear_bias, &mut words, &mut log_probs, 0, count)?;
            let ids = device.clone_dtoh(&words.slice(..rows * count))?;
            let scores = device.clone_dtoh(&log_probs.slice(..rows * count))?;
            let next_words = ids
                .chunks(count)
                .zip(scores.chunks(count))
                .map(|(ids, scores)| ids.iter().copied().zip(scores.iter().copied()).collect())
                .collect();
            Ok(BeamStep { next_words, alphas: None })
        })
    })
}
