//! `cargo xtask caption`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caption_infer::{Captioner, Decoding, Generated};
use caption_model::Sampling;
use caption_train::outputs::{self, Claim, claim_files_in_folder};
use clap::Args;
use serde_json::json;

use crate::decoding::DecodingArgs;

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
/// --sample N draws N captions per image from the model's distribution instead (printed as
/// with --num-captions, in the order drawn, the rank column numbering them).
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
  cargo xtask caption --checkpoint runs/demo --sample 5 --top-p 0.9 --seed 1 datasets/shapes/images
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
    /// The captions file the original was trained on (Kaggle captions.txt), for its vocabulary
    /// (with --original).
    #[arg(long, value_name = "FILE", conflicts_with = "checkpoint")]
    captions: Option<PathBuf>,
    /// Vocabulary threshold the original used (with --original) [default: 5].
    #[arg(long, conflicts_with = "checkpoint")]
    threshold: Option<usize>,
    /// Decoding.
    #[command(flatten)]
    decoding: DecodingArgs,
    /// The N best captions of each image with their log-probabilities, by beam search (beam
    /// width --beam K, at least N; N when --beam is not given). Finished captions come first;
    /// captions cut at --max-length follow only when fewer than N finished. At most 256.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=crate::decoding::MAX_BEAM as i64))]
    num_captions: Option<u16>,
    /// N captions per image drawn from the model's distribution instead of the most likely
    /// ones: diverse captions, each with its log-probability, in the order drawn (1 to 256).
    /// Reproducible: image number i of the list (0-based) draws from --seed + i.
    #[arg(long, value_name = "N", conflicts_with_all = ["num_captions", "beam", "length_penalty"],
          value_parser = clap::value_parser!(u16).range(1..=crate::decoding::MAX_BEAM as i64))]
    sample: Option<u16>,
    /// With --sample: words are drawn from softmax(log-probability / T); below 1 sharper, above
    /// 1 more diverse [default: 1].
    #[arg(long, value_name = "T", requires = "sample")]
    temperature: Option<f32>,
    /// With --sample: draw only among the K most probable words at each step.
    #[arg(long, value_name = "K", requires = "sample", value_parser = clap::value_parser!(u32).range(1..))]
    top_k: Option<u32>,
    /// With --sample: draw only among the fewest most probable words whose probability reaches
    /// P, in (0, 1] (nucleus sampling).
    #[arg(long, value_name = "P", requires = "sample")]
    top_p: Option<f32>,
    /// With --sample: the seed [default: 0].
    #[arg(long, requires = "sample")]
    seed: Option<u64>,
    /// Longest caption, in tokens (the end token included, so at least 2); default: the model's
    /// (50 for the original). A caption cut there is marked: `finished: false` in JSON, a note
    /// on standard error in text output.
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u16).range(2..))]
    max_length: Option<u16>,
    /// Also caption the images in the subfolders of each folder given.
    #[arg(long, short = 'r')]
    recursive: bool,
    /// Print the model's tokens separated by spaces ("a dog 's ball .") instead of the caption
    /// as a person writes it.
    #[arg(long)]
    tokens: bool,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Write where an attention model looked for each word, as DIR/NAME.attention.png (created if
    /// missing; only earlier maps of those names are replaced, nothing else in DIR is touched;
    /// never a folder holding the images read, nor a run's or a dataset's).
    #[arg(long, value_name = "DIR")]
    attention_maps: Option<PathBuf>,
    /// One JSON object per image instead of text: `image`, `caption`, `tokens`, `log_prob`,
    /// `finished` (false when cut at --max-length), and `attention_map` (the PNG's path) with
    /// --attention-maps; with --num-captions, `captions`: a list of such objects, best first.
    /// File names must be UTF-8 here (others are refused by name); text output escapes `\t`,
    /// `\n`, `\r` and `\\` in them.
    #[arg(long)]
    json: bool,
}

/// Runs `cargo xtask caption`.
pub fn run(args: &CaptionArgs) -> Result<()> {
    let beam_implied = args.num_captions.is_some();
    let decoding = args.decoding.decoding(beam_implied)?;
    let beam = match (args.num_captions, args.decoding.beam) {
        (Some(n), Some(k)) if usize::from(n) > k => {
            bail!(
                "--num-captions {n} asks for more captions than the beam keeps (--beam {k}): widen the beam to at least {n}"
            )
        }
        (Some(n), beam) => Some((beam.unwrap_or(n.into()), usize::from(n))),
        (None, _) => None,
    };
    let sampling = Sampling {
        temperature: args.temperature.unwrap_or(1.0),
        top_k: args.top_k.map(|k| k as usize),
        top_p: args.top_p,
    };
    sampling.check().map_err(anyhow::Error::msg)?;
    // Every image path and every output is checked before the model is read.
    let ImageFiles { named, files, mut failures, total } = image_files(args)?;
    let map_names = args.attention_maps.as_ref().map(|_| caption_infer::attention_map::map_file_names(&files));
    if let (Some(dir), Some(names)) = (&args.attention_maps, &map_names) {
        // The images and their folders: the maps never go among them. (The model's folders are
        // guarded as what they are: a checkpoint, a run.)
        let mut inputs: Vec<&Path> = named.iter().map(PathBuf::as_path).collect();
        inputs.extend(files.iter().map(PathBuf::as_path));
        let claim = Claim { inputs: &inputs, ..Claim::default() };
        claim_files_in_folder(dir, names, &outputs::ATTENTION_MAP, &claim)?;
    }

    let device = caption_model::parse_device(&args.device)?;
    let mut captioner = match (&args.checkpoint, &args.original) {
        (Some(run), _) => Captioner::from_run_or_checkpoint(run, &device)?,
        (None, Some(original)) => {
            let captions = args.captions.as_ref().context("--original needs --captions")?;
            Captioner::from_original_files(original, captions, args.threshold.unwrap_or(5), &device)?
        }
        (None, None) => bail!("give --checkpoint RUN, or --original FILE with --captions"),
    };
    if let Some(max_length) = args.max_length {
        captioner.max_length = max_length.into();
    }
    if let Some((size, _)) = beam {
        captioner.check_beam_width(size)?;
    }
    if let Decoding::Beam { size, .. } = decoding {
        captioner.check_beam_width(size)?;
    }
    if let Some(dir) = &args.attention_maps {
        captioner.check_attention("--attention-maps")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut cut = 0;
    let batch = captioner.batch_size.max(1);
    for (chunk_index, chunk) in files.chunks(batch).enumerate() {
        let mut images = Vec::new();
        let mut paths = Vec::new();
        for (offset, path) in chunk.iter().enumerate() {
            match caption_data::check_image_file(path) {
                Ok(image) => {
                    images.push(image);
                    paths.push((chunk_index * batch + offset, path));
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
        let ranked: Vec<Vec<Generated>> = match (args.sample, beam) {
            (Some(n), _) => {
                let seed = args.seed.unwrap_or(0);
                let seeds: Vec<u64> = paths.iter().map(|(index, _)| seed.wrapping_add(*index as u64)).collect();
                captioner.caption_images_sampled(&images, &seeds, n.into(), sampling)?
            }
            (None, Some((size, n))) => {
                captioner.caption_images_n_best(&images, size, args.decoding.length_penalty.unwrap_or(0.0), n)?
            }
            (None, None) => captioner.caption_images(&images, decoding)?.into_iter().map(|g| vec![g]).collect(),
        };
        let mut out = std::io::stdout().lock();
        for (((index, path), captions), image) in paths.iter().zip(ranked).zip(&images) {
            cut += usize::from(!captions[0].finished);
            let map = match (&args.attention_maps, &map_names) {
                (Some(dir), Some(names)) => Some(write_map(&dir.join(&names[*index]), path, image, &captions[0])?),
                _ => None,
            };
            print_captions(&mut out, args, path, &captions, map.as_deref(), beam.is_some() || args.sample.is_some())?;
        }
        out.flush()?;
    }
    if cut > 0 && !args.json {
        eprintln!(
            "note: {cut} caption(s) reached the longest length ({} tokens) before their end and are cut there; \
             --max-length allows longer ones",
            captioner.max_length
        );
    }
    if failures > 0 {
        bail!("{failures} of {total} images could not be read");
    }
    Ok(())
}

/// The images a `caption` invocation names, as found: what was named (standard input read), the
/// image files, how many could not be read (each said on stderr) and how many there were.
struct ImageFiles {
    named: Vec<PathBuf>,
    files: Vec<PathBuf>,
    failures: usize,
    total: usize,
}

/// The image files `args` names (folders listed, `-` read); an error when none can be captioned.
fn image_files(args: &CaptionArgs) -> Result<ImageFiles> {
    let named = caption_data::with_standard_input_paths(&args.images, std::io::stdin().lock())
        .context("standard input (image paths, one per line)")?;
    let mut found = caption_data::collect_image_files(&named, args.recursive);
    let mut failures = found.unreadable.len();
    for (path, problem) in &found.unreadable {
        eprintln!("skipped {}: {problem}", path.display());
    }
    let total = found.files.len() + found.unreadable.len();
    let mut files = std::mem::take(&mut found.files);
    if args.json {
        files.retain(|path| {
            let utf8 = path.to_str().is_some();
            if !utf8 {
                failures += 1;
                eprintln!(
                    "skipped {}: the name is not UTF-8, which JSON cannot hold; rename it or use text output",
                    path.display()
                );
            }
            utf8
        });
    }
    if files.is_empty() && total > 0 {
        bail!("{failures} of {total} images could not be read");
    }
    if files.is_empty() {
        let inputs: Vec<String> = args
            .images
            .iter()
            .map(|p| if p.as_os_str() == "-" { "standard input".to_string() } else { p.display().to_string() })
            .collect();
        bail!("{}", found.nothing_found(&inputs));
    }
    Ok(ImageFiles { named, files, failures, total })
}

/// Prints one image's captions: a JSON object, or tab-separated lines (path, caption; with a
/// beam's n-best also rank and log-probability).
fn print_captions(
    out: &mut impl Write,
    args: &CaptionArgs,
    path: &Path,
    captions: &[Generated],
    map: Option<&Path>,
    n_best: bool,
) -> Result<()> {
    match (args.json, n_best) {
        (true, true) => {
            let captions: Vec<_> = captions.iter().map(|caption| caption.to_json(args.tokens)).collect();
            let mut object = json!({"image": path.to_str(), "captions": captions});
            if let Some(map) = map {
                object["attention_map"] = json!(map.to_str());
            }
            writeln!(out, "{object}")?;
        }
        (true, false) => {
            let mut object = captions[0].to_json(args.tokens);
            object["image"] = json!(path.to_str());
            if let Some(map) = map {
                object["attention_map"] = json!(map.to_str());
            }
            writeln!(out, "{object}")?;
        }
        (false, true) => {
            for (rank, generated) in captions.iter().enumerate() {
                let (path, log_prob) = (tsv_field(path), generated.log_prob);
                writeln!(out, "{path}\t{}\t{log_prob:.4}\t{}", rank + 1, generated.text(args.tokens))?;
            }
        }
        (false, false) => writeln!(out, "{}\t{}", tsv_field(path), captions[0].text(args.tokens))?,
    }
    Ok(())
}

/// A file name as one field of tab-separated output: backslash, tab, newline and carriage return
/// escaped (`\\`, `\t`, `\n`, `\r`), so that each image stays one line of two fields.
fn tsv_field(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.contains(['\\', '\t', '\n', '\r']) {
        return text;
    }
    text.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

/// Writes the attention map of the image at `path` to `map`; returns `map`.
fn write_map(map: &Path, path: &Path, image: &image::RgbImage, caption: &Generated) -> Result<PathBuf> {
    let grid = caption.grid.with_context(|| format!("{}: the caption has no attention weights", path.display()))?;
    caption_infer::attention_map::write_attention_map(map, image, &caption.words, &caption.alphas, grid)
        .with_context(|| format!("cannot draw the attention map of {}", path.display()))?;
    Ok(map.to_path_buf())
}
