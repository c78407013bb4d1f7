//! The captioning model in Candle: Inception v3 equal to torchvision's and the original's LSTM
//! decoder, assembled as the original's `CNNtoRNN` with its parameter names, so weights move
//! between PyTorch and Rust unchanged.
//!
//! - [`Inception3`]: every block of torchvision's `Inception3`, eval and train mode, weights from
//!   torchvision/timm safetensors, a local file or the Hub ([`model_file`]);
//! - [`DecoderRNN`] and [`CNNtoRNN`]: teacher-forced forward, greedy decoding as the original's
//!   `caption_image`, beam search ([`BeamConfig`]);
//! - [`DecoderRNN::loss_gradients`] and [`CNNtoRNN::head_gradients`]: the training step's forward
//!   and backward pass by a backend, without autograd (what caption-train runs);
//! - [`read_original_checkpoint`]: the original's `my_checkpoint.pth.tar`; [`FeatureExtractor`]:
//!   pooled 2048-d features and logits for images.
//!
//! - [`DecoderWithAttention`]: the attention decoder of "Show, Attend and Tell" (sgrvinod's
//!   tutorial's semantics and names) over Inception's spatial features
//!   ([`inception::InceptionOutput::spatial`]), teacher forcing and its loss, greedy and beam
//!   decoding with each word's weights ([`attention`]); [`ShowAttendTell`] puts it behind
//!   Inception v3;
//! - [`Network`]: the one interface to either model ([`DecoderKind`] names which): built from a
//!   [`NetworkConfig`], its head input, encoding, training pass and loss, greedy and beam decoding;
//! - [`loss`]: the PAD-masked cross-entropy the trainer minimises;
//! - [`backend`]: which implementation runs, below the model files and knowing none of their
//!   types: they hand it views of their tensors ([`backend::views`]). The model files are the
//!   reference, on candle's differentiable operations; on the CPU in float32 the eval-mode
//!   convolutions, the pools, greedy decoding, the training passes, the loss and Adam's update run
//!   the CPU backend's own loops over the weights in place (`backend/cpu/`), and
//!   `backend/operations.rs` says which backend covers which operation. `CAPTION_REFERENCE_PATH=1` (or
//!   [`backend::set_reference_only`]) forces the reference path everywhere.
//!
//! # Example
//!
//! ```no_run
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarBuilder;
//! use caption_model::{CNNtoRNN, DecoderConfig};
//!
//! // A checkpoint exported by `cargo xtask import-checkpoint` or written by caption-train.
//! let device = Device::Cpu;
//! let vb = unsafe { VarBuilder::from_mmaped_safetensors(&["model.safetensors"], DType::F32, &device)? };
//! let config = DecoderConfig { embed_size: 256, hidden_size: 256, vocab_size: 2994, num_layers: 1 };
//! let model = CNNtoRNN::new(vb, config, true)?;
//! let images = Tensor::zeros((1, 3, 299, 299), DType::F32, &device)?; // normalised to [-1, 1]
//! let captions = model.caption_images(&images, 50, 2)?; // `<EOS>` is id 2 in the original's vocabulary
//! println!("{:?}", captions[0].0);
//! # Ok::<(), candle_core::Error>(())
//! ```

pub mod attention;
pub mod backend;
mod batch_norm;
pub mod beam;
pub mod checkpoint;
pub mod cnn_to_rnn;
pub mod decoder;
mod device;
mod dropout;
pub mod features;
pub mod hub;
pub mod inception;
pub mod init;
pub mod loss;
pub mod lstm;
pub mod network;
pub mod sampling;
pub mod show_attend_tell;

pub use attention::{AttendedCaption, AttentionConfig, AttentionOutput, DecoderWithAttention};
pub use backend::gradients::{AttentionGradients, DecoderGradients, HeadGradients, SampledForward};
pub use batch_norm::BatchNorm2d;
pub use beam::{BeamConfig, Hypothesis};
pub use checkpoint::{CheckpointError, read_original_checkpoint, save_safetensors};
pub use cnn_to_rnn::{CNNtoRNN, DECODER_PREFIX, EncoderCNN, FC_PREFIX, INCEPTION_PREFIX};
pub use decoder::{DecoderConfig, DecoderRNN};
pub use device::{parse_device, pin_cpu_thread_count};
pub use dropout::{Dropout, DropoutState};
pub use features::{FeatureExtractor, WeightsLayout, weights_layout};
pub use hub::{HubError, INCEPTION_V3_FILE, INCEPTION_V3_REPO, model_file};
pub use inception::{BasicConv2d, Inception3, InceptionConfig, InceptionOutput};
pub use loss::Targets;
pub use lstm::{Lstm, LstmCell, LstmState};
pub use network::{DecoderKind, DecodingSteps, HeadInput, Network, NetworkConfig};
pub use sampling::Sampling;
pub use show_attend_tell::{ATTENTION_DECODER_PREFIX, ATTENTION_INCEPTION_PREFIX, ShowAttendTell};
