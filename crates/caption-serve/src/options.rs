//! A request's decoding options (query string or JSON) and the plan they check into: the same
//! rules as `cargo xtask caption`'s flags.

use caption_infer::{Captioner, Decoding};
use caption_model::Sampling;
use serde::Deserialize;

/// Widest beam, and most captions per image, a request may ask for (as `cargo xtask caption`).
pub const MAX_BEAM: usize = 256;

/// Longest caption a request may ask for, in tokens.
pub const MAX_LENGTH: usize = 200;

/// The options of `POST /v1/captions`, as the query string or a multipart `options` part (JSON)
/// gives them; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
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
pub(crate) enum Method {
    /// Greedy decoding or beam search, one caption.
    Best(Decoding),
    /// The `n` best of a beam.
    NBest { size: usize, length_penalty: f32, n: usize },
    /// `n` captions drawn; the request's image `i` from `seed + i`.
    Sample { n: usize, sampling: Sampling, seed: u64 },
}

/// Checked options: what the batcher runs for a request's images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    pub method: Method,
    pub max_length: usize,
    pub attention_maps: bool,
}

impl Plan {
    /// Whether two requests' images can be decoded in one call (everything but the seed equal).
    pub(crate) fn decodes_with(&self, other: &Plan) -> bool {
        let unseeded = |plan: &Plan| match plan.method {
            Method::Sample { n, sampling, .. } => Method::Sample { n, sampling, seed: 0 },
            method => method,
        };
        unseeded(self) == unseeded(other) && self.max_length == other.max_length
    }
}

/// What the options are checked against: the model's facts, read once when the server starts.
#[derive(Debug, Clone)]
pub(crate) struct ModelFacts {
    /// The model's longest caption (the default `max_length`).
    pub max_length: usize,
    /// Why attention maps cannot be drawn, for a model without attention.
    pub no_attention: Option<String>,
    /// The vocabulary's size (a beam must be narrower).
    pub vocabulary_ids: usize,
}

impl ModelFacts {
    pub(crate) fn of(captioner: &Captioner) -> Self {
        Self {
            max_length: captioner.max_length,
            no_attention: captioner.check_attention("attention_maps").err().map(|e| e.to_string()),
            vocabulary_ids: captioner.vocabulary.len(),
        }
    }
}

impl Options {
    /// The plan these options ask for, or why they cannot be run: a message naming the option.
    pub(crate) fn plan(&self, facts: &ModelFacts) -> Result<Plan, String> {
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
            caption_infer::check_beam_width(facts.vocabulary_ids, size).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ModelFacts {
        ModelFacts { max_length: 50, no_attention: Some("no attention here".into()), vocabulary_ids: 40 }
    }

    fn plan(options: Options) -> Result<Plan, String> {
        options.plan(&facts())
    }

    #[test]
    fn defaults_decode_greedily_at_the_models_length() {
        let plan = plan(Options::default()).unwrap();
        assert_eq!(plan, Plan { method: Method::Best(Decoding::Greedy), max_length: 50, attention_maps: false });
    }

    #[test]
    fn options_follow_the_caption_commands_rules() {
        let beam = plan(Options { beam: Some(3), ..Options::default() }).unwrap();
        assert_eq!(beam.method, Method::Best(Decoding::Beam { size: 3, length_penalty: 0.0 }));
        let n_best = plan(Options { num_captions: Some(2), ..Options::default() }).unwrap();
        assert_eq!(n_best.method, Method::NBest { size: 2, length_penalty: 0.0, n: 2 });
        let sampled = plan(Options { sample: Some(4), seed: Some(9), ..Options::default() }).unwrap();
        assert!(matches!(sampled.method, Method::Sample { n: 4, seed: 9, .. }));
        let refused = [
            (Options { temperature: Some(0.5), ..Options::default() }, "add sample"),
            (Options { sample: Some(2), beam: Some(3), ..Options::default() }, "one or the other"),
            (Options { num_captions: Some(4), beam: Some(2), ..Options::default() }, "widen the beam"),
            (Options { beam: Some(40), ..Options::default() }, "vocabulary has 40 ids"),
            (Options { beam: Some(0), ..Options::default() }, "beam 0"),
            (Options { length_penalty: Some(1.0), ..Options::default() }, "greedy decoding has none"),
            (Options { max_length: Some(1), ..Options::default() }, "max_length 1"),
            (Options { max_length: Some(10_000), ..Options::default() }, "max_length 10000"),
            (Options { attention_maps: Some(true), ..Options::default() }, "no attention here"),
            (Options { sample: Some(1), temperature: Some(-1.0), ..Options::default() }, "temperature"),
        ];
        for (options, words) in refused {
            let message = plan(options.clone()).unwrap_err();
            assert!(message.contains(words), "{options:?}: {message}");
        }
    }

    #[test]
    fn requests_decode_together_when_only_their_seeds_differ() {
        let a = plan(Options { sample: Some(2), seed: Some(1), ..Options::default() }).unwrap();
        let b = plan(Options { sample: Some(2), seed: Some(7), ..Options::default() }).unwrap();
        let c = plan(Options { sample: Some(3), seed: Some(1), ..Options::default() }).unwrap();
        let d = plan(Options { sample: Some(2), max_length: Some(20), ..Options::default() }).unwrap();
        assert!(a.decodes_with(&b) && !a.decodes_with(&c) && !a.decodes_with(&d));
    }
}
