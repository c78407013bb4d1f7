//! `cargo xtask import-checkpoint`, `export` and `features`: moving models between PyTorch and here.

use std::path::PathBuf;

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use caption_data::{ImageTransform, Progress};
use caption_model::{
    FeatureExtractor, INCEPTION_V3_FILE, INCEPTION_V3_REPO, model_file, parse_device, read_original_checkpoint,
    save_safetensors,
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

/// Inception v3's smallest input side.
const MIN_SIDE: u32 = 75;

/// Runs `cargo xtask features`.
pub fn features(args: &FeaturesArgs) -> Result<()> {
    if !(MIN_SIDE..=caption_data::RESIZE_SIDES.end().to_owned()).contains(&args.size) {
        bail!(
            "--size {}: images are resized to {MIN_SIDE} (Inception v3's smallest input) to {} pixels",
            args.size,
            caption_data::RESIZE_SIDES.end()
        );
    }
    let mut inputs: Vec<&std::path::Path> = args.images.iter().map(PathBuf::as_path).collect();
    inputs.extend(args.input_tensor.as_deref());
    if args.weights != "hub" {
        inputs.push(std::path::Path::new(&args.weights));
    }
    claim_output_file(&args.out, &outputs::FEATURES, &Claim { inputs: &inputs, ..Claim::default() })?;
    let device = parse_device(&args.device)?;
    let load = |path: &PathBuf| {
        // A regular file only (checked before it is mapped: a device or FIFO is refused).
        caption_data::open_input_file(path).with_context(|| format!("cannot read {}", path.display()))?;
        candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .with_context(|| format!("cannot read {}", path.display()))
    };
    // A preprocessed input is checked before the weights are found or read: a wrong tensor
    // fails at once.
    let input = args.input_tensor.as_ref().map(|path| read_preprocessed(&load(path)?, path)).transpose()?;
    let weights_path = match args.weights.as_str() {
        "hub" => model_file(INCEPTION_V3_REPO, INCEPTION_V3_FILE)?,
        path => PathBuf::from(path),
    };
    let context = || format!("running Inception v3 with {}", weights_path.display());
    // Through the checkpoint reader: a frozen-mode checkpoint's model file brings its frozen weights.
    let weights = caption_infer::checkpoint_files::read_model_file(&weights_path)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot read {}", weights_path.display()))?
        .tensors;
    let extractor = FeatureExtractor::new(weights, args.transform_input, &device).with_context(context)?;
    let run = |images: &Tensor| extractor.extract(images, args.batch).with_context(context);
    let (count, pooled, logits) = match &input {
        Some(images) => {
            let (pooled, logits) = run(images)?;
            (images.dim(0)?, pooled, logits)
        }
        None => {
            let found = caption_data::collect_image_files(&args.images, args.recursive);
            if !found.unreadable.is_empty() {
                let problems: Vec<String> =
                    found.unreadable.iter().map(|(path, problem)| format!("{}: {problem}", path.display())).collect();
                bail!("{} inputs cannot be read; nothing written:\n  {}", problems.len(), problems.join("\n  "));
            }
            let files = found.files;
            if files.is_empty() {
                bail!("no images in {}", crate::caption::list_paths(&args.images));
            }
            let transform = ImageTransform::eval(args.size);
            let bars = Bars::new(args.quiet);
            bars.start_counting("encoding images", files.len() as u64, "images");
            let (mut pooled, mut logits) = (Vec::new(), Vec::new());
            // Decoded a chunk at a time so that memory stays bounded on large folders.
            for chunk in files.chunks(args.batch.max(1) * 8) {
                let images = preprocess(chunk, &transform)?;
                let (p, l) = run(&Tensor::from_vec(
                    images,
                    (chunk.len(), 3, args.size as usize, args.size as usize),
                    &candle_core::Device::Cpu,
                )?)?;
                pooled.push(p);
                logits.extend(l);
                bars.advance(chunk.len() as u64);
            }
            bars.finish();
            let logits = if logits.is_empty() { None } else { Some(Tensor::cat(&logits, 0)?) };
            (files.len(), Tensor::cat(&pooled, 0)?, logits)
        }
    };
    let mut out = HashMap::from([("pooled".to_string(), pooled)]);
    if let Some(logits) = logits {
        out.insert("logits".to_string(), logits);
    }
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

/// The `images` tensor of a preprocessed input file, checked: N×3×H×W, at least Inception's
/// smallest side, finite floating-point pixels.
fn read_preprocessed(input: &HashMap<String, Tensor>, path: &std::path::Path) -> Result<Tensor> {
    let images = input.get("images").with_context(|| format!("{}: no tensor named \"images\"", path.display()))?;
    let dims = images.dims();
    if dims.len() != 4 || dims[1] != 3 {
        bail!("{}: \"images\" must be N×3×H×W, got {dims:?}", path.display());
    }
    if dims[2].min(dims[3]) < MIN_SIDE as usize {
        bail!(
            "{}: \"images\" are {}×{} pixels; Inception v3 needs at least {MIN_SIDE}×{MIN_SIDE}",
            path.display(),
            dims[2],
            dims[3]
        );
    }
    check_preprocessed(images).with_context(|| format!("{}: \"images\"", path.display()))?;
    Ok(images.clone())
}

/// Refuses a tensor that cannot be preprocessed pixels: integers (raw 0–255 values would give
/// features hundreds of times off), non-finite values.
fn check_preprocessed(images: &Tensor) -> Result<()> {
    use candle_core::DType;
    if !matches!(images.dtype(), DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
        bail!(
            "is {:?}; expected floating-point pixels already resized and normalised as the eval transform does \
             (ToTensor then Normalize(0.5, 0.5): values in [-1, 1]), or give the image files with --images",
            images.dtype()
        );
    }
    let values = images.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if let Some(position) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "holds a non-finite value ({}) at flat index {position}; expected finite pixels in [-1, 1]",
            values[position]
        );
    }
    Ok(())
}

/// Decodes, checks and transforms `files` in parallel into one N×3×S×S buffer; names every file
/// that cannot be read.
fn preprocess(files: &[PathBuf], transform: &ImageTransform) -> Result<Vec<f32>> {
    let load = |path: &PathBuf| {
        caption_data::check_image_file(path).map_err(|problem| format!("{}: {problem}", path.display()))
    };
    // The eval transform does not crop: the seed is never drawn from.
    transform.apply_batch(files, 0, load).or_else(|problems| {
        bail!(
            "{} of {} images cannot be read; nothing written:\n  {}",
            problems.len(),
            files.len(),
            problems.join("\n  ")
        )
    })
}
