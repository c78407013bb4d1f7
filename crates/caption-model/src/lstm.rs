//! [`Lstm`]: PyTorch's `nn.LSTM` (sequence-first, any number of layers), with its parameter names
//! (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`) and gate order (input,
//! forget, cell, output).
//!
//! The input projections of all time steps are one matrix product per layer; only the recurrent
//! product runs step by step.

use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

/// One layer's weights.
#[derive(Debug, Clone)]
struct LstmLayer {
    /// `weight_ih_l{k}`ᵀ: input × 4·hidden.
    w_ih_t: Tensor,
    /// `weight_hh_l{k}`ᵀ: hidden × 4·hidden.
    w_hh_t: Tensor,
    /// `bias_ih_l{k}`.
    b_ih: Tensor,
    /// `bias_hh_l{k}`.
    b_hh: Tensor,
}

/// The hidden and cell states, each layers × batch × hidden.
#[derive(Debug, Clone)]
pub struct LstmState {
    /// h for every layer.
    pub h: Tensor,
    /// c for every layer.
    pub c: Tensor,
}

/// A stacked LSTM, sequence-first like `nn.LSTM(input_size, hidden_size, num_layers)`.
#[derive(Debug, Clone)]
pub struct Lstm {
    layers: Vec<LstmLayer>,
    hidden_size: usize,
}

impl Lstm {
    /// Loads `num_layers` layers from `vb` (PyTorch's names).
    pub fn new(vb: VarBuilder, input_size: usize, hidden_size: usize, num_layers: usize) -> Result<Self> {
        let layers = (0..num_layers)
            .map(|k| {
                let input = if k == 0 { input_size } else { hidden_size };
                let w_ih = vb.get((4 * hidden_size, input), &format!("weight_ih_l{k}"))?;
                let w_hh = vb.get((4 * hidden_size, hidden_size), &format!("weight_hh_l{k}"))?;
                let b_ih = vb.get(4 * hidden_size, &format!("bias_ih_l{k}"))?;
                let b_hh = vb.get(4 * hidden_size, &format!("bias_hh_l{k}"))?;
                Ok(LstmLayer { w_ih_t: w_ih.t()?, w_hh_t: w_hh.t()?, b_ih, b_hh })
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers, hidden_size })
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Layer `k`'s `weight_ih`, `weight_hh` (PyTorch's layout, 4·hidden × input), `bias_ih`,
    /// `bias_hh`.
    pub(crate) fn layer_weights(&self, k: usize) -> Result<[Tensor; 4]> {
        let layer = &self.layers[k];
        Ok([layer.w_ih_t.t()?, layer.w_hh_t.t()?, layer.b_ih.clone(), layer.b_hh.clone()])
    }

    /// Runs the sequence `x` (time × batch × input) from `state` (zeros when `None`); returns the
    /// last layer's outputs (time × batch × hidden) and the final state.
    pub fn forward(&self, x: &Tensor, state: Option<&LstmState>) -> Result<(Tensor, LstmState)> {
        let (steps, batch, _) = x.dims3()?;
        let zeros = Tensor::zeros((batch, self.hidden_size), x.dtype(), x.device())?;
        let mut input = x.clone();
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for (k, layer) in self.layers.iter().enumerate() {
            let (mut h, mut c) = match state {
                Some(s) => (s.h.get(k)?, s.c.get(k)?),
                None => (zeros.clone(), zeros.clone()),
            };
            // Summed here, not when the layer is built: the weights are variables a trainer
            // updates in place, so a sum taken once would go stale.
            let bias = (&layer.b_ih + &layer.b_hh)?;
            let projected = input
                .reshape((steps * batch, input.dim(2)?))?
                .matmul(&layer.w_ih_t)?
                .broadcast_add(&bias)?
                .reshape((steps, batch, 4 * self.hidden_size))?;
            let mut outputs = Vec::with_capacity(steps);
            for t in 0..steps {
                let gates = (projected.get(t)? + h.matmul(&layer.w_hh_t)?)?;
                (h, c) = cell(&gates, &c)?;
                outputs.push(h.clone());
            }
            input = Tensor::stack(&outputs, 0)?;
            h_n.push(h);
            c_n.push(c);
        }
        Ok((input, LstmState { h: Tensor::stack(&h_n, 0)?, c: Tensor::stack(&c_n, 0)? }))
    }
}

/// `nn.LSTMCell` with PyTorch's names (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`) and gate
/// order: one step of one layer, as the attention decoder's `decode_step`.
#[derive(Debug, Clone)]
pub struct LstmCell {
    pub(crate) weight_ih: Tensor,
    pub(crate) weight_hh: Tensor,
    pub(crate) bias_ih: Tensor,
    pub(crate) bias_hh: Tensor,
}

impl LstmCell {
    /// Loads the cell from `vb` (PyTorch's names).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn new(vb: VarBuilder, input: usize, hidden: usize) -> Result<Self> {
        Ok(Self {
            weight_ih: vb.get((4 * hidden, input), "weight_ih")?,
            weight_hh: vb.get((4 * hidden, hidden), "weight_hh")?,
            bias_ih: vb.get(4 * hidden, "bias_ih")?,
            bias_hh: vb.get(4 * hidden, "bias_hh")?,
        })
    }

    /// One step: `x` (batch × input) from the state `h`, `c` (batch × hidden); returns the next
    /// `h` and `c`.
    ///
    /// # Errors
    /// A shape error.
    pub fn forward(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let input_part = x.matmul(&self.weight_ih.t()?)?.broadcast_add(&self.bias_ih)?;
        let gates = (input_part + h.matmul(&self.weight_hh.t()?)?.broadcast_add(&self.bias_hh)?)?;
        cell(&gates, c)
    }
}

/// The LSTM cell's equation, once for [`Lstm`] and [`LstmCell`]: from the gates' pre-activations
/// (batch × 4·hidden, in PyTorch's order input, forget, cell, output) and the previous cell state,
/// `c' = σ(f)·c + σ(i)·tanh(g)` and `h' = σ(o)·tanh(c')`. Returns `(h', c')`.
fn cell(gates: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
    let chunks = gates.chunk(4, D::Minus1)?;
    let i = candle_nn::ops::sigmoid(&chunks[0])?;
    let f = candle_nn::ops::sigmoid(&chunks[1])?;
    let g = chunks[2].tanh()?;
    let o = candle_nn::ops::sigmoid(&chunks[3])?;
    let c = ((f * c)? + (i * g)?)?;
    let h = (o * c.tanh()?)?;
    Ok((h, c))
}
