//! One LSTM layer's forward pass over a whole teacher-forced sequence, keeping what its backward
//! pass needs, and that backward pass: PyTorch's `nn.LSTM` formulas on plain float32 vectors.
//!
//! Sequences are packed, as PyTorch's `PackedSequence`: longest first, step `t` holds the
//! sequences not yet over, one step after another ([`SequenceShape`]). A
//! sequence's steps after its last counted target change neither the loss nor any gradient (their
//! gradients are exact zeros), so they are not computed. Gates are in PyTorch's order `i, f, g,
//! o`: `i, f, o` sigmoids and `g` a tanh of `x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh`; `c' = f·c + i·g`,
//! `h' = o·tanh(c')`, from zero states.

use crate::backend::packing::SequenceShape;
use std::borrow::Cow;

use rayon::prelude::*;

use super::decoder_weights::LayerWeights;
use super::gemm::{View, column_sums, matmul, transposed};
use super::kernels::{sigmoid_in_place, tanh_in_place};

/// PyTorch's LSTM cell for one row, once its gates' pre-activations are summed: `gates` holds
/// `i, f, g, o` (4 × units, pre-activation) and is activated in place (sigmoid, sigmoid, tanh,
/// sigmoid); `cell` holds `c_{t−1}` (zeros at the first step) and becomes `c_t = f·c_{t−1} + i·g`;
/// `cell_tanh` receives `tanh(c_t)` and `hidden` `h_t = o·tanh(c_t)`. Greedy decoding and the
/// training pass both step through it.
pub(crate) fn cell_forward(gates: &mut [f32], cell: &mut [f32], cell_tanh: &mut [f32], hidden: &mut [f32]) {
    let units = cell.len();
    sigmoid_in_place(&mut gates[..2 * units]);
    tanh_in_place(&mut gates[2 * units..3 * units]);
    sigmoid_in_place(&mut gates[3 * units..]);
    let (i, rest) = gates.split_at(units);
    let (f, rest) = rest.split_at(units);
    let (candidate, o) = rest.split_at(units);
    for j in 0..units {
        cell[j] = f[j] * cell[j] + i[j] * candidate[j];
    }
    cell_tanh.copy_from_slice(cell);
    tanh_in_place(cell_tanh);
    for j in 0..units {
        hidden[j] = o[j] * cell_tanh[j];
    }
}

/// The backward pass of [`cell_forward`] for one row: from its activated `gates` (`i, f, g, o`),
/// `cell_tanh` (`tanh(c_t)`), the previous cell state `c_{t−1}` (`None`: zeros, a first step
/// from a zero state) and `d_hidden` (the loss's gradient for `h_t`). `d_cell` holds the gradient
/// for `c_t` reaching it from the next step and becomes the one for `c_{t−1}`; `d_gates` (4 ×
/// units) receives the gradients for the gates' pre-activations. The training pass of the LSTM
/// decoder and of the attention decoder's cell both step back through it.
pub(crate) fn cell_backward(
    gates: &[f32],
    cell_tanh: &[f32],
    previous_cell: Option<&[f32]>,
    d_hidden: &[f32],
    d_cell: &mut [f32],
    d_gates: &mut [f32],
) {
    let units = cell_tanh.len();
    let (i, f, candidate, o) =
        (&gates[..units], &gates[units..2 * units], &gates[2 * units..3 * units], &gates[3 * units..]);
    let (d_i, rest) = d_gates.split_at_mut(units);
    let (d_f, rest) = rest.split_at_mut(units);
    let (d_candidate, d_o) = rest.split_at_mut(units);
    for j in 0..units {
        let d_h = d_hidden[j];
        let d_c = d_cell[j] + d_h * o[j] * (1.0 - cell_tanh[j] * cell_tanh[j]);
        d_i[j] = d_c * candidate[j] * i[j] * (1.0 - i[j]);
        d_candidate[j] = d_c * i[j] * (1.0 - candidate[j] * candidate[j]);
        d_o[j] = d_h * cell_tanh[j] * o[j] * (1.0 - o[j]);
        d_cell[j] = d_c * f[j];
        d_f[j] = match previous_cell {
            Some(previous) => d_c * (previous[j] * f[j] * (1.0 - f[j])),
            None => 0.0,
        };
    }
}

/// What a layer's forward pass keeps for its backward pass.
pub(crate) struct LayerCache {
    /// The layer's input, rows × input.
    pub input: Vec<f32>,
    /// The gate activations `i, f, g, o`, rows × 4·hidden.
    gates: Vec<f32>,
    /// The cell states, rows × hidden.
    cells: Vec<f32>,
    /// `tanh` of the cell states.
    cells_tanh: Vec<f32>,
    /// The hidden states (the layer's output), rows × hidden.
    pub hidden: Vec<f32>,
}

impl LayerCache {
    /// A layer's forward pass computed elsewhere (the sampling loop), rows in packed order: its
    /// `input` (rows × input), activated `gates` (rows × 4·hidden, `i, f, g, o`), `cells`, their
    /// `tanh` and the `hidden` states (rows × hidden each).
    pub(crate) fn new(
        input: Vec<f32>,
        gates: Vec<f32>,
        cells: Vec<f32>,
        cells_tanh: Vec<f32>,
        hidden: Vec<f32>,
    ) -> Self {
        Self { input, gates, cells, cells_tanh, hidden }
    }
}

/// The layer over `input` (rows × input).
pub(crate) fn forward(layer: &LayerWeights, input: Vec<f32>, shape: &SequenceShape) -> LayerCache {
    let hidden = shape.hidden;
    let rows = shape.rows();
    let width = 4 * hidden;
    let input_size = layer.w_ih.len() / width;
    // Input projections of every step at once, on top of both biases.
    let bias: Vec<f32> = layer.b_ih.iter().zip(layer.b_hh).map(|(a, b)| a + b).collect();
    let mut gates = vec![0.0; rows * width];
    gates.chunks_exact_mut(width).for_each(|row| row.copy_from_slice(&bias));
    let w_ih_t = transposed(layer.w_ih, width, input_size);
    matmul(&mut gates, true, View::rows(&input, rows, input_size), View::rows(&w_ih_t, input_size, width));
    let w_hh_t = transposed(layer.w_hh, width, hidden);

    let mut cells = vec![0.0; rows * hidden];
    let mut cells_tanh = vec![0.0; rows * hidden];
    let mut outputs = vec![0.0; rows * hidden];
    for t in 0..shape.steps() {
        let now = shape.step(t);
        let batch = now.len();
        // The same sequences' rows in the step before (they lead it: steps never grow).
        let before = if t > 0 { shape.step(t - 1).start } else { 0 };
        let step_gates = &mut gates[now.start * width..now.end * width];
        if t > 0 {
            let previous = View::rows(&outputs, rows, hidden).row_range(before..before + batch);
            matmul(step_gates, true, previous, View::rows(&w_hh_t, hidden, width));
        }
        // Cells of the previous step (zeros at t = 0) and of this one.
        let (done, rest) = cells.split_at_mut(now.start * hidden);
        let previous_cells = if t > 0 { &done[before * hidden..] } else { &[][..] };
        let step_cells = &mut rest[..batch * hidden];
        let step_tanh = &mut cells_tanh[now.start * hidden..now.end * hidden];
        let step_outputs = &mut outputs[now.start * hidden..now.end * hidden];
        // The step's rows in parallel (each its own slices).
        step_gates
            .par_chunks_exact_mut(width)
            .zip(step_cells.par_chunks_exact_mut(hidden))
            .zip(step_tanh.par_chunks_exact_mut(hidden).zip(step_outputs.par_chunks_exact_mut(hidden)))
            .enumerate()
            .for_each(|(b, ((gates, c), (cell_tanh, output)))| {
                if t > 0 {
                    c.copy_from_slice(&previous_cells[b * hidden..][..hidden]);
                }
                cell_forward(gates, c, cell_tanh, output);
            });
    }
    LayerCache { input, gates, cells, cells_tanh, hidden: outputs }
}

/// The layer's gradients: its weights' and its input's.
pub(crate) struct LayerGradients {
    /// For `weight_ih`, 4·hidden × input.
    pub w_ih: Vec<f32>,
    /// For `weight_hh`, 4·hidden × hidden.
    pub w_hh: Vec<f32>,
    /// For `bias_ih` and for `bias_hh` (the same: both are added to the gates).
    pub bias: Vec<f32>,
    /// For the layer's input, rows × input.
    pub input: Vec<f32>,
}

/// The backward pass from `d_output` (the loss's gradient for the layer's hidden states, rows ×
/// hidden).
pub(crate) fn backward(
    layer: &LayerWeights,
    cache: &LayerCache,
    d_output: &[f32],
    shape: &SequenceShape,
) -> LayerGradients {
    let (batch, hidden) = (shape.order.len(), shape.hidden);
    let rows = shape.rows();
    let width = 4 * hidden;
    let input_size = layer.w_ih.len() / width;
    // Gradients for the gates' pre-activations, every step.
    let mut d_gates = vec![0.0; rows * width];
    // The gradients reaching step t from step t + 1, for h and for c (zeros for the sequences
    // whose last step is t).
    let mut d_hidden_next = vec![0.0; batch * hidden];
    let mut d_cell_next = vec![0.0; batch * hidden];
    for t in (0..shape.steps()).rev() {
        let now = shape.step(t);
        let before = if t > 0 { shape.step(t - 1).start } else { 0 };
        // The step's rows in parallel (each its own slices).
        let rows_now = now.len();
        d_hidden_next[..rows_now * hidden]
            .par_chunks_exact_mut(hidden)
            .zip(d_cell_next[..rows_now * hidden].par_chunks_exact_mut(hidden))
            .zip(d_gates[now.start * width..now.end * width].par_chunks_exact_mut(width))
            .enumerate()
            .for_each(|(b, ((d_hidden, d_cell), d_gates))| {
                let r = now.start + b;
                // The gradient for h_t: the output's and the next step's (in place of the latter).
                d_hidden.iter_mut().zip(&d_output[r * hidden..][..hidden]).for_each(|(d, o)| *d += o);
                let previous = (t > 0).then(|| &cache.cells[(before + b) * hidden..][..hidden]);
                let (gates, cell_tanh) =
                    (&cache.gates[r * width..][..width], &cache.cells_tanh[r * hidden..][..hidden]);
                cell_backward(gates, cell_tanh, previous, d_hidden, d_cell, d_gates);
            });
        if t > 0 {
            let step_gates = View::rows(&d_gates, rows, width).row_range(now.clone());
            let d_hidden = &mut d_hidden_next[..now.len() * hidden];
            matmul(d_hidden, false, step_gates, View::rows(layer.w_hh, width, hidden));
        }
    }
    let all_gates = View::rows(&d_gates, rows, width);
    let mut w_ih = vec![0.0; width * input_size];
    matmul(&mut w_ih, false, all_gates.t(), View::rows(&cache.input, rows, input_size));
    // h_{t−1} meets the gates of step t ≥ 1.
    let later = if shape.steps() > 1 { shape.step(1).start..rows } else { rows..rows };
    let previous_hidden = previous_hidden(&cache.hidden, shape);
    let mut w_hh = vec![0.0; width * hidden];
    matmul(&mut w_hh, false, all_gates.row_range(later.clone()).t(), View::rows(&previous_hidden, later.len(), hidden));
    let bias = column_sums(&d_gates, width);
    let mut input = vec![0.0; rows * input_size];
    matmul(&mut input, false, all_gates, View::rows(layer.w_ih, width, input_size));
    LayerGradients { w_ih, w_hh, bias, input }
}

/// The hidden states `h_{t−1}` that meet the rows of steps `t ≥ 1`, row for row: the rows before
/// the last step's as they are when nothing is packed away, gathered otherwise.
fn previous_hidden<'a>(hidden_states: &'a [f32], shape: &SequenceShape) -> Cow<'a, [f32]> {
    let hidden = shape.hidden;
    let steps = shape.steps();
    if steps < 2 {
        return Cow::Borrowed(&[]);
    }
    if shape.is_full() {
        return Cow::Borrowed(&hidden_states[..shape.step(steps - 1).start * hidden]);
    }
    let mut gathered = Vec::with_capacity((shape.rows() - shape.step(1).start) * hidden);
    for t in 1..steps {
        let before = shape.step(t - 1).start;
        gathered.extend_from_slice(&hidden_states[before * hidden..(before + shape.step(t).len()) * hidden]);
    }
    Cow::Owned(gathered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_hidden_states_meet_the_next_steps_rows() {
        // Rows 0..3 are step 0 (three sequences), 3..5 step 1 (two), 5 step 2 (one); hidden 1.
        let shape = SequenceShape::packed(&[2, 3, 1], 1);
        let hidden: Vec<f32> = (0..shape.rows()).map(|r| r as f32).collect();
        // Step 1's rows meet step 0's first two rows, step 2's row meets step 1's first row.
        assert_eq!(previous_hidden(&hidden, &shape).into_owned(), vec![0.0, 1.0, 3.0]);
    }
}
