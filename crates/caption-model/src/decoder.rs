//! [`DecoderRNN`]: the original's caption decoder (embedding, LSTM, linear), its teacher-forced
//! forward, and greedy decoding exactly as the original's `caption_image`.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use crate::backend::views::LstmDecoderTensors;
use crate::backend::{self, DecoderGradients, SampledForward};
use crate::beam::{BeamConfig, BeamStep, Continued, Hypothesis, best_of, search};
use crate::lstm::{Lstm, LstmState};
use crate::{Dropout, Targets};

impl DecoderRNN {
    /// The decoder's parameters with their names in the original's `DecoderRNN` (`embed.weight`,
    /// `linear.weight`, `linear.bias`, then `lstm.weight_ih_l{k}`, `lstm.weight_hh_l{k}`,
    /// `lstm.bias_ih_l{k}`, `lstm.bias_hh_l{k}` for each layer), in the order
    /// the backends read them ([`LstmDecoderTensors`]).
    pub(crate) fn named_parameters(&self) -> Result<Vec<(String, Tensor)>> {
        let Some(bias) = self.linear_bias() else { candle_core::bail!("the original's output layer has a bias") };
        let mut parameters = vec![
            ("embed.weight".to_string(), self.embed_weights().clone()),
            ("linear.weight".to_string(), self.linear_weight().clone()),
            ("linear.bias".to_string(), bias.clone()),
        ];
        for k in 0..self.lstm().num_layers() {
            let weights = self.lstm().layer_weights(k)?;
            for (name, tensor) in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].iter().zip(weights) {
                parameters.push((format!("lstm.{name}_l{k}"), tensor));
            }
        }
        Ok(parameters)
    }

    /// The teacher-forced loss and its gradients: `features` (batch × embed) as time step 0, the
    /// embedded (and dropped-out) `captions[:-1]` after it, and every output scored against
    /// `captions` (length × batch token ids, `<SOS>` … `<EOS>`, PAD-padded) with PAD targets left
    /// out: the original's training loss on [`forward`](Self::forward), forward and backward, by a
    /// backend (the CPU's or the CUDA's). `dropout` draws the embeddings' mask (p = 0 turns it
    /// off) as [`hiddens`](Self::hiddens) draws it.
    ///
    /// `None` when no backend covers the tensors ([`backend::choose`]: not float32 in CPU or CUDA
    /// memory, or the reference path forced; on CUDA also a batch with no counted target or a
    /// single step): the caller then uses candle's autograd (no mask has been drawn).
    ///
    /// # Errors
    /// Shapes that do not fit the decoder, or a token id outside the vocabulary.
    pub fn loss_gradients(
        &self,
        features: &Tensor,
        targets: Targets,
        dropout: &mut Dropout,
    ) -> Result<Option<DecoderGradients>> {
        backend::lstm_decoder_gradients(&self.tensors()?, features, targets, dropout)
    }

    /// Its parameters as the backends read them, by [`named_parameters`](Self::named_parameters)' names.
    ///
    /// # Errors
    /// An output layer without a bias.
    pub fn tensors(&self) -> Result<LstmDecoderTensors> {
        Ok(LstmDecoderTensors { parameters: self.named_parameters()? })
    }
}

/// Sizes of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Embedding size (also the image feature size).
    pub embed_size: usize,
    /// LSTM hidden size.
    pub hidden_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// LSTM layers.
    pub num_layers: usize,
}

/// `DecoderRNN`: `embed` (Embedding), `lstm` (LSTM), `linear` (Linear), with the original's names.
#[derive(Debug, Clone)]
pub struct DecoderRNN {
    embed: Embedding,
    lstm: Lstm,
    linear: Linear,
}

impl DecoderRNN {
    /// Loads the decoder from `vb` (`embed.weight`, `lstm.weight_ih_l0`, …, `linear.weight`).
    pub fn new(vb: VarBuilder, config: DecoderConfig) -> Result<Self> {
        Ok(Self {
            embed: candle_nn::embedding(config.vocab_size, config.embed_size, vb.pp("embed"))?,
            lstm: Lstm::new(vb.pp("lstm"), config.embed_size, config.hidden_size, config.num_layers)?,
            linear: candle_nn::linear(config.hidden_size, config.vocab_size, vb.pp("linear"))?,
        })
    }

    /// The original's teacher-forced forward: the image features are time step 0, the embedded
    /// caption tokens follow. `features`: batch × embed; `captions`: time × batch token ids.
    /// Returns logits, (time + 1) × batch × vocab. `dropout` is applied to the embeddings when
    /// given (the original's `Dropout(0.5)`, training only).
    pub fn forward(&self, features: &Tensor, captions: &Tensor, dropout: Option<&mut Dropout>) -> Result<Tensor> {
        self.logits(&self.hiddens(features, captions, dropout)?)
    }

    /// The teacher-forced forward up to the LSTM: its outputs, (time + 1) × batch × hidden. A
    /// trainer projects only the rows whose target is not PAD with [`logits`](Self::logits).
    pub fn hiddens(&self, features: &Tensor, captions: &Tensor, dropout: Option<&mut Dropout>) -> Result<Tensor> {
        let mut embeddings = self.embed.forward(captions)?;
        if let Some(dropout) = dropout {
            embeddings = dropout.apply(&embeddings)?;
        }
        let inputs = Tensor::cat(&[features.unsqueeze(0)?, embeddings], 0)?;
        Ok(self.lstm.forward(&inputs, None)?.0)
    }

    /// The output layer: LSTM outputs (… × hidden) to logits (… × vocab).
    pub fn logits(&self, hiddens: &Tensor) -> Result<Tensor> {
        self.linear.forward(hiddens)
    }

    /// One decoding step: `input` (batch × embed: image features or embedded words) through the
    /// LSTM from `state`; returns the logits (batch × vocab) and the new state.
    pub fn step(&self, input: &Tensor, state: Option<&LstmState>) -> Result<(Tensor, LstmState)> {
        let (hiddens, state) = self.lstm.forward(&input.unsqueeze(0)?, state)?;
        Ok((self.linear.forward(&hiddens.squeeze(0)?)?, state))
    }

    /// The embedding table, vocab × embed.
    pub(crate) fn embed_weights(&self) -> &Tensor {
        self.embed.embeddings()
    }

    /// The output layer's weight, vocab × hidden.
    pub(crate) fn linear_weight(&self) -> &Tensor {
        self.linear.weight()
    }

    /// The output layer's bias.
    pub(crate) fn linear_bias(&self) -> Option<&Tensor> {
        self.linear.bias()
    }

    /// The LSTM.
    pub(crate) fn lstm(&self) -> &Lstm {
        &self.lstm
    }

    /// Embeddings of word ids (batch) → batch × embed.
    pub fn embed_ids(&self, ids: &Tensor) -> Result<Tensor> {
        self.embed.forward(ids)
    }

    /// Greedy decoding as the original's `caption_image`, for a batch of feature rows at once:
    /// starting from the features, feed back the argmax word, at most `max_length` steps; a row is
    /// finished at `eos`. Returns each row's ids up to and including `eos` (as the original's list
    /// does), with the summed log-probability of the chosen words.
    ///
    /// On the CPU backend (float32, [`choose`](crate::backend::choose())) this runs a loop of
    /// matrix-vector products over the weights in place (`backend::cpu::greedy`), about twice as
    /// fast as tensor operations for one image; on the CUDA backend (float32 on a GPU, builds
    /// with the `cuda` feature) a few products and two fused kernels per step
    /// (`backend::cuda::greedy`); elsewhere, and as the reference they are tested against,
    /// [`greedy_with_tensors`](Self::greedy_with_tensors).
    pub fn greedy(&self, features: &Tensor, max_length: usize, eos: u32) -> Result<Vec<(Vec<u32>, f32)>> {
        match backend::lstm_greedy(&self.tensors()?, features, max_length, eos)? {
            Some(captions) => Ok(captions),
            None => self.greedy_with_tensors(features, max_length, eos),
        }
    }

    /// [`greedy`](Self::greedy) with candle tensor operations on any device: one LSTM step, the
    /// output layer, argmax and log-softmax per step for the whole batch.
    pub fn greedy_with_tensors(&self, features: &Tensor, max_length: usize, eos: u32) -> Result<Vec<(Vec<u32>, f32)>> {
        let batch = features.dim(0)?;
        let mut results: Vec<(Vec<u32>, f32)> = vec![(Vec::new(), 0.0); batch];
        let mut finished = vec![false; batch];
        let mut x = features.unsqueeze(0)?;
        let mut state: Option<LstmState> = None;
        for _ in 0..max_length {
            let (hiddens, next) = self.lstm.forward(&x, state.as_ref())?;
            state = Some(next);
            let logits = self.linear.forward(&hiddens.squeeze(0)?)?;
            let predicted = logits.argmax(D::Minus1)?;
            let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            let chosen =
                log_probs.gather(&predicted.unsqueeze(1)?, 1)?.squeeze(1)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            for (row, (&id, score)) in predicted.to_vec1::<u32>()?.iter().zip(chosen).enumerate() {
                if !finished[row] {
                    results[row].0.push(id);
                    results[row].1 += score;
                    finished[row] = id == eos;
                }
            }
            if finished.iter().all(|&f| f) {
                break;
            }
            x = self.embed.forward(&predicted)?.unsqueeze(0)?;
        }
        Ok(results)
    }
}

impl DecoderRNN {
    /// Beam search for each row of `features` (batch × embed); one best hypothesis per row.
    pub fn beam_search(&self, features: &Tensor, config: BeamConfig) -> Result<Vec<Hypothesis>> {
        Ok(best_of(self.beam_search_n_best(features, config, 1)?))
    }

    /// Beam search for each row of `features` (batch × embed): up to `n` hypotheses per row,
    /// ranked by [`Hypothesis::score`]: finished ones first, then unfinished ones when fewer than
    /// `n` finished. The first is [`beam_search`](Self::beam_search)'s. Fewer than `n` come back
    /// only when the search kept fewer (`n` above the beam size, or a tiny vocabulary).
    ///
    /// On the CUDA backend (float32 on a GPU, builds with the `cuda` feature) each step is a few
    /// products, the fused LSTM cell and one kernel that picks every hypothesis's `beam_size` best
    /// next words (`backend::cuda::beam`); only those travel to the host. Elsewhere, and as the
    /// reference it is tested against, [`beam_search_with_tensors`](Self::beam_search_with_tensors).
    pub fn beam_search_n_best(&self, features: &Tensor, config: BeamConfig, n: usize) -> Result<Vec<Vec<Hypothesis>>> {
        match backend::lstm_beam_search(&self.tensors()?, features, config, n)? {
            Some(ranked) => Ok(ranked),
            None => self.beam_search_with_tensors(features, config, n),
        }
    }

    /// [`beam_search_n_best`](Self::beam_search_n_best) with candle tensor operations on any
    /// device: one LSTM step for all live hypotheses, the output layer and log-softmax, every
    /// word's log-probability read back per step.
    pub fn beam_search_with_tensors(
        &self,
        features: &Tensor,
        config: BeamConfig,
        n: usize,
    ) -> Result<Vec<Vec<Hypothesis>>> {
        search(features.dim(0)?, config, n, self.decoding_steps(features))
    }

    /// `samples` captions for each row of `features` (images × embed) drawn from the decoder's
    /// distribution as `sampling` says, row `i`'s from `seeds[i]`, each to `eos` or `max_length`
    /// words ([`sampling::sample`](crate::sampling::sample)'s rules and random streams). On the
    /// CPU backend without top-k or top-p, the loop over the weights in place that greedy
    /// decoding runs (`backend::cpu::decoding`), drawing each word from the block of the
    /// vocabulary its number falls in; elsewhere, and as the reference it is tested against, over
    /// [`decoding_steps`](Self::decoding_steps).
    ///
    /// # Errors
    /// Sampling settings out of range, or a shape error.
    pub fn sample(
        &self,
        features: &Tensor,
        (seeds, samples): (&[u64], usize),
        (max_length, eos): (usize, u32),
        sampling: crate::Sampling,
    ) -> Result<Vec<Vec<Hypothesis>>> {
        sampling.check().map_err(candle_core::Error::msg)?;
        let Some((drawn, _)) =
            backend::lstm_sample(&self.tensors()?, features, (seeds, samples), (max_length, eos), sampling, false)?
        else {
            return crate::sampling::sample(seeds, samples, max_length, eos, sampling, self.decoding_steps(features));
        };
        Ok(per_image(drawn, seeds.len(), samples, eos))
    }

    /// [`sample`](Self::sample), keeping what the backend's sampling loop computed forward, so
    /// that a training pass over the samples runs only its backward
    /// ([`CNNtoRNN::sampled_head_gradients`](crate::CNNtoRNN::sampled_head_gradients)); `None`
    /// where no backend keeps it (then [`sample`](Self::sample)).
    ///
    /// # Errors
    /// Sampling settings out of range, or a shape error.
    pub fn sample_keeping_forward(
        &self,
        features: &Tensor,
        (seeds, samples): (&[u64], usize),
        (max_length, eos): (usize, u32),
        sampling: crate::Sampling,
    ) -> Result<Option<(Vec<Vec<Hypothesis>>, SampledForward)>> {
        sampling.check().map_err(candle_core::Error::msg)?;
        let drawn =
            backend::lstm_sample(&self.tensors()?, features, (seeds, samples), (max_length, eos), sampling, true)?;
        Ok(drawn.and_then(|(drawn, forward)| Some((per_image(drawn, seeds.len(), samples, eos), forward?))))
    }

    /// Decoding one word at a time over `features` (images × embed), as beam search (and any
    /// other search over the same steps) takes it: the first call (`None`) runs the features
    /// through the LSTM, one row per image; each later call continues the rows it is given (each
    /// a previous row and the word it was extended with). Every call answers every row's
    /// log-probability of each word, on candle's operations.
    pub fn decoding_steps<'a>(
        &'a self,
        features: &'a Tensor,
    ) -> impl FnMut(Option<Continued<'_>>) -> Result<BeamStep> + 'a {
        let device = features.device();
        let mut state: Option<LstmState> = None;
        move |continued| {
            let input = match &continued {
                None => features.clone(),
                Some(rows) => self.embed_ids(&Tensor::new(rows.words, device)?)?,
            };
            let previous = match (&continued, state.take()) {
                (Some(rows), Some(last)) => {
                    let index = Tensor::new(rows.parents, device)?;
                    Some(LstmState { h: last.h.index_select(&index, 1)?, c: last.c.index_select(&index, 1)? })
                }
                _ => None,
            };
            let (logits, next) = self.step(&input, previous.as_ref())?;
            state = Some(next);
            let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
            Ok(BeamStep::every_word(log_probs, None))
        }
    }
}

/// A backend's sampled captions (every image's `samples` one after another) as hypotheses, per
/// image.
fn per_image(drawn: Vec<(Vec<u32>, f32)>, images: usize, samples: usize, eos: u32) -> Vec<Vec<Hypothesis>> {
    let mut captions = drawn.into_iter().map(|(ids, log_prob)| Hypothesis {
        finished: ids.last() == Some(&eos),
        ids,
        log_prob,
        alphas: Vec::new(),
    });
    (0..images).map(|_| captions.by_ref().take(samples).collect()).collect()
}
