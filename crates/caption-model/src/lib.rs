//! The captioning model in Candle: Inception v3 equal to torchvision's (more to come: the LSTM
//! decoder, CNNtoRNN, decoding, weight import).

mod batch_norm;
pub mod inception;

pub use batch_norm::BatchNorm2d;
pub use inception::{BasicConv2d, Inception3, InceptionConfig, InceptionOutput};
