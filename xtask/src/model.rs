//! `cargo xtask import-checkpoint`.

use std::path::PathBuf;

use std::collections::HashMap;

use anyhow::{Context, Result};
use caption_model::{
    INCEPTION_V3_FILE, INCEPTION_V3_REPO, extract_features, model_file, parse_device, read_original_checkpoint,
    save_safetensors,
};
use clap::Args;

/// Convert the PyTorch original's checkpoint to safetensors.
///
/// Reads the `state_dict` of `my_checkpoint.pth.tar` (as the original's `save_checkpoint` writes
/// it) and writes every tensor, under the original's names (`encoderCNN.inception.*`,
/// `decoderRNN.embed.weight`, `decoderRNN.lstm.weight_ih_l0`, …), to a safetensors file. The
/// optimizer state and step are not carried over. Pair the result with the vocabulary from
/// `cargo xtask vocab CAPTIONS --ordering seed` to use the model here.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  cargo xtask import-checkpoint my_checkpoint.pth.tar --out model.safetensors")]
pub struct ImportArgs {
    /// The original's checkpoint (`torch.save({"state_dict", "optimizer", "step"}, ...)`).
    checkpoint: PathBuf,
    /// Where to write the safetensors file.
    #[arg(long, value_name = "model.safetensors")]
    out: PathBuf,
}

/// Runs `cargo xtask import-checkpoint`.
pub fn import_checkpoint(args: &ImportArgs) -> Result<()> {
    let tensors = read_original_checkpoint(&args.checkpoint)?;
    let parameters: usize = tensors.values().map(|t| t.elem_count()).sum();
    save_safetensors(&tensors, &args.out)?;
    println!("{} tensors, {parameters} parameters from {}", tensors.len(), args.checkpoint.display());
    println!("wrote {} (optimizer state and step not carried over)", args.out.display());
    Ok(())
}

/// Inception v3 features for preprocessed images.
///
/// Runs the Inception v3 encoder in eval mode and writes the 2048-d pooled features (key `pooled`)
/// and, when the weights have an ImageNet `fc` (1000 outputs), the logits (key `logits`), one row
/// per image in input order. Weights: torchvision/timm safetensors (`Conv2d_1a_3x3.conv.weight`,
/// …), an imported original checkpoint (`encoderCNN.inception.*`), or `hub`: torchvision's
/// ImageNet weights from the Hugging Face Hub (timm/inception_v3.tv_in1k, model.safetensors; the
/// local cache first, `HF_HOME` honoured). Input: an NCHW f32 tensor
/// under key `images`, already resized and normalised (for pipelines that preprocess elsewhere and
/// for cross-framework checks).
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  cargo xtask features --weights inception_v3.safetensors --input-tensor x.safetensors --out features.safetensors --transform-input"
)]
pub struct FeaturesArgs {
    /// Inception v3 weights: a safetensors file, or `hub`.
    #[arg(long, value_name = "FILE|hub")]
    weights: String,
    /// Preprocessed images: safetensors with an N×3×299×299 f32 tensor `images`.
    #[arg(long, value_name = "X.safetensors")]
    input_tensor: PathBuf,
    /// Where to write `pooled` (and `logits`).
    #[arg(long, value_name = "OUT.safetensors")]
    out: PathBuf,
    /// Apply torchvision's transform_input (on for torchvision's pretrained weights).
    #[arg(long)]
    transform_input: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
}

/// Runs `cargo xtask features`.
pub fn features(args: &FeaturesArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let load = |path: &PathBuf| {
        candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let weights_path = match args.weights.as_str() {
        "hub" => model_file(INCEPTION_V3_REPO, INCEPTION_V3_FILE)?,
        path => PathBuf::from(path),
    };
    let weights = load(&weights_path)?;
    let input = load(&args.input_tensor)?;
    let images =
        input.get("images").with_context(|| format!("{}: no tensor named \"images\"", args.input_tensor.display()))?;
    let dims = images.dims();
    if dims.len() != 4 || dims[1] != 3 {
        anyhow::bail!("{}: \"images\" must be N×3×H×W, got {dims:?}", args.input_tensor.display());
    }
    let (pooled, logits) = extract_features(weights, images, args.transform_input, args.batch, &device)
        .with_context(|| format!("running Inception v3 with {}", weights_path.display()))?;
    let mut out = HashMap::from([("pooled".to_string(), pooled)]);
    if let Some(logits) = logits {
        out.insert("logits".to_string(), logits);
    }
    save_safetensors(&out, &args.out)?;
    let keys: Vec<&String> = out.keys().collect();
    println!("{} images on {:?}: wrote {keys:?} to {}", dims[0], device, args.out.display());
    Ok(())
}
