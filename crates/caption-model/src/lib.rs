//! The captioning model in Candle: Inception v3 equal to torchvision's, and the original's LSTM
//! decoder with greedy decoding (more to come: CNNtoRNN, beam search, weight import).

mod batch_norm;
pub mod decoder;
pub mod inception;
pub mod lstm;

pub use batch_norm::BatchNorm2d;
pub use decoder::{DecoderConfig, DecoderRNN};
pub use inception::{BasicConv2d, Inception3, InceptionConfig, InceptionOutput};
pub use lstm::{Lstm, LstmState};
