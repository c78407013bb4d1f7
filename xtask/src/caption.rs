//! `cargo xtask caption`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caption_data::sources::read_captions_file;
use caption_infer::{Captioner, Generated};
use caption_model::{DecoderKind, read_original_checkpoint};
use caption_text::{Ordering, Tokenizer, Vocabulary, detokenize};
use clap::Args;
use serde_json::json;

use crate::bleu::decoding;

/// Caption images with a trained model.
///
/// IMAGE may be files or folders (every .jpg, .jpeg, .png, .bmp, .gif, .webp inside, sorted), or
/// `-` to read image paths from standard input, one per line.
/// The model is a run of `cargo xtask train` (its best checkpoint), a checkpoint folder, or the
/// PyTorch original's checkpoint (`my_checkpoint.pth.tar`, or safetensors from
/// `cargo xtask import-checkpoint`) given with --original and the captions file it was trained
/// on (--captions: its vocabulary is rebuilt with the original's ids). Unreadable images are
/// reported and skipped; the exit status is non-zero if any was.
///
/// Captions are printed as a person writes them ("a dog's ball.", no space before punctuation);
/// --tokens prints the model's tokens instead. Output: `path<TAB>caption` per image, or with
/// --num-captions N, N lines per image, `path<TAB>rank<TAB>log-probability<TAB>caption`, best first;
/// --json prints one JSON object per image (with the tokens and log-probabilities).
///
/// An attention model (trained with --decoder attention) can also show where it looked:
/// --attention-maps DIR writes DIR/NAME.attention.png for each image NAME.EXT, a strip of panels,
/// one per word of its (best) caption, the image with that word's weights over the encoder's grid
/// laid over it in red.
#[derive(Args, Debug)]
#[command(after_help = "Examples (after `cargo xtask demo`):
  cargo xtask caption --checkpoint runs/demo datasets/shapes/images/shapes_00001.png
  cargo xtask caption --checkpoint runs/demo --beam 3 --json datasets/shapes/images
  cargo xtask caption --checkpoint runs/demo --beam 5 --num-captions 3 datasets/shapes/images
  find photos -name '*.jpg' | cargo xtask caption --checkpoint runs/demo -
  cargo xtask caption --original my_checkpoint.pth.tar --captions captions.txt photos/
  cargo xtask caption --checkpoint runs/demo-attention --attention-maps maps datasets/shapes/images")]
pub struct CaptionArgs {
    /// Images or folders of images; `-` reads paths from standard input, one per line.
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
    /// Beam search length normalisation exponent: hypotheses are ranked by
    /// log-probability / length^α (0: by log-probability).
    #[arg(long, default_value_t = 0.0, value_name = "α")]
    length_penalty: f32,
    /// The N best captions of each image with their log-probabilities, by beam search (beam
    /// width --beam K, at least N; N when --beam is not given). Finished captions come first;
    /// captions cut at --max-length follow only when fewer than N finished.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    num_captions: Option<u16>,
    /// Longest caption, in tokens (the end token included); default: the model's (50 for
    /// the original).
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u16).range(1..))]
    max_length: Option<u16>,
    /// Print the model's tokens separated by spaces ("a dog 's ball .") instead of the caption
    /// as a person writes it.
    #[arg(long)]
    tokens: bool,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Write where an attention model looked for each word, as DIR/NAME.attention.png (created if
    /// missing; files of that name are replaced, nothing else in DIR is touched).
    #[arg(long, value_name = "DIR")]
    attention_maps: Option<PathBuf>,
    /// One JSON object per image instead of text (with `attention_map`, the PNG's path, when
    /// --attention-maps is given): `image`, `caption`, `tokens`, `log_prob`,
    /// `finished` (false when cut at --max-length); with --num-captions, `captions`: a list of
    /// such objects, best first.
    #[arg(long)]
    json: bool,
}

/// Runs `cargo xtask caption`.
pub fn run(args: &CaptionArgs) -> Result<()> {
    let device = caption_model::parse_device(&args.device)?;
    let mut captioner = match (&args.checkpoint, &args.original) {
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
    if let Some(max_length) = args.max_length {
        captioner.max_length = max_length.into();
    }
    if let Some(dir) = &args.attention_maps {
        let kind = captioner.model.kind();
        if kind != DecoderKind::Attention {
            bail!(
                "--attention-maps needs an attention model ({}); {} holds a {} model, which has no attention weights",
                DecoderKind::Attention.architecture(),
                captioner.source,
                kind.architecture()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let beam = match (args.num_captions, args.beam) {
        (Some(n), Some(k)) if usize::from(n) > k => {
            bail!(
                "--num-captions {n} asks for more captions than the beam keeps (--beam {k}): widen the beam to at least {n}"
            )
        }
        (Some(n), beam) => Some((beam.unwrap_or(n.into()), usize::from(n))),
        (None, _) => None,
    };
    let files = collect_images(&read_stdin_paths(&args.images)?)?;
    if files.is_empty() {
        let inputs: Vec<String> = args
            .images
            .iter()
            .map(|p| if p.as_os_str() == "-" { "standard input".to_string() } else { p.display().to_string() })
            .collect();
        bail!("no images in {}", inputs.join(", "));
    }
    let mut failures = 0;
    let mut map_names = std::collections::HashSet::new();
    let decoding = decoding(args.beam, args.length_penalty);
    let text_of = |generated: &Generated| {
        if args.tokens { generated.words.join(" ") } else { detokenize(&generated.words) }
    };
    let as_json = |generated: &Generated| {
        json!({"caption": text_of(generated), "tokens": generated.words, "log_prob": generated.log_prob,
               "finished": generated.finished})
    };
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
        let ranked: Vec<Vec<Generated>> = match beam {
            Some((size, n)) => captioner.caption_images_n_best(&images, size, args.length_penalty, n)?,
            None => captioner.caption_images(&images, decoding)?.into_iter().map(|g| vec![g]).collect(),
        };
        let mut out = std::io::stdout().lock();
        for ((path, captions), image) in paths.iter().zip(ranked).zip(&images) {
            let map = match &args.attention_maps {
                Some(dir) => Some(write_map(dir, path, image, &captions[0], &mut map_names)?),
                None => None,
            };
            match (args.json, beam.is_some()) {
                (true, true) => {
                    let captions: Vec<_> = captions.iter().map(as_json).collect();
                    let mut object = json!({"image": path, "captions": captions});
                    if let Some(map) = &map {
                        object["attention_map"] = json!(map);
                    }
                    writeln!(out, "{object}")?;
                }
                (true, false) => {
                    let mut object = as_json(&captions[0]);
                    object["image"] = json!(path);
                    if let Some(map) = &map {
                        object["attention_map"] = json!(map);
                    }
                    writeln!(out, "{object}")?;
                }
                (false, true) => {
                    for (rank, generated) in captions.iter().enumerate() {
                        let (path, log_prob) = (path.display(), generated.log_prob);
                        writeln!(out, "{path}\t{}\t{log_prob:.4}\t{}", rank + 1, text_of(generated))?;
                    }
                }
                (false, false) => writeln!(out, "{}\t{}", path.display(), text_of(&captions[0]))?,
            }
        }
        out.flush()?;
    }
    if failures > 0 {
        bail!("{failures} of {} images could not be read", files.len());
    }
    Ok(())
}

/// Writes `DIR/NAME.attention.png` for the image at `path` (`NAME-2`, … when images of the same
/// name from other folders came first in this run, as `taken` records); returns its path.
fn write_map(
    dir: &Path,
    path: &Path,
    image: &image::RgbImage,
    caption: &Generated,
    taken: &mut std::collections::HashSet<String>,
) -> Result<PathBuf> {
    let stem = path.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let mut name = stem.clone();
    let mut k = 2;
    while !taken.insert(name.clone()) {
        name = format!("{stem}-{k}");
        k += 1;
    }
    let grid = caption.grid.with_context(|| format!("{}: the caption has no attention weights", path.display()))?;
    let map = dir.join(format!("{name}.attention.png"));
    caption_infer::attention_map::write_attention_map(&map, image, &caption.words, &caption.alphas, grid)
        .with_context(|| format!("cannot draw the attention map of {}", path.display()))?;
    Ok(map)
}

/// `inputs` with each `-` replaced by the paths read from standard input (one per line, its
/// `\n` or `\r\n` removed by `lines`; blank lines ignored).
fn read_stdin_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("cannot read image paths from standard input")?;
                if !line.trim().is_empty() {
                    paths.push(PathBuf::from(line));
                }
            }
        } else {
            paths.push(input.clone());
        }
    }
    Ok(paths)
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
