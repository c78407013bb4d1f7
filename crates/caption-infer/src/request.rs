//! What a caller asks of the captioner — greedy decoding, beam search, the n best of a beam, or
//! sampling, with their settings — checked once into a [`Plan`] by the rules of
//! `cargo xtask caption`'s flags, for every front end (the HTTP server's query string, the Python
//! package's keyword arguments) alike, and run by [`Captioner::caption_with`].

use candle_core::Tensor;
use caption_model::Sampling;
use image::RgbImage;
use serde::Deserialize;

use crate::{Captioner, Decoding, Generated, InferError};

/// Widest beam, and most captions per image, a request may ask for (captioning papers use 3 to
/// 20; each hypothesis costs a vocabulary's worth of scores per step).
pub const MAX_BEAM: usize = 256;

/// Longest caption a request may ask for, in tokens.
pub const MAX_LENGTH: usize = 200;

/// Decoding options, every one optional (the names of `POST /v1/captions`'s query string and of
/// the Python package's keyword arguments).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodingOptions {
    /// Beam search with this many hypotheses (1: greedy decoding).
    pub beam: Option<usize>,
    /// Beam search's length normalisation exponent (0 to 10).
    pub length_penalty: Option<f32>,
    /// The n best captions of the beam (the beam defaults to n).
    pub num_captions: Option<usize>,
    /// Longest caption, in tokens (2 to [`MAX_LENGTH`]; the model's own by default).
    pub max_length: Option<usize>,
    /// Draw this many captions from the model's distribution instead of searching.
    pub sample: Option<usize>,
    /// Sampling's temperature.
    pub temperature: Option<f32>,
    /// Sampling among the k most probable words only.
    pub top_k: Option<usize>,
    /// Sampling among the most probable words whose probability reaches p.
    pub top_p: Option<f32>,
    /// Sampling's seed: the request's image `i` draws from `seed + i` (as `cargo xtask caption`).
    pub seed: Option<u64>,
    /// Each image's first caption drawn word by word over the image, as a PNG strip (attention
    /// models only).
    pub attention_maps: Option<bool>,
}

/// How an image's captions are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Greedy decoding or beam search, one caption.
    Best(Decoding),
    /// The `n` best of a beam.
    NBest { size: usize, length_penalty: f32, n: usize },
    /// `n` captions drawn; the request's image `i` from `seed + i`.
    Sample { n: usize, sampling: Sampling, seed: u64 },
}

/// Checked options: what the batcher runs for a request's images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// How the captions are chosen.
    pub method: Method,
    /// Longest caption, in tokens.
    pub max_length: usize,
    /// Whether the attention weights are wanted (checked: the model has attention).
    pub attention_maps: bool,
}

impl Plan {
    /// Whether two requests' images can be decoded in one call (everything but the seed equal).
    pub fn decodes_with(&self, other: &Plan) -> bool {
        let unseeded = |plan: &Plan| match plan.method {
            Method::Sample { n, sampling, .. } => Method::Sample { n, sampling, seed: 0 },
            method => method,
        };
        unseeded(self) == unseeded(other) && self.max_length == other.max_length
    }
}

/// What the options are checked against: the model's facts, read once when the server starts.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    /// The model's longest caption (the default `max_length`).
    pub max_length: usize,
    /// Why attention maps cannot be drawn, for a model without attention.
    pub no_attention: Option<String>,
    /// The vocabulary's size (a beam must be narrower).
    pub vocabulary_ids: usize,
}

impl ModelFacts {
    /// The facts of `captioner`'s model.
    pub fn of(captioner: &Captioner) -> Self {
        Self {
            max_length: captioner.max_length,
            no_attention: captioner.check_attention("attention_maps").err().map(|e| e.to_string()),
            vocabulary_ids: captioner.vocabulary.len(),
        }
    }
}

impl DecodingOptions {
    /// The plan these options ask for, or why they cannot be run: a message naming the option.
    ///
    /// # Errors
    /// The first option out of range or in conflict with another, as a sentence.
    pub fn plan(&self, facts: &ModelFacts) -> Result<Plan, String> {
        let sampling_only = [
            ("temperature", self.temperature.is_some()),
            ("top_k", self.top_k.is_some()),
            ("top_p", self.top_p.is_some()),
            ("seed", self.seed.is_some()),
        ];
        if let Some((name, _)) = sampling_only.iter().find(|(_, given)| *given)
            && self.sample.is_none()
        {
            return Err(format!("{name} applies to sampling: add sample=N"));
        }
        let max_length = self.max_length.unwrap_or(facts.max_length);
        if !(2..=MAX_LENGTH).contains(&max_length) {
            return Err(format!("max_length {max_length}: a caption may have 2 to {MAX_LENGTH} tokens"));
        }
        let attention_maps = self.attention_maps.unwrap_or(false);
        if attention_maps && let Some(problem) = &facts.no_attention {
            return Err(problem.clone());
        }
        let count = |name: &str, value: usize| -> Result<usize, String> {
            if (1..=MAX_BEAM).contains(&value) {
                Ok(value)
            } else {
                Err(format!("{name} {value}: ask for 1 to {MAX_BEAM}"))
            }
        };
        let beam_width = |size: usize| -> Result<usize, String> {
            let size = count("beam", size)?;
            crate::check_beam_width(facts.vocabulary_ids, size).map_err(|e| e.to_string())?;
            Ok(size)
        };
        if let Some(length_penalty) = self.length_penalty
            && !(length_penalty.is_finite() && (0.0..=10.0).contains(&length_penalty))
        {
            return Err(format!("length_penalty {length_penalty}: the exponent must be a number from 0 to 10"));
        }
        let method = match (self.sample, self.num_captions) {
            (Some(_), _) if self.beam.is_some() || self.num_captions.is_some() || self.length_penalty.is_some() => {
                return Err("sample draws captions; beam, num_captions and length_penalty search for them: ask for one or the other".into());
            }
            (Some(n), _) => {
                let sampling =
                    Sampling { temperature: self.temperature.unwrap_or(1.0), top_k: self.top_k, top_p: self.top_p };
                sampling.check()?;
                Method::Sample { n: count("sample", n)?, sampling, seed: self.seed.unwrap_or(0) }
            }
            (None, Some(n)) => {
                let n = count("num_captions", n)?;
                let size = beam_width(self.beam.unwrap_or(n))?;
                if n > size {
                    return Err(format!(
                        "num_captions {n} asks for more captions than the beam keeps (beam {size}): widen the beam to at least {n}"
                    ));
                }
                Method::NBest { size, length_penalty: self.length_penalty.unwrap_or(0.0), n }
            }
            (None, None) => match self.beam {
                Some(size) if beam_width(size)? > 1 => {
                    Method::Best(Decoding::Beam { size, length_penalty: self.length_penalty.unwrap_or(0.0) })
                }
                _ if self.length_penalty.is_some() => {
                    return Err("length_penalty ranks beam search's hypotheses; greedy decoding has none to rank: add beam=K (K >= 2)".into());
                }
                _ => Method::Best(Decoding::Greedy),
            },
        };
        Ok(Plan { method, max_length, attention_maps })
    }
}

impl Captioner {
    /// Captions `images` as `plan` says, in batches: per image its captions (one, the n best, or
    /// the samples, picture `i` drawing from `seed + i`), decoded at `plan.max_length`.
    ///
    /// # Errors
    /// A candle error.
    pub fn caption_with(&mut self, images: &[RgbImage], plan: &Plan) -> Result<Vec<Vec<Generated>>, InferError> {
        let default_length = std::mem::replace(&mut self.max_length, plan.max_length);
        let captioned = match plan.method {
            Method::Best(decoding) => {
                self.caption_images(images, decoding).map(|captions| captions.into_iter().map(|g| vec![g]).collect())
            }
            Method::NBest { size, length_penalty, n } => self.caption_images_n_best(images, size, length_penalty, n),
            Method::Sample { n, sampling, seed } => {
                let seeds: Vec<u64> = (0..images.len() as u64).map(|i| seed.wrapping_add(i)).collect();
                self.caption_images_sampled(images, &seeds, n, sampling)
            }
        };
        self.max_length = default_length;
        captioned
    }

    /// Decodes encoder outputs ([`encode_images`](Self::encode_images)) as `method` says, at
    /// the captioner's `max_length`; row `i` samples from `seeds[i]` (unused otherwise).
    ///
    /// # Errors
    /// A candle error.
    pub fn decode_with(
        &self,
        encoded: &Tensor,
        method: Method,
        seeds: &[u64],
    ) -> Result<Vec<Vec<Generated>>, InferError> {
        match method {
            Method::Best(decoding) => Ok(self.decode(encoded, decoding)?.into_iter().map(|g| vec![g]).collect()),
            Method::NBest { size, length_penalty, n } => self.decode_n_best(encoded, size, length_penalty, n),
            Method::Sample { n, sampling, .. } => self.decode_sampled(encoded, seeds, n, sampling),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ModelFacts {
        ModelFacts { max_length: 50, no_attention: Some("no attention here".into()), vocabulary_ids: 40 }
    }

    fn plan(options: DecodingOptions) -> Result<Plan, String> {
        options.plan(&facts())
    }

    #[test]
    fn defaults_decode_greedily_at_the_models_length() {
        let plan = plan(DecodingOptions::default()).unwrap();
        assert_eq!(plan, Plan { method: Method::Best(Decoding::Greedy), max_length: 50, attention_maps: false });
    }

    #[test]
    fn options_follow_the_caption_commands_rules() {
        let beam = plan(DecodingOptions { beam: Some(3), ..DecodingOptions::default() }).unwrap();
        assert_eq!(beam.method, Method::Best(Decoding::Beam { size: 3, length_penalty: 0.0 }));
        let n_best = plan(DecodingOptions { num_captions: Some(2), ..DecodingOptions::default() }).unwrap();
        assert_eq!(n_best.method, Method::NBest { size: 2, length_penalty: 0.0, n: 2 });
        let sampled = plan(DecodingOptions { sample: Some(4), seed: Some(9), ..DecodingOptions::default() }).unwrap();
        assert!(matches!(sampled.method, Method::Sample { n: 4, seed: 9, .. }));
        let refused = [
            (DecodingOptions { temperature: Some(0.5), ..DecodingOptions::default() }, "add sample"),
            (DecodingOptions { sample: Some(2), beam: Some(3), ..DecodingOptions::default() }, "one or the other"),
            (DecodingOptions { num_captions: Some(4), beam: Some(2), ..DecodingOptions::default() }, "widen the beam"),
            (DecodingOptions { beam: Some(40), ..DecodingOptions::default() }, "vocabulary has 40 ids"),
            (DecodingOptions { beam: Some(0), ..DecodingOptions::default() }, "beam 0"),
            (DecodingOptions { length_penalty: Some(1.0), ..DecodingOptions::default() }, "greedy decoding has none"),
            (DecodingOptions { max_length: Some(1), ..DecodingOptions::default() }, "max_length 1"),
            (DecodingOptions { max_length: Some(10_000), ..DecodingOptions::default() }, "max_length 10000"),
            (DecodingOptions { attention_maps: Some(true), ..DecodingOptions::default() }, "no attention here"),
            (DecodingOptions { sample: Some(1), temperature: Some(-1.0), ..DecodingOptions::default() }, "temperature"),
        ];
        for (options, words) in refused {
            let message = plan(options.clone()).unwrap_err();
            assert!(message.contains(words), "{options:?}: {message}");
        }
    }

    #[test]
    fn requests_decode_together_when_only_their_seeds_differ() {
        let a = plan(DecodingOptions { sample: Some(2), seed: Some(1), ..DecodingOptions::default() }).unwrap();
        let b = plan(DecodingOptions { sample: Some(2), seed: Some(7), ..DecodingOptions::default() }).unwrap();
        let c = plan(DecodingOptions { sample: Some(3), seed: Some(1), ..DecodingOptions::default() }).unwrap();
        let d = plan(DecodingOptions { sample: Some(2), max_length: Some(20), ..DecodingOptions::default() }).unwrap();
        assert!(a.decodes_with(&b) && !a.decodes_with(&c) && !a.decodes_with(&d));
    }
}
