//! One step of the LSTM decoder on CUDA for a batch of rows, as [`DecoderRNN::step`](crate::DecoderRNN::step): per layer
//! the gates start from both biases, take the input's and the previous hidden state's cuBLAS
//! products, and go through the fused LSTM cell of the training pass (aten's
//! `lstm_cell_forward`); the output layer's product gives the logits (its bias is added by the
//! kernel that reads them, [`top_words`](super::kernels::top_words)). Greedy decoding and beam
//! search run their loops around it.

use candle_core::cuda_backend::CudaDevice;
use candle_core::cuda_backend::cudarc::cublas::CudaBlas;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView};
use candle_core::{Result, Tensor};

use super::blas::{Matrix, matmul};
use super::{kernels, with_device_views, zeros};
use crate::backend::views::LstmDecoderTensors;

/// The decoder's parameters in device memory.
pub(crate) struct DecoderWeights<'a, 'b> {
    /// Embedding table, vocab × embed.
    pub embed: &'b CudaView<'a, f32>,
    /// Output layer, vocab × hidden.
    pub linear_weight: &'b CudaView<'a, f32>,
    /// Output layer's bias, vocab.
    pub linear_bias: &'b CudaView<'a, f32>,
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` of each layer.
    layers: &'b [CudaView<'a, f32>],
}

impl DecoderWeights<'_, '_> {
    fn layers(&self) -> usize {
        self.layers.len() / 4
    }
}

/// The decoder's sizes.
#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    /// Embedding (and image feature) width.
    pub embed: usize,
    /// LSTM hidden units.
    pub hidden: usize,
    /// Vocabulary size.
    pub vocab: usize,
}

/// Runs `f` on the decoder's parameters and `features` (rows × embed, float32 on a CUDA device)
/// in device memory.
pub(crate) fn with_decoder<R>(
    decoder: &LstmDecoderTensors,
    features: &Tensor,
    f: impl FnOnce(&CudaDevice, &DecoderWeights, &CudaView<f32>, Sizes) -> Result<R>,
) -> Result<R> {
    let parameters = &decoder.parameters;
    let (_, embed) = features.dims2()?;
    let (embed_size, hidden, vocab) = decoder.sizes()?;
    if embed != embed_size {
        candle_core::bail!("decoding: the features have {embed} columns, the decoder takes {embed_size}");
    }
    let mut tensors = vec![features];
    tensors.extend(parameters.iter().map(|(_, tensor)| tensor));
    with_device_views(&tensors, |device, views| {
        let weights =
            DecoderWeights { embed: &views[1], linear_weight: &views[2], linear_bias: &views[3], layers: &views[4..] };
        f(device, &weights, &views[0], Sizes { embed, hidden, vocab })
    })
}

/// Each layer's hidden and cell state for up to `capacity` rows.
pub(crate) struct State {
    /// Per layer, rows × hidden.
    pub hiddens: Vec<CudaSlice<f32>>,
    /// Per layer, rows × hidden.
    pub cells: Vec<CudaSlice<f32>>,
}

impl State {
    /// Zeros for `capacity` rows of every layer.
    pub(crate) fn zeros(device: &CudaDevice, weights: &DecoderWeights, sizes: Sizes, capacity: usize) -> Result<Self> {
        let layer = || zeros(device, capacity * sizes.hidden);
        Ok(Self {
            hiddens: (0..weights.layers()).map(|_| layer()).collect::<Result<_>>()?,
            cells: (0..weights.layers()).map(|_| layer()).collect::<Result<_>>()?,
        })
    }

    /// The top layer's hidden states.
    pub(crate) fn top(&self) -> &CudaSlice<f32> {
        &self.hiddens[self.hiddens.len() - 1]
    }
}

/// One step's working memory for up to `capacity` rows.
pub(crate) struct Scratch {
    gates: CudaSlice<f32>,
    cells_tanh: CudaSlice<f32>,
    /// The step's logits without the output layer's bias, rows × vocab.
    pub logits: CudaSlice<f32>,
}

impl Scratch {
    /// Room for `capacity` rows.
    pub(crate) fn new(device: &CudaDevice, sizes: Sizes, capacity: usize) -> Result<Self> {
        Ok(Self {
            gates: zeros(device, capacity * 4 * sizes.hidden)?,
            cells_tanh: zeros(device, capacity * sizes.hidden)?,
            logits: zeros(device, capacity * sizes.vocab)?,
        })
    }
}

/// One step for the first `rows` rows: `input` (rows × embed) through every layer, `state` (its
/// first `rows` rows; ignored at a `first` step, where the state before is zeros) replaced by the
/// new one, the logits into `scratch.logits`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    device: &CudaDevice,
    blas: &CudaBlas,
    weights: &DecoderWeights,
    sizes: Sizes,
    input: &CudaView<f32>,
    rows: usize,
    first: bool,
    state: &mut State,
    scratch: &mut Scratch,
) -> Result<()> {
    let Sizes { hidden, vocab, .. } = sizes;
    let width = 4 * hidden;
    for layer in 0..weights.layers() {
        let [w_ih, w_hh, b_ih, b_hh] = &weights.layers[4 * layer..4 * layer + 4] else {
            candle_core::bail!("an LSTM layer has four parameters")
        };
        kernels::fill_rows(device, &mut scratch.gates, b_ih, Some(b_hh))?;
        let input_size = w_ih.len() / width;
        {
            let below = if layer == 0 { input.slice(..) } else { state.hiddens[layer - 1].as_view() };
            let x = Matrix::rows(&below, rows, input_size);
            matmul(blas, &mut scratch.gates, 0, true, x, Matrix::rows(w_ih, width, input_size).t())?;
        }
        if !first {
            let h = state.hiddens[layer].as_view();
            let h = Matrix::rows(&h, rows, hidden);
            matmul(blas, &mut scratch.gates, 0, true, h, Matrix::rows(w_hh, width, hidden).t())?;
        }
        let previous = (!first).then_some(0);
        let (h, c) = (&mut state.hiddens[layer], &mut state.cells[layer]);
        kernels::lstm_cell_forward(
            device,
            &mut scratch.gates,
            c,
            &mut scratch.cells_tanh,
            h,
            0,
            previous,
            rows,
            hidden,
        )?;
    }
    let top = state.top().as_view();
    let linear = Matrix::rows(weights.linear_weight, vocab, hidden).t();
    matmul(blas, &mut scratch.logits, 0, false, Matrix::rows(&top, rows, hidden), linear)
}
