//! `cargo xtask caption`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caption_data::sources::read_captions_file;
use caption_infer::Captioner;
use caption_model::read_original_checkpoint;
use caption_text::{Ordering, Tokenizer, Vocabulary};
use clap::Args;
use serde_json::json;

use crate::bleu::decoding;

/// Caption images with a trained model.
///
/// IMAGE may be files or folders (every .jpg, .jpeg, .png, .bmp, .gif, .webp inside, sorted).
/// The model is a run of `cargo xtask train` (its best checkpoint), a checkpoint folder, or the
/// PyTorch original's checkpoint (`my_checkpoint.pth.tar`, or safetensors from
/// `cargo xtask import-checkpoint`) given with --original and the captions file it was trained
/// on (--captions: its vocabulary is rebuilt with the original's ids). Unreadable images are
/// reported and skipped; the exit status is non-zero if any was.
#[derive(Args, Debug)]
#[command(after_help = "Examples (after `cargo xtask demo`):
  cargo xtask caption --checkpoint runs/demo datasets/shapes/images/shapes_00001.png
  cargo xtask caption --checkpoint runs/demo --beam 3 --json datasets/shapes/images
  cargo xtask caption --original my_checkpoint.pth.tar --captions captions.txt photos/")]
pub struct CaptionArgs {
    /// Images or folders of images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// A run folder or checkpoint folder.
    #[arg(long, value_name = "RUN", required_unless_present = "original", conflicts_with = "original")]
    checkpoint: Option<PathBuf>,
    /// The PyTorch original's checkpoint (.pth.tar) or its safetensors export.
    #[arg(long, value_name = "FILE", requires = "captions")]
    original: Option<PathBuf>,
    /// The captions file the original was trained on (Kaggle captions.txt), for its vocabulary.
    #[arg(long, value_name = "FILE")]
    captions: Option<PathBuf>,
    /// Vocabulary threshold the original used.
    #[arg(long, default_value_t = 5)]
    threshold: usize,
    /// Beam search with K hypotheses instead of greedy decoding.
    #[arg(long, value_name = "K")]
    beam: Option<usize>,
    /// Beam search length normalisation exponent.
    #[arg(long, default_value_t = 0.0)]
    length_penalty: f32,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// One JSON object per image instead of `path<TAB>caption`.
    #[arg(long)]
    json: bool,
}

/// Runs `cargo xtask caption`.
pub fn run(args: &CaptionArgs) -> Result<()> {
    let device = caption_model::parse_device(&args.device)?;
    let captioner = match (&args.checkpoint, &args.original) {
        (Some(run), _) => Captioner::from_run_or_checkpoint(run, &device)?,
        (None, Some(original)) => {
            let captions = args.captions.as_ref().context("--original needs --captions")?;
            let records = read_captions_file(captions)?;
            let texts: Vec<&str> = records.iter().map(|r| r.caption.as_str()).collect();
            let words = Tokenizer::english().lowercase_words_batch(&texts);
            let vocabulary = Vocabulary::build(&words, args.threshold, Ordering::Original)?;
            let tensors = if original.extension().is_some_and(|e| e == "safetensors") {
                candle_core::safetensors::load(original, &candle_core::Device::Cpu)?
            } else {
                read_original_checkpoint(original)?
            };
            Captioner::from_original(&tensors, vocabulary, &original.display().to_string(), &device)?
        }
        (None, None) => bail!("give --checkpoint RUN, or --original FILE with --captions"),
    };
    let files = collect_images(&args.images)?;
    if files.is_empty() {
        bail!("no images in {}", list_paths(&args.images));
    }
    let mut failures = 0;
    let decoding = decoding(args.beam, args.length_penalty);
    for chunk in files.chunks(captioner.batch_size.max(1)) {
        let mut images = Vec::new();
        let mut paths = Vec::new();
        for path in chunk {
            match caption_data::check_image_file(path) {
                Ok(image) => {
                    images.push(image);
                    paths.push(path);
                }
                Err(problem) => {
                    failures += 1;
                    eprintln!("skipped {}: {problem}", path.display());
                }
            }
        }
        if images.is_empty() {
            continue;
        }
        for (path, generated) in paths.iter().zip(captioner.caption_images(&images, decoding)?) {
            let text = generated.words.join(" ");
            if args.json {
                println!("{}", json!({"image": path, "caption": text, "log_prob": generated.log_prob}));
            } else {
                println!("{}\t{text}", path.display());
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} images could not be read", files.len());
    }
    Ok(())
}

/// The paths, comma-separated, for messages.
pub fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The image files among `inputs`: files as given, folders expanded to their images, sorted.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let is_image = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png" | "bmp" | "gif" | "webp"))
    };
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot list {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}
