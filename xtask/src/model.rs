//! `cargo xtask import-checkpoint`, `export` and `features`: moving models between PyTorch and here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caption_infer::image_features::{FeatureSource, MIN_SIDE, extract_features, preprocessed_images};
use caption_model::{
    INCEPTION_V3_FILE, INCEPTION_V3_REPO, model_file, parse_device, read_original_checkpoint, save_safetensors,
};
use caption_train::outputs::{self, Claim, claim_output_file};
use clap::Args;

use crate::progress::Bars;

/// Convert the PyTorch original's checkpoint to safetensors.
///
/// Reads the `state_dict` of `my_checkpoint.pth.tar` (as the original's `save_checkpoint` writes
/// it) and writes every tensor, under the original's names (`encoderCNN.inception.*`,
/// `decoderRNN.embed.weight`, `decoderRNN.lstm.weight_ih_l0`, …), to a safetensors file. The
/// optimizer state and step are not carried over. Pair the result with the vocabulary from
/// `cargo xtask vocab CAPTIONS --ordering original` to use the model here.
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
    let claim = Claim { inputs: &[&args.checkpoint], ..Claim::default() };
    claim_output_file(&args.out, &outputs::ORIGINAL_WEIGHTS, &claim)?;
    let tensors = read_original_checkpoint(&args.checkpoint)?;
    let parameters: usize = tensors.values().map(|t| t.elem_count()).sum();
    save_safetensors(&tensors, &args.out)?;
    println!("{} tensors, {parameters} parameters from {}", tensors.len(), args.checkpoint.display());
    println!("wrote {} (optimizer state and step not carried over)", args.out.display());
    Ok(())
}

/// Export a trained model for PyTorch: weights, configuration, vocabulary and a script.
///
/// Writes into DIR (absent, empty, or an earlier export; written whole or not at all):
/// `model.safetensors` (the weights under the PyTorch original's names, loadable with
/// `CNNtoRNN.load_state_dict(..., strict=True)`, the configuration and vocabulary in its
/// metadata), `config.json` (sizes, image size and normalisation, transform_input, max_length,
/// specials, step and epoch), `vocab.json` (the words by id), `tokenizer.json` (the same as a
/// Hugging Face tokenizer file) and `caption.py`, a self-contained script with the original's
/// classes that loads them and captions images (`python DIR/caption.py IMAGE...`; torch,
/// torchvision, safetensors and pillow). The export folder (or its model.safetensors alone) also
/// loads here: `cargo xtask caption --checkpoint DIR`.
#[derive(Args, Debug)]
#[command(after_help = "Example (after `cargo xtask demo`):
  cargo xtask export --checkpoint runs/demo --pytorch demo-pytorch
  python demo-pytorch/caption.py datasets/shapes/images/shapes_00001.png")]
pub struct ExportArgs {
    /// A run folder (its best checkpoint), a checkpoint folder, or a model.safetensors written here.
    #[arg(long, value_name = "RUN")]
    checkpoint: PathBuf,
    /// The folder to write the PyTorch export into.
    #[arg(long, value_name = "DIR")]
    pytorch: PathBuf,
}

/// Runs `cargo xtask export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    caption_data::refuse_output_over_inputs(&args.pytorch, &[&args.checkpoint])?;
    outputs::claim_folder_place(&args.pytorch, outputs::FolderKind::Other)?;
    let trained = caption_infer::checkpoint_files::read_trained_model(&args.checkpoint)?;
    let (source, metadata) = (trained.path.display().to_string(), trained.metadata.clone());
    let files = caption_infer::export::export_pytorch(&trained, &args.pytorch)?;
    println!(
        "exported {source}: CNNtoRNN, embed {} hidden {} layers {}, {} words, images {} px{}",
        metadata.embed_size,
        metadata.hidden_size,
        metadata.num_layers,
        metadata.vocab_size,
        metadata.image_size,
        if metadata.transform_input { ", transform_input" } else { "" }
    );
    for file in files {
        println!("wrote {}", file.display());
    }
    println!("caption in PyTorch: python {} IMAGE...", args.pytorch.join(caption_infer::export::SCRIPT_FILE).display());
    Ok(())
}

/// Inception v3 features of images.
///
/// Runs the Inception v3 encoder in eval mode and writes the 2048-d pooled features (key `pooled`)
/// and, when the weights have an ImageNet `fc` (1000 outputs), the logits (key `logits`), one row
/// per image in input order. Weights: torchvision/timm safetensors (`Conv2d_1a_3x3.conv.weight`,
/// …), an imported original checkpoint (`encoderCNN.inception.*`), or `hub`: torchvision's
/// ImageNet weights from the Hugging Face Hub (timm/inception_v3.tv_in1k, model.safetensors; the
/// local cache first, `HF_HOME` honoured).
///
/// Input, one of: --images (files or folders; a folder gives its .jpg, .jpeg, .png, .bmp, .gif,
/// .webp files in sorted order), preprocessed as the original's eval transform does it:
/// Resize((S, S)) with Pillow's bilinear filter → ToTensor → Normalize(0.5, 0.5), decoded a chunk
/// at a time; a chunk with unreadable images stops the run, naming each of them, and nothing is
/// written. Or
/// --input-tensor: an NCHW f32 tensor under key `images`, already resized and normalised (for
/// pipelines that preprocess elsewhere and for cross-framework checks).
#[derive(Args, Debug)]
#[command(after_help = "Examples (after `cargo xtask demo`):
  cargo xtask features --weights hub --images datasets/shapes/images --out runs/f.safetensors
  cargo xtask features --weights model.safetensors --images photos --out features.safetensors
  cargo xtask features --weights hub --input-tensor x.safetensors --out f.safetensors")]
pub struct FeaturesArgs {
    /// Inception v3 weights: a safetensors file, or `hub`.
    #[arg(long, value_name = "FILE|hub")]
    weights: String,
    /// Images or folders of images.
    #[arg(long, num_args = 1.., value_name = "PATH", required_unless_present = "input_tensor", conflicts_with = "input_tensor")]
    images: Vec<PathBuf>,
    /// Preprocessed images: safetensors with an N×3×H×W f32 tensor `images`.
    #[arg(long, value_name = "X.safetensors")]
    input_tensor: Option<PathBuf>,
    /// Also read the images in the subfolders of each folder given (--images).
    #[arg(long, short = 'r')]
    recursive: bool,
    /// Side images are resized to (--images).
    #[arg(long, default_value_t = 299)]
    size: u32,
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
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    batch: usize,
    /// Hide the progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `cargo xtask features`.
pub fn features(args: &FeaturesArgs) -> Result<()> {
    if !(MIN_SIDE..=caption_data::RESIZE_SIDES.end().to_owned()).contains(&args.size) {
        bail!(
            "--size {}: images are resized to {MIN_SIDE} (Inception v3's smallest input) to {} pixels",
            args.size,
            caption_data::RESIZE_SIDES.end()
        );
    }
    let mut inputs: Vec<&Path> = args.images.iter().map(PathBuf::as_path).collect();
    inputs.extend(args.input_tensor.as_deref());
    if args.weights != "hub" {
        inputs.push(Path::new(&args.weights));
    }
    claim_output_file(&args.out, &outputs::FEATURES, &Claim { inputs: &inputs, ..Claim::default() })?;
    let device = parse_device(&args.device)?;
    // A preprocessed input is checked before the weights are found or read: a wrong tensor
    // fails at once. A regular file only (checked before it is mapped: a device or FIFO is refused).
    let input = match &args.input_tensor {
        Some(path) => {
            caption_data::open_input_file(path).with_context(|| format!("cannot read {}", path.display()))?;
            let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(preprocessed_images(&tensors, path)?)
        }
        None => None,
    };
    let files = match input {
        Some(_) => Vec::new(),
        None => {
            let found = caption_data::collect_image_files(&args.images, args.recursive);
            if !found.unreadable.is_empty() {
                let problems: Vec<String> =
                    found.unreadable.iter().map(|(path, problem)| format!("{}: {problem}", path.display())).collect();
                bail!("{} inputs cannot be read; nothing written:\n  {}", problems.len(), problems.join("\n  "));
            }
            if found.files.is_empty() {
                let inputs: Vec<String> = args.images.iter().map(|p| p.display().to_string()).collect();
                bail!("{}", found.nothing_found(&inputs));
            }
            found.files
        }
    };
    let source = match &input {
        Some(images) => FeatureSource::Tensor(images),
        None => FeatureSource::Files { files: &files, size: args.size },
    };
    let weights = match args.weights.as_str() {
        "hub" => model_file(INCEPTION_V3_REPO, INCEPTION_V3_FILE)?,
        path => PathBuf::from(path),
    };
    let bars = Bars::new(args.quiet);
    let features = extract_features(&weights, args.transform_input, &device, source, args.batch, &bars)?;
    let count = features.pooled.dim(0)?;
    let out = features.into_named();
    save_safetensors(&out, &args.out)?;
    let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let on = match device.location() {
        candle_core::DeviceLocation::Cpu => "the CPU".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("CUDA device {gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("Metal device {gpu_id}"),
    };
    println!("{count} images on {on}: wrote {} to {}", keys.join(" and "), args.out.display());
    Ok(())
}
