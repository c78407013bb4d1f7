//! The attention decoder of "Show, Attend and Tell" (Xu et al. 2015) with the semantics of
//! sgrvinod's `DecoderWithAttention` (a-PyTorch-Tutorial-to-Image-Captioning) and its parameter
//! names: at every word, additive attention over the encoder's spatial grid chooses a context
//! vector, a sigmoid gate scales it, and an LSTM cell reads [embedding; gated context].
//!
//! ```text
//! attention:  α = softmax(full_att(relu(encoder_att(a) + decoder_att(h))))   over the P positions
//!             z = Σ_p α_p a_p,   z ← sigmoid(f_beta(h)) ⊙ z
//! decoder:    h₀ = init_h(mean_p a_p), c₀ = init_c(mean_p a_p)
//!             h, c = decode_step([embedding(w_t); z], (h, c))        (an LSTMCell)
//!             scores_t = fc(dropout(h))
//! loss:       cross-entropy over each caption's own length + α_c · mean((1 − Σ_t α_t)²)
//! ```
//!
//! Teacher forcing follows the tutorial exactly: a caption of `L` tokens (`<SOS>` … `<EOS>`)
//! decodes `L − 1` steps; at step `t` only captions longer than `t + 1` advance, and the others'
//! scores and attention weights are zero from then on (the tutorial shrinks the batch; here every
//! row runs and the finished ones are masked, which computes the same values). This is the
//! reference path on candle's operations: autograd differentiates it.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use crate::Dropout;
use crate::backend::views::{AttentionDecoderTensors, AttentionSizes, AttentionTargets};
use crate::backend::{self, AttentionGradients};
use crate::beam::{self, BeamConfig, BeamStep, Continued, Hypothesis};
use crate::loss::masked_cross_entropy;
use crate::lstm::LstmCell;

/// Channels of Inception v3's grid (Mixed_7c), the attention decoder's `encoder_dim`.
pub const ENCODER_DIM: usize = 2048;

/// The tutorial's size of the embedding, the attention network and the LSTM cell.
pub const TUTORIAL_SIZE: usize = 512;

/// Sizes of the attention decoder (the tutorial's defaults: [`TUTORIAL_SIZE`] everywhere,
/// dropout 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionConfig {
    /// Channels of the encoder's grid (2048 for Inception v3's Mixed_7c).
    pub encoder_dim: usize,
    /// Size of the attention network's hidden layer.
    pub attention_dim: usize,
    /// Word embedding size.
    pub embed_dim: usize,
    /// LSTM cell size.
    pub decoder_dim: usize,
    /// Words, specials included.
    pub vocab_size: usize,
    /// Dropout before the output layer.
    pub dropout: f32,
}

/// The additive attention network (`Attention` in the tutorial).
#[derive(Debug, Clone)]
pub struct Attention {
    encoder_att: Linear,
    decoder_att: Linear,
    full_att: Linear,
}

impl Attention {
    /// Builds it under `vb` (`encoder_att`, `decoder_att`, `full_att`).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn new(vb: VarBuilder, encoder_dim: usize, decoder_dim: usize, attention_dim: usize) -> Result<Self> {
        Ok(Self {
            encoder_att: candle_nn::linear(encoder_dim, attention_dim, vb.pp("encoder_att"))?,
            decoder_att: candle_nn::linear(decoder_dim, attention_dim, vb.pp("decoder_att"))?,
            full_att: candle_nn::linear(attention_dim, 1, vb.pp("full_att"))?,
        })
    }

    /// The projection of the encoder's grid (`encoder_att(a)`: batch × P × attention), the same
    /// at every step.
    ///
    /// # Errors
    /// A shape error.
    pub fn project_encoder(&self, encoder_out: &Tensor) -> Result<Tensor> {
        self.encoder_att.forward(encoder_out)
    }

    /// The context vector (batch × encoder) and the weights α (batch × P) for the decoder state
    /// `hidden`, given the grid and its projection.
    ///
    /// # Errors
    /// A shape error.
    pub fn forward(&self, encoder_out: &Tensor, projected: &Tensor, hidden: &Tensor) -> Result<(Tensor, Tensor)> {
        let decoder = self.decoder_att.forward(hidden)?.unsqueeze(1)?;
        let scores = self.full_att.forward(&projected.broadcast_add(&decoder)?.relu()?)?.squeeze(2)?;
        let alpha = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = encoder_out.broadcast_mul(&alpha.unsqueeze(2)?)?.sum(1)?;
        Ok((context, alpha))
    }
}

/// What teacher forcing produces.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    /// Word scores: batch × steps × vocabulary, zero where a caption has ended.
    pub scores: Tensor,
    /// Attention weights: batch × steps × P, zero where a caption has ended.
    pub alphas: Tensor,
    /// Steps each caption decodes (its length − 1).
    pub decode_lengths: Vec<usize>,
}

/// `DecoderWithAttention`.
#[derive(Debug, Clone)]
pub struct DecoderWithAttention {
    attention: Attention,
    embedding: Embedding,
    decode_step: LstmCell,
    init_h: Linear,
    init_c: Linear,
    f_beta: Linear,
    fc: Linear,
    config: AttentionConfig,
}

impl DecoderWithAttention {
    /// Builds it under `vb` with the tutorial's names (`attention.*`, `embedding`, `decode_step`,
    /// `init_h`, `init_c`, `f_beta`, `fc`).
    ///
    /// # Errors
    /// A missing or misshapen tensor.
    pub fn new(vb: VarBuilder, config: AttentionConfig) -> Result<Self> {
        let AttentionConfig { encoder_dim, attention_dim, embed_dim, decoder_dim, vocab_size, .. } = config;
        Ok(Self {
            attention: Attention::new(vb.pp("attention"), encoder_dim, decoder_dim, attention_dim)?,
            embedding: candle_nn::embedding(vocab_size, embed_dim, vb.pp("embedding"))?,
            decode_step: LstmCell::new(vb.pp("decode_step"), embed_dim + encoder_dim, decoder_dim)?,
            init_h: candle_nn::linear(encoder_dim, decoder_dim, vb.pp("init_h"))?,
            init_c: candle_nn::linear(encoder_dim, decoder_dim, vb.pp("init_c"))?,
            f_beta: candle_nn::linear(decoder_dim, encoder_dim, vb.pp("f_beta"))?,
            fc: candle_nn::linear(decoder_dim, vocab_size, vb.pp("fc"))?,
            config,
        })
    }

    /// Its sizes.
    pub fn config(&self) -> AttentionConfig {
        self.config
    }

    /// Every parameter with its name in the tutorial's `DecoderWithAttention`, in a fixed order
    /// (the CPU backend's training pass returns its gradients in this order).
    pub fn named_parameters(&self) -> Vec<(&'static str, Tensor)> {
        let linear =
            |layer: &Linear| (layer.weight().clone(), layer.bias().expect("every layer here has a bias").clone());
        let (encoder_att, encoder_att_bias) = linear(&self.attention.encoder_att);
        let (decoder_att, decoder_att_bias) = linear(&self.attention.decoder_att);
        let (full_att, full_att_bias) = linear(&self.attention.full_att);
        let (init_h, init_h_bias) = linear(&self.init_h);
        let (init_c, init_c_bias) = linear(&self.init_c);
        let (f_beta, f_beta_bias) = linear(&self.f_beta);
        let (fc, fc_bias) = linear(&self.fc);
        let cell = &self.decode_step;
        vec![
            ("attention.encoder_att.weight", encoder_att),
            ("attention.encoder_att.bias", encoder_att_bias),
            ("attention.decoder_att.weight", decoder_att),
            ("attention.decoder_att.bias", decoder_att_bias),
            ("attention.full_att.weight", full_att),
            ("attention.full_att.bias", full_att_bias),
            ("embedding.weight", self.embedding.embeddings().clone()),
            ("decode_step.weight_ih", cell.weight_ih.clone()),
            ("decode_step.weight_hh", cell.weight_hh.clone()),
            ("decode_step.bias_ih", cell.bias_ih.clone()),
            ("decode_step.bias_hh", cell.bias_hh.clone()),
            ("init_h.weight", init_h),
            ("init_h.bias", init_h_bias),
            ("init_c.weight", init_c),
            ("init_c.bias", init_c_bias),
            ("f_beta.weight", f_beta),
            ("f_beta.bias", f_beta_bias),
            ("fc.weight", fc),
            ("fc.bias", fc_bias),
        ]
    }

    /// Its parameters and sizes as the backends read them (its
    /// [`named_parameters`](Self::named_parameters)).
    pub fn tensors(&self) -> AttentionDecoderTensors {
        let AttentionConfig { encoder_dim, attention_dim, embed_dim, decoder_dim, vocab_size, .. } = self.config;
        let parameters = self.named_parameters().into_iter().map(|(name, tensor)| (name.to_string(), tensor)).collect();
        let sizes = AttentionSizes {
            encoder: encoder_dim,
            attention: attention_dim,
            embed: embed_dim,
            decoder: decoder_dim,
            vocab: vocab_size,
        };
        AttentionDecoderTensors { parameters, sizes }
    }

    /// The tutorial's training loss on [`forward`](Self::forward) and its gradients, by a backend
    /// (the CPU's): `encoder_out` (batch × P × encoder), `captions` (batch × T ids, `<SOS>` first,
    /// of which `lengths[i]` tokens count, each caption's tokens weighed by its weight when
    /// given), `dropout` before the output layer, the cross-entropy plus `alpha_c` times
    /// [`doubly_stochastic_penalty`]. The gradients carry
    /// [`named_parameters`](Self::named_parameters)' names.
    ///
    /// `None` when no backend covers the tensors (not float32 in CPU memory, a gradient wanted for
    /// `encoder_out` as in fine-tuning, or the reference path forced): the caller then uses
    /// candle's autograd on [`attention_loss`] (no mask has been drawn).
    ///
    /// # Errors
    /// Shapes that do not fit, lengths below 2 or beyond the captions, or an id outside the
    /// vocabulary.
    pub fn loss_gradients(
        &self,
        encoder_out: &Tensor,
        captions: AttentionTargets,
        dropout: &mut Dropout,
        alpha_c: f64,
    ) -> Result<Option<AttentionGradients>> {
        backend::attention_gradients(&self.tensors(), encoder_out, captions, dropout, alpha_c)
    }

    /// The encoder's spatial features (batch × channels × H × W, as Inception's `spatial`) as the
    /// grid the decoder attends over: batch × (H·W) × channels.
    ///
    /// # Errors
    /// A shape error.
    pub fn grid(spatial: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = spatial.dims4()?;
        spatial.reshape((batch, channels, height * width))?.transpose(1, 2)?.contiguous()
    }

    /// One word: attention with the state `h`, the gated context beside the word's embedding
    /// into the LSTM cell. Returns the next `h`, `c` and the attention weights.
    fn step(
        &self,
        encoder_out: &Tensor,
        projected: &Tensor,
        embedded: &Tensor,
        h: &Tensor,
        c: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (context, alpha) = self.attention.forward(encoder_out, projected, h)?;
        let gate = candle_nn::ops::sigmoid(&self.f_beta.forward(h)?)?;
        let input = Tensor::cat(&[embedded, &(gate * context)?], 1)?;
        let (h, c) = self.decode_step.forward(&input, h, c)?;
        Ok((h, c, alpha))
    }

    /// The initial state from the mean feature of the grid.
    fn init_state(&self, encoder_out: &Tensor) -> Result<(Tensor, Tensor)> {
        let mean = encoder_out.mean(1)?;
        Ok((self.init_h.forward(&mean)?, self.init_c.forward(&mean)?))
    }

    /// Teacher forcing over `captions` (batch × T word ids, `<SOS>` first; `lengths[i]` tokens of
    /// row `i` count, `<EOS>` included) given the grid `encoder_out` (batch × P × encoder).
    /// `dropout` (train mode; `None` in eval mode) is applied before the output layer.
    ///
    /// # Errors
    /// A shape error, or lengths that do not fit the captions.
    pub fn forward(
        &self,
        encoder_out: &Tensor,
        captions: &Tensor,
        lengths: &[usize],
        mut dropout: Option<&mut Dropout>,
    ) -> Result<AttentionOutput> {
        let (batch, positions, _) = encoder_out.dims3()?;
        let tokens = captions.dim(1)?;
        if lengths.len() != batch || lengths.iter().any(|&l| l < 2 || l > tokens) {
            candle_core::bail!("caption lengths {lengths:?} do not fit {batch} captions of {tokens} tokens");
        }
        let decode_lengths: Vec<usize> = lengths.iter().map(|l| l - 1).collect();
        let steps = decode_lengths.iter().copied().max().unwrap_or(0);
        let embeddings = self.embedding.forward(captions)?;
        let projected = self.attention.project_encoder(encoder_out)?;
        let (mut h, mut c) = self.init_state(encoder_out)?;
        let device = encoder_out.device();
        let (mut scores, mut alphas) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        for t in 0..steps {
            let live: Vec<f32> = decode_lengths.iter().map(|&l| if l > t { 1.0 } else { 0.0 }).collect();
            let live = Tensor::from_vec(live, (batch, 1), device)?.to_dtype(encoder_out.dtype())?;
            let embedded = embeddings.narrow(1, t, 1)?.squeeze(1)?;
            let (next_h, next_c, alpha) = self.step(encoder_out, &projected, &embedded, &h, &c)?;
            // Finished rows keep their state (the tutorial drops them from the batch).
            let ended = (1.0 - &live)?;
            h = (next_h.broadcast_mul(&live)? + h.broadcast_mul(&ended)?)?;
            c = (next_c.broadcast_mul(&live)? + c.broadcast_mul(&ended)?)?;
            let before_fc = match dropout.as_deref_mut() {
                Some(dropout) => dropout.apply(&h)?,
                None => h.clone(),
            };
            scores.push(self.fc.forward(&before_fc)?.broadcast_mul(&live)?);
            alphas.push(alpha.broadcast_mul(&live)?);
        }
        let vocab = self.config.vocab_size;
        let (scores, alphas) = if steps == 0 {
            let dtype = encoder_out.dtype();
            (Tensor::zeros((batch, 0, vocab), dtype, device)?, Tensor::zeros((batch, 0, positions), dtype, device)?)
        } else {
            (Tensor::stack(&scores, 1)?, Tensor::stack(&alphas, 1)?)
        };
        Ok(AttentionOutput { scores, alphas, decode_lengths })
    }
}

/// A caption decoded with attention.
#[derive(Debug, Clone, PartialEq)]
pub struct AttendedCaption {
    /// Word ids, the end token included when reached.
    pub ids: Vec<u32>,
    /// Summed log-probability of the chosen words.
    pub log_prob: f64,
    /// Per word, the attention weights over the grid's positions (they sum to 1).
    pub alphas: Vec<Vec<f32>>,
}

impl DecoderWithAttention {
    /// Greedy decoding of each image's grid (`encoder_out`: batch × P × encoder): from `sos`, the
    /// most likely word at every step until `eos` or `max_length` words, with each word's
    /// attention weights.
    ///
    /// # Errors
    /// A shape error.
    pub fn greedy(&self, encoder_out: &Tensor, max_length: usize, sos: u32, eos: u32) -> Result<Vec<AttendedCaption>> {
        let batch = encoder_out.dim(0)?;
        let device = encoder_out.device();
        let projected = self.attention.project_encoder(encoder_out)?;
        let (mut h, mut c) = self.init_state(encoder_out)?;
        let mut words = Tensor::from_vec(vec![sos; batch], batch, device)?;
        let mut captions = vec![AttendedCaption { ids: Vec::new(), log_prob: 0.0, alphas: Vec::new() }; batch];
        let mut done = vec![false; batch];
        for _ in 0..max_length {
            let alpha;
            (h, c, alpha) = self.step(encoder_out, &projected, &self.embedding.forward(&words)?, &h, &c)?;
            let log_probs = candle_nn::ops::log_softmax(&self.fc.forward(&h)?, D::Minus1)?;
            words = log_probs.argmax(D::Minus1)?;
            let chosen =
                log_probs.gather(&words.unsqueeze(1)?, 1)?.squeeze(1)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            let alpha = alpha.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for (row, ((&id, log_prob), alpha)) in words.to_vec1::<u32>()?.iter().zip(chosen).zip(alpha).enumerate() {
                if !done[row] {
                    let caption = &mut captions[row];
                    caption.ids.push(id);
                    caption.log_prob += log_prob;
                    caption.alphas.push(alpha);
                    done[row] = id == eos;
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
        }
        Ok(captions)
    }
}

impl DecoderWithAttention {
    /// Beam search for each image's grid (`encoder_out`: batch × P × encoder) from `sos`: up to
    /// `n` hypotheses per image ranked as [`DecoderRNN::beam_search_n_best`](crate::DecoderRNN::beam_search_n_best)
    /// ranks them (the same search), each word with the attention weights it was chosen with.
    ///
    /// # Errors
    /// A shape error.
    pub fn beam_search_n_best(
        &self,
        encoder_out: &Tensor,
        config: BeamConfig,
        sos: u32,
        n: usize,
    ) -> Result<Vec<Vec<Hypothesis>>> {
        beam::search(encoder_out.dim(0)?, config, n, self.decoding_steps(encoder_out, sos)?)
    }

    /// Decoding one word at a time over the grids `encoder_out` (batch × P × encoder), as beam
    /// search takes it: the first call (`None`) reads `sos` for every image, one row per image;
    /// each later call continues the rows it is given (a previous row and the word it was extended
    /// with). Every call answers every row's log-probability of each word and its attention
    /// weights over the grid.
    ///
    /// # Errors
    /// A shape error.
    pub fn decoding_steps<'a>(
        &'a self,
        encoder_out: &'a Tensor,
        sos: u32,
    ) -> Result<impl FnMut(Option<Continued<'_>>) -> Result<BeamStep> + 'a> {
        let images = encoder_out.dim(0)?;
        let device = encoder_out.device();
        let all_projected = self.attention.project_encoder(encoder_out)?;
        let (h, c) = self.init_state(encoder_out)?;
        let image = (0..images as u32).collect();
        let mut rows = BeamRows { grid: encoder_out.clone(), projected: all_projected.clone(), h, c, image };
        Ok(move |continued: Option<Continued<'_>>| {
            let words = match continued {
                None => vec![sos; images],
                Some(continued) => {
                    let parents = Tensor::new(continued.parents, device)?;
                    let image: Vec<u32> = continued.parents.iter().map(|&p| rows.image[p as usize]).collect();
                    let images = Tensor::new(image.as_slice(), device)?;
                    rows = BeamRows {
                        grid: encoder_out.index_select(&images, 0)?,
                        projected: all_projected.index_select(&images, 0)?,
                        h: rows.h.index_select(&parents, 0)?,
                        c: rows.c.index_select(&parents, 0)?,
                        image,
                    };
                    continued.words.to_vec()
                }
            };
            let embedded = self.embedding.forward(&Tensor::new(words.as_slice(), device)?)?;
            let (h, c, alpha) = self.step(&rows.grid, &rows.projected, &embedded, &rows.h, &rows.c)?;
            let log_probs = candle_nn::ops::log_softmax(&self.fc.forward(&h)?, D::Minus1)?;
            let step = BeamStep::every_word(
                log_probs.to_dtype(DType::F32)?.to_vec2()?,
                Some(alpha.to_dtype(DType::F32)?.to_vec2()?),
            );
            (rows.h, rows.c) = (h, c);
            Ok(step)
        })
    }
}

/// The rows of a beam search step's batch: each row's grid and its projection, its state, and the
/// image it decodes.
struct BeamRows {
    grid: Tensor,
    projected: Tensor,
    h: Tensor,
    c: Tensor,
    image: Vec<u32>,
}

/// The doubly stochastic regularisation: `alpha_c · mean over images and positions of
/// (1 − Σ_t α_t)²` (the sum over every step, zeros after a caption's end included, as the
/// tutorial computes it).
///
/// # Errors
/// A shape error.
pub fn doubly_stochastic_penalty(alphas: &Tensor, alpha_c: f64) -> Result<Tensor> {
    let coverage = alphas.sum(1)?;
    (1.0 - coverage)?.sqr()?.mean_all()? * alpha_c
}

/// The tutorial's training loss: the cross-entropy of `scores` against `captions[:, 1:]` over
/// each caption's decoded steps (mean over those tokens: [`masked_cross_entropy`] with the steps
/// after a caption's end as `pad`, each caption's tokens weighed by `weights` when given) plus
/// [`doubly_stochastic_penalty`].
///
/// # Errors
/// A shape error, or not one weight per caption.
pub fn attention_loss(
    output: &AttentionOutput,
    captions: &Tensor,
    pad: u32,
    weights: Option<&[f32]>,
    alpha_c: f64,
) -> Result<Tensor> {
    let (batch, steps, _) = output.scores.dims3()?;
    let weights = backend::packing::caption_weights(weights, batch)?;
    // Row b · steps + t of the scores is caption b's step t.
    let row_weights: Option<Vec<f32>> =
        weights.map(|w| w.iter().flat_map(|&w| std::iter::repeat_n(w, steps)).collect());
    let device = output.scores.device();
    let targets = captions.narrow(1, 1, steps)?.to_dtype(DType::U32)?;
    let decoded: Vec<u32> =
        output.decode_lengths.iter().flat_map(|&l| (0..steps).map(move |t| u32::from(t < l))).collect();
    let decoded = Tensor::from_vec(decoded, (batch, steps), device)?;
    let targets = decoded.where_cond(&targets, &Tensor::full(pad, (batch, steps), device)?)?;
    let (cross_entropy, _) = masked_cross_entropy(&output.scores, &targets, pad, row_weights.as_deref())?;
    cross_entropy + doubly_stochastic_penalty(&output.alphas, alpha_c)?
}
