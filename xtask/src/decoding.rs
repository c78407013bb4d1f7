//! `--beam` and `--length-penalty`, shared by `caption` and `bleu`: checked where they enter.

use anyhow::{Result, bail};
use caption_infer::Decoding;
use clap::Args;

/// Widest beam accepted, as every front end accepts (caption-infer's request rules); the
/// model's vocabulary bounds it further.
pub use caption_infer::MAX_BEAM;

/// How captions are decoded.
#[derive(Args, Debug, Clone, Copy)]
pub struct DecodingArgs {
    /// Beam search with K hypotheses instead of greedy decoding (1 to 256, and fewer than the
    /// model's vocabulary; 1 is greedy decoding).
    #[arg(long, value_name = "K", value_parser = parse_beam)]
    pub beam: Option<usize>,
    /// Beam search length normalisation exponent α: hypotheses are ranked by
    /// log-probability / length^α (0: by log-probability; 1: mean log-probability). Needs beam
    /// search.
    #[arg(long, value_name = "α", value_parser = parse_length_penalty)]
    pub length_penalty: Option<f32>,
}

impl DecodingArgs {
    /// The decoding asked for; `beam_implied` when another option (`--num-captions`) searches a
    /// beam without `--beam`.
    ///
    /// # Errors
    /// `--length-penalty` without beam search (it would change nothing).
    pub fn decoding(&self, beam_implied: bool) -> Result<Decoding> {
        let length_penalty = self.length_penalty.unwrap_or(0.0);
        match self.beam {
            Some(size) if size > 1 => Ok(Decoding::Beam { size, length_penalty }),
            _ if self.length_penalty.is_some() && !beam_implied => bail!(
                "--length-penalty ranks beam search's hypotheses; greedy decoding has none to rank: add --beam K \
                 (K >= 2)"
            ),
            _ => Ok(Decoding::Greedy),
        }
    }

    /// How the decoding is named in outputs: `greedy` or `beam K`.
    pub fn name(&self) -> String {
        match self.beam {
            Some(k) if k > 1 => format!("beam {k}"),
            _ => "greedy".into(),
        }
    }
}

fn parse_beam(text: &str) -> Result<usize, String> {
    let width: usize = text.parse().map_err(|_| format!("{text:?} is not a whole number"))?;
    if !(1..=MAX_BEAM).contains(&width) {
        return Err(format!("{width}: a beam keeps 1 to {MAX_BEAM} hypotheses"));
    }
    Ok(width)
}

fn parse_length_penalty(text: &str) -> Result<f32, String> {
    let alpha: f32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !alpha.is_finite() || !(0.0..=10.0).contains(&alpha) {
        return Err(format!("{text}: the exponent must be a number from 0 to 10"));
    }
    Ok(alpha)
}
