//! Pooled Inception v3 features (and ImageNet logits) for a batch of preprocessed images.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use crate::{Inception3, InceptionConfig};

/// What [`FeatureExtractor::new`] found in a weights file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsLayout {
    /// The prefix of the Inception tensors: `""` for torchvision/timm files,
    /// `"encoderCNN.inception."` for the original's checkpoints.
    pub prefix: String,
    /// Outputs of the `fc`, when there is one.
    pub fc_outputs: Option<usize>,
}

/// Recognises torchvision/timm Inception weights or the original's `encoderCNN.inception.*`.
///
/// # Errors
/// When no `Conv2d_1a_3x3.conv.weight` is found under either prefix.
pub fn weights_layout(tensors: &HashMap<String, Tensor>) -> Result<WeightsLayout> {
    let prefix = ["", crate::cnn_to_rnn::INCEPTION_PREFIX]
        .into_iter()
        .find(|p| tensors.contains_key(&format!("{p}Conv2d_1a_3x3.conv.weight")))
        .ok_or_else(|| {
            candle_core::Error::Msg(
                "no Inception v3 tensors (Conv2d_1a_3x3.conv.weight, with or without the prefix encoderCNN.inception.)"
                    .into(),
            )
        })?;
    let fc_outputs = tensors.get(&format!("{prefix}fc.weight")).map(|w| w.dims()[0]);
    Ok(WeightsLayout { prefix: prefix.to_string(), fc_outputs })
}

/// Inception v3 in eval mode, built once from a weights file's tensors, for any number of
/// [`FeatureExtractor::extract`] calls.
#[derive(Debug)]
pub struct FeatureExtractor {
    network: Inception3,
    device: Device,
}

impl FeatureExtractor {
    /// Builds the network from torchvision/timm tensors or the original's
    /// `encoderCNN.inception.*`, on `device`; it has an `fc` when the weights' has 1000 outputs
    /// (ImageNet).
    ///
    /// # Errors
    /// No Inception tensors, a missing tensor or a wrong shape.
    pub fn new(tensors: HashMap<String, Tensor>, transform_input: bool, device: &Device) -> Result<Self> {
        let layout = weights_layout(&tensors)?;
        let imagenet = layout.fc_outputs == Some(1000);
        let tensors = tensors
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&layout.prefix).map(|k| (k.to_string(), v)))
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?.to_device(device)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let config =
            InceptionConfig { num_classes: layout.fc_outputs.filter(|_| imagenet), aux_logits: false, transform_input };
        Ok(Self { network: Inception3::new(vb, config)?, device: device.clone() })
    }

    /// Runs the encoder over `images` (N×3×H×W, f32) in batches of `batch`; returns the 2048-d
    /// pooled features and, when the network has an ImageNet `fc`, the logits, on the CPU. Rows
    /// keep the input order.
    ///
    /// # Errors
    /// A candle error (shapes, device).
    pub fn extract(&self, images: &Tensor, batch: usize) -> Result<(Tensor, Option<Tensor>)> {
        let (mut pooled, mut logits) = (Vec::new(), Vec::new());
        let count = images.dim(0)?;
        for start in (0..count).step_by(batch.max(1)) {
            let chunk = images
                .narrow(0, start, batch.max(1).min(count - start))?
                .to_dtype(DType::F32)?
                .to_device(&self.device)?;
            let output = self.network.forward_t(&chunk, false)?;
            pooled.push(output.pooled.to_device(&Device::Cpu)?);
            if let Some(l) = output.logits {
                logits.push(l.to_device(&Device::Cpu)?);
            }
        }
        let logits = if logits.is_empty() { None } else { Some(Tensor::cat(&logits, 0)?) };
        Ok((Tensor::cat(&pooled, 0)?, logits))
    }
}
