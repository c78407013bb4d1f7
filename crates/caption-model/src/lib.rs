//! The captioning model in Candle: Inception v3 equal to torchvision's, and the original's LSTM
//! decoder with greedy decoding, assembled as the original's CNNtoRNN with its parameter names (more
//! to come: beam search, checkpoint import, feature extraction).

mod batch_norm;
pub mod beam;
pub mod checkpoint;
pub mod cnn_to_rnn;
mod cpu_conv;
mod cpu_gemm;
mod cpu_greedy;
mod cpu_kernels;
mod cpu_lstm_training;
mod cpu_pool;
pub mod decoder;
mod device;
mod dropout;
pub mod features;
pub mod hub;
pub mod inception;
pub mod init;
pub mod lstm;
mod spin_barrier;
mod training_pass;

pub use batch_norm::BatchNorm2d;
pub use beam::{BeamConfig, Hypothesis};
pub use checkpoint::{CheckpointError, read_original_checkpoint, save_safetensors};
pub use cnn_to_rnn::{CNNtoRNN, EncoderCNN};
pub use decoder::{DecoderConfig, DecoderRNN};
pub use device::{parse_device, pin_cpu_thread_count};
pub use dropout::{Dropout, DropoutState};
pub use features::{FeatureExtractor, WeightsLayout, weights_layout};
pub use hub::{HubError, INCEPTION_V3_FILE, INCEPTION_V3_REPO, model_file};
pub use inception::{BasicConv2d, Inception3, InceptionConfig, InceptionOutput};
pub use lstm::{Lstm, LstmState};
pub use training_pass::{DecoderGradients, HeadGradients};
