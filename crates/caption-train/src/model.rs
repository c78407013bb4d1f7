//! [`TrainModel`]: the model a run trains, the original's CNN-to-RNN or the attention model, held
//! in a `VarMap` (every parameter and BatchNorm statistic under its PyTorch names), its
//! initialisation, weight loading and the trained subset.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use caption_model::init::{initialize, is_running_statistic};
use caption_model::{DecoderConfig, DecoderKind, Network, NetworkConfig};

use crate::TrainError;
use crate::config::{AttentionSettings, EncoderWeights, TrainConfig};

pub use caption_model::{DECODER_PREFIX, FC_PREFIX, INCEPTION_PREFIX};

/// The model and the variables behind it.
pub struct TrainModel {
    /// Every tensor of the model, by the original's name.
    pub varmap: VarMap,
    /// The network (sharing the variables).
    pub model: Network,
    /// The device.
    pub device: Device,
    /// The weight of the attention model's doubly stochastic term in its training loss (the
    /// setting `attention.alpha_c`; the original's model has none).
    pub alpha_c: f64,
}

impl TrainModel {
    /// Builds the model with every variable zero, then fills it from `seed` ([`initialize`]).
    ///
    /// # Errors
    /// A candle error.
    pub fn new(config: &TrainConfig, vocab_size: usize, device: &Device) -> Result<Self, TrainError> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = Network::new(vb, &config.network(vocab_size), config.transform_input)?;
        initialize(&varmap, config.seed, |_| true)?;
        Ok(Self { varmap, model, device: device.clone(), alpha_c: config.attention.alpha_c })
    }

    /// Builds the original's model with variables to be set by
    /// [`load_state_dict`](Self::load_state_dict).
    ///
    /// # Errors
    /// A candle error.
    pub fn uninitialized(decoder: DecoderConfig, transform_input: bool, device: &Device) -> Result<Self, TrainError> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = Network::new(vb, &NetworkConfig::cnn_to_rnn(decoder), transform_input)?;
        let alpha_c = AttentionSettings::default().alpha_c;
        Ok(Self { varmap, model, device: device.clone(), alpha_c })
    }

    /// Which model it is.
    pub fn kind(&self) -> DecoderKind {
        self.model.kind()
    }

    /// Loads Inception v3 weights with torchvision names (`Conv2d_1a_3x3.conv.weight`, …; the
    /// ImageNet `fc` and `AuxLogits` are not used) into the encoder.
    ///
    /// # Errors
    /// [`TrainError::Weights`] naming a missing tensor or both shapes of a misshapen one.
    pub fn load_inception(&self, tensors: &HashMap<String, Tensor>, source: &str) -> Result<(), TrainError> {
        let kind = self.kind();
        let data = self.varmap.data().lock().expect("no panics while holding the varmap lock");
        for (name, var) in data.iter() {
            if !kind.is_encoder(name) {
                continue;
            }
            let Some(key) = name.strip_prefix(kind.inception_prefix()) else { continue };
            let tensor = tensors
                .get(key)
                .or_else(|| tensors.get(name))
                .ok_or_else(|| TrainError::Weights(format!("{source}: no tensor {key}")))?;
            set_checked(var, tensor, key, source)?;
        }
        Ok(())
    }

    /// Loads the encoder weights the config names (random weights need nothing).
    ///
    /// # Errors
    /// [`TrainError::Weights`] or a Hub error.
    pub fn load_encoder_weights(&self, weights: &EncoderWeights) -> Result<(), TrainError> {
        let path = match weights {
            EncoderWeights::Random => return Ok(()),
            EncoderWeights::Hub => {
                caption_model::model_file(caption_model::INCEPTION_V3_REPO, caption_model::INCEPTION_V3_FILE)
                    .map_err(|e| TrainError::Weights(e.to_string()))?
            }
            EncoderWeights::File(path) => path.clone(),
        };
        // Through caption-infer's reader: a checkpoint's model file brings its frozen weights.
        let tensors = caption_infer::checkpoint_files::read_model_file(&path)
            .map_err(|e| TrainError::Weights(format!("{}: {e}", path.display())))?
            .tensors;
        self.load_inception(&tensors, &path.display().to_string())
    }

    /// Every tensor by name (weights and BatchNorm statistics), on the CPU.
    ///
    /// # Errors
    /// A candle error.
    pub fn state_dict(&self) -> Result<HashMap<String, Tensor>, TrainError> {
        let data = self.varmap.data().lock().expect("no panics while holding the varmap lock");
        let mut tensors = HashMap::with_capacity(data.len());
        for (name, var) in data.iter() {
            tensors.insert(name.clone(), var.as_tensor().to_device(&Device::Cpu)?);
        }
        Ok(tensors)
    }

    /// Sets every tensor from a state dict with the original's names.
    ///
    /// # Errors
    /// [`TrainError::Weights`] naming a missing tensor or both shapes of a misshapen one.
    pub fn load_state_dict(&self, tensors: &HashMap<String, Tensor>, source: &str) -> Result<(), TrainError> {
        let data = self.varmap.data().lock().expect("no panics while holding the varmap lock");
        for (name, var) in data.iter() {
            let tensor = tensors.get(name).ok_or_else(|| TrainError::Weights(format!("{source}: no tensor {name}")))?;
            set_checked(var, tensor, name, source)?;
        }
        Ok(())
    }

    /// The variables that train in every mode: the original's `fc` and decoder, or the attention
    /// decoder.
    pub fn trained_vars(&self) -> Vec<(String, Var)> {
        let kind = self.kind();
        self.learnable_vars(|name| kind.is_head(name))
    }

    /// Inception v3's trainable variables (finetune mode): every weight and BatchNorm affine
    /// parameter (below the original's replaced `fc`).
    pub fn encoder_vars(&self) -> Vec<(String, Var)> {
        let kind = self.kind();
        self.learnable_vars(|name| kind.is_encoder(name))
    }

    /// Variables whose name `selected` accepts, without BatchNorm running statistics, by name.
    fn learnable_vars(&self, selected: impl Fn(&str) -> bool) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("no panics while holding the varmap lock");
        let mut vars: Vec<(String, Var)> = data
            .iter()
            .filter(|(name, _)| selected(name) && !is_running_statistic(name))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Re-initialises what [`trained_vars`](Self::trained_vars) holds from `seed` (after encoder
    /// weights were loaded).
    ///
    /// # Errors
    /// A candle error.
    pub fn initialize_head(&self, seed: u64) -> Result<(), TrainError> {
        let kind = self.kind();
        initialize(&self.varmap, seed, |name| kind.is_head(name))?;
        Ok(())
    }

    /// Saves every tensor as safetensors (atomically).
    ///
    /// # Errors
    /// [`TrainError::Io`] or a candle error.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        caption_model::save_safetensors(&self.state_dict()?, path).map_err(|e| TrainError::Weights(e.to_string()))
    }
}

fn set_checked(var: &Var, tensor: &Tensor, name: &str, source: &str) -> Result<(), TrainError> {
    if tensor.dims() != var.dims() {
        return Err(TrainError::Weights(format!(
            "{source}: tensor {name} has shape {:?}, the model needs {:?}",
            tensor.dims(),
            var.dims()
        )));
    }
    var.set(&tensor.to_dtype(DType::F32)?.to_device(var.device())?)?;
    Ok(())
}
