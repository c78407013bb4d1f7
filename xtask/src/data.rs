//! `cargo xtask prepare-data`.

use caption_train::outputs::{FolderKind, claim_folder_place};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use caption_data::shapes::{self, ShapesConfig};
use caption_data::sources::Format;
use caption_data::sources::hub::{HubColumns, HubRecipe};
use caption_data::{ImageSource, PrepareOptions, PreparedDataset, SplitRatios, prepare};
use clap::{Args, ValueEnum};

use crate::progress::Bars;
use caption_train::parse_setting;

/// Prepare a dataset: read captions, split, check images, tokenize, build the vocabulary.
///
/// Sources: `--dataset shapes` (a synthetic dataset generated on the spot: no files, no network),
/// `--dataset flickr8k` / `--dataset flickr30k` (parquet from the Hugging Face Hub: jxie/flickr8k,
/// umaru97/flickr30k_train_val_test; the local cache first, `HF_HOME` honoured), `--hub-dataset
/// ORG/NAME` with a column mapping, or a captions file with `--captions FILE --images-dir DIR`: Kaggle Flickr8k captions.txt,
/// Flickr8k.token.txt (its official split files are read from beside it), Karpathy split JSON or
/// COCO captions JSON, recognised from the content or named with `--format`.
///
/// Splits are the source's official ones where it has them, otherwise hashed from the image name
/// (`--split-ratios`). The vocabulary is built on the training split (`--original-compatible`: on all
/// captions in file order, as the PyTorch original does, which reproduces its ids). Unusable
/// images (missing, empty, corrupt, truncated) are skipped and listed in manifest.json with the
/// reason; `--strict` makes them fatal. The output folder (default datasets/NAME) is written
/// atomically: it holds captions.parquet, images.parquet, tokenizer.json and manifest.json.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  cargo xtask prepare-data --dataset shapes --images 1500
  cargo xtask prepare-data --dataset flickr8k
  cargo xtask prepare-data --captions flickr8k/captions.txt --images-dir flickr8k/Images
  cargo xtask prepare-data --captions Flickr8k.token.txt --images-dir Flicker8k_Dataset")]
pub struct PrepareArgs {
    /// A built-in dataset: `shapes` (generated offline), `flickr8k` or `flickr30k` (Hub).
    #[arg(long, value_enum, conflicts_with_all = ["captions", "hub_dataset"])]
    pub dataset: Option<BuiltIn>,
    /// Any Hub dataset in parquet with an image column and caption columns (`ORG/NAME`).
    #[arg(long, value_name = "ORG/NAME", conflicts_with = "captions")]
    pub hub_dataset: Option<String>,
    /// With --hub-dataset: the image column (struct {bytes, path}, or binary).
    #[arg(long, default_value = "image")]
    pub image_column: String,
    /// With --hub-dataset: caption columns, comma-separated (each text or a list of texts).
    #[arg(long, value_delimiter = ',', default_value = "caption")]
    pub caption_columns: Vec<String>,
    /// With --hub-dataset: a column naming each row's split (else the file names say it).
    #[arg(long)]
    pub split_column: Option<String>,
    /// With --hub-dataset: a column naming each image file.
    #[arg(long)]
    pub file_name_column: Option<String>,
    /// A captions file (CSV/TSV/JSON; layout recognised from the content).
    #[arg(long, value_name = "FILE", requires = "images_dir")]
    pub captions: Option<PathBuf>,
    /// The folder holding the images the captions file names.
    #[arg(long, value_name = "DIR")]
    pub images_dir: Option<PathBuf>,
    /// The captions file's layout, when recognising it from the content is not wanted.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Dataset name (default: `shapes`, or the images folder's parent folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// Output folder (default: datasets/NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Words seen fewer times than this are `<UNK>`.
    #[arg(long, default_value_t = 5)]
    pub threshold: usize,
    /// Build the vocabulary over every caption in file order, as the original does (its ids).
    /// `--seed-compatible`, its name before, still works.
    #[arg(long, alias = "seed-compatible")]
    pub original_compatible: bool,
    /// Stop at the first unusable image instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Train/validation/test ratios for sources without official splits.
    #[arg(long, default_value = "80/10/10", value_name = "TRAIN/VAL/TEST")]
    pub split_ratios: SplitRatios,
    /// Seed of the hashed split (and of the shapes generator).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write every image resized to N × N (e.g. 342 or 299) for faster training input.
    #[arg(long, value_name = "N")]
    pub resize: Option<u32>,
    /// Shapes: number of images to generate.
    #[arg(long, default_value_t = 1500, value_name = "N")]
    pub images: usize,
    /// Shapes: side of each generated image in pixels.
    #[arg(long, default_value_t = 128, value_name = "PX")]
    pub size: u32,
    /// Shapes: `simple` (one shape, or two identical ones) or `mixed` (adds pairs of two different
    /// shapes, another colour, form or both, named left to right, which only a model that looks
    /// at each object can describe).
    #[arg(long, value_name = "simple|mixed", default_value = "simple", value_parser = parse_setting::<shapes::Scenes>)]
    pub scenes: shapes::Scenes,
    /// Print only the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Built-in datasets.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltIn {
    /// Coloured shapes with five captions each, generated from the seed.
    Shapes,
    /// Flickr8k from the Hub (jxie/flickr8k; official 6000/1000/1000 splits).
    Flickr8k,
    /// Flickr30k from the Hub (umaru97/flickr30k_train_val_test; Karpathy splits).
    Flickr30k,
}

/// Caption file layouts.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// Recognise from the content.
    Auto,
    /// Kaggle Flickr8k captions.txt.
    Kaggle,
    /// Flickr8k.token.txt with the official split files beside it.
    Flickr8kToken,
    /// Karpathy's dataset_*.json.
    Karpathy,
    /// COCO captions_*.json.
    Coco,
    /// One caption per line.
    Plain,
}

/// Runs `cargo xtask prepare-data`; returns the prepared dataset.
pub fn prepare_data(args: &PrepareArgs) -> Result<PreparedDataset> {
    let started = Instant::now();
    let mut options = PrepareOptions {
        threshold: args.threshold,
        original_compatible: args.original_compatible,
        strict: args.strict,
        split_ratios: args.split_ratios,
        split_seed: args.seed,
        resize: args.resize,
        ..PrepareOptions::default()
    };
    let (records, images) = match (args.dataset, &args.captions) {
        (Some(BuiltIn::Shapes), _) => {
            options.name = args.name.clone().unwrap_or_else(|| "shapes".into());
            shapes::source(
                ShapesConfig { images: args.images, size: args.size, seed: args.seed, scenes: args.scenes },
                &mut options,
            )?
        }
        (Some(built_in @ (BuiltIn::Flickr8k | BuiltIn::Flickr30k)), _) => {
            let recipe = if built_in == BuiltIn::Flickr8k { HubRecipe::flickr8k() } else { HubRecipe::flickr30k() };
            let name = if built_in == BuiltIn::Flickr8k { "flickr8k" } else { "flickr30k" };
            options.name = args.name.clone().unwrap_or_else(|| name.into());
            hub_source(&recipe, &mut options)?
        }
        (None, None) if args.hub_dataset.is_some() => {
            let repo = args.hub_dataset.clone().unwrap_or_default();
            let columns = HubColumns {
                image: args.image_column.clone(),
                captions: args.caption_columns.clone(),
                split: args.split_column.clone(),
                file_name: args.file_name_column.clone(),
            };
            options.name = args.name.clone().unwrap_or_else(|| repo.rsplit('/').next().unwrap_or("hub").to_lowercase());
            hub_source(&HubRecipe { columns, repo }, &mut options)?
        }
        (None, Some(captions)) => {
            let images_dir = args.images_dir.as_ref().context("--captions needs --images-dir")?;
            let format = match args.format {
                FormatArg::Auto => None,
                FormatArg::Kaggle => Some(Format::Kaggle),
                FormatArg::Flickr8kToken => Some(Format::Flickr8kToken),
                FormatArg::Karpathy => Some(Format::Karpathy),
                FormatArg::Coco => Some(Format::Coco),
                FormatArg::Plain => Some(Format::Plain),
            };
            options.name = args.name.clone().unwrap_or_default();
            caption_data::sources::files(captions, images_dir, format, &mut options)?
        }
        (None, None) => {
            bail!(
                "say what to prepare: --dataset shapes|flickr8k|flickr30k, --hub-dataset ORG/NAME, or --captions FILE --images-dir DIR"
            )
        }
    };
    let out = args.out.clone().unwrap_or_else(|| Path::new("datasets").join(&options.name));
    prepare_and_report(records, &images, &options, &out, args.quiet, started)
}

/// Prepares the dataset with progress bars (unless `quiet`) and prints what was prepared and how
/// long it took since `started` (reading the source included): what `prepare-data` and the demo
/// run once their source is read.
pub fn prepare_and_report(
    records: Vec<caption_data::CaptionRecord>,
    images: &ImageSource,
    options: &PrepareOptions,
    out: &Path,
    quiet: bool,
    started: Instant,
) -> Result<PreparedDataset> {
    claim_folder_place(out, FolderKind::Other)?;
    let dataset = prepare(records, images, options, out, &Bars::new(quiet))?;
    print_summary(&dataset, started.elapsed().as_secs_f64());
    Ok(dataset)
}

/// The Hub dataset of `recipe` (the local cache first), saying where it is read from.
fn hub_source(
    recipe: &HubRecipe,
    options: &mut PrepareOptions,
) -> Result<(Vec<caption_data::CaptionRecord>, ImageSource)> {
    let cache = hf_hub::Cache::from_env();
    eprintln!("reading {} from the Hugging Face Hub (cache: {})", recipe.repo, cache.path().display());
    Ok(caption_data::sources::hub::source(recipe, &cache, options)?)
}

fn print_summary(dataset: &PreparedDataset, seconds: f64) {
    println!("prepared {} in {seconds:.1} s: {}", dataset.manifest.name, dataset.root.display());
    println!("{}", dataset.manifest.summary());
}
