//! [`Network`]: the two captioning models the crates train and caption with, and
//! [`DecoderKind`], the setting that chooses between them.

use serde::{Deserialize, Serialize};

use crate::show_attend_tell::{ATTENTION_DECODER_PREFIX, ATTENTION_INCEPTION_PREFIX};
use crate::{CNNtoRNN, DECODER_PREFIX, FC_PREFIX, INCEPTION_PREFIX, Inception3, ShowAttendTell};

/// Which decoder a model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// The original's `CNNtoRNN`: the pooled image embedding, then an LSTM.
    #[default]
    Lstm,
    /// Show, Attend and Tell ([`ShowAttendTell`]): attention over the encoder's grid at every word.
    Attention,
}

impl DecoderKind {
    /// The PyTorch class name a checkpoint of this kind is described by.
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Lstm => "CNNtoRNN",
            Self::Attention => "ShowAttendTell",
        }
    }

    /// The kind whose [`architecture`](Self::architecture) is `name`.
    pub fn from_architecture(name: &str) -> Option<Self> {
        [Self::Lstm, Self::Attention].into_iter().find(|kind| kind.architecture() == name)
    }

    /// The prefix of Inception v3's parameters in this model's state dict.
    pub fn inception_prefix(self) -> &'static str {
        match self {
            Self::Lstm => INCEPTION_PREFIX,
            Self::Attention => ATTENTION_INCEPTION_PREFIX,
        }
    }

    /// Whether a parameter belongs to what trains on top of the encoder: the original's `fc`
    /// and decoder, or the attention decoder.
    pub fn is_head(self, name: &str) -> bool {
        match self {
            Self::Lstm => name.starts_with(FC_PREFIX) || name.starts_with(DECODER_PREFIX),
            Self::Attention => name.starts_with(ATTENTION_DECODER_PREFIX),
        }
    }

    /// Whether a parameter is one of Inception v3's own (below the original's replaced `fc`).
    pub fn is_encoder(self, name: &str) -> bool {
        name.starts_with(self.inception_prefix()) && !self.is_head(name)
    }
}

/// A captioning model of either kind.
#[derive(Debug, Clone)]
pub enum Network {
    /// The original's model.
    ShowAndTell(CNNtoRNN),
    /// The attention model.
    ShowAttendTell(ShowAttendTell),
}

impl Network {
    /// Which kind it is.
    pub fn kind(&self) -> DecoderKind {
        match self {
            Self::ShowAndTell(_) => DecoderKind::Lstm,
            Self::ShowAttendTell(_) => DecoderKind::Attention,
        }
    }

    /// Its Inception v3.
    pub fn inception(&self) -> &Inception3 {
        match self {
            Self::ShowAndTell(model) => model.encoder.inception(),
            Self::ShowAttendTell(model) => &model.encoder,
        }
    }
}
