//! `cargo xtask bleu`: score caption files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caption_data::{PreparedDataset, Split};
use caption_infer::Captioner;
use caption_infer::evaluation::{caption_split, claim_eval_folder};
use caption_infer::scored_files::{self, Tokenization};
use caption_metrics::formats::EvalSet;
use caption_metrics::{Bleu, Compat, CorpusReport};

use crate::decoding::DecodingArgs;
use crate::evaluate;
use crate::progress::Bars;
use caption_infer::report;
use caption_train::outputs::{self, Claim, claim_output_file};
use clap::{Args, ValueEnum};
use serde_json::json;

/// Score captions against references.
///
/// Inputs are either JSON Lines (`--input`, one `{"id", "hypothesis", "references"}` object per
/// line) or pycocoevalcap's pair of files (`--results` with `--annotations`). BLEU follows the
/// arithmetic of the library named by `--compat`, to the last digit: `coco` (pycocoevalcap 1.2, what
/// captioning papers report), `nltk` (3.10 corpus_bleu) or `sacrebleu` (2.6, tokenize='none').
/// CIDEr-D and ROUGE-L are pycocoevalcap's.
#[derive(Args, Debug)]
#[command(after_help = "Examples (after `cargo xtask demo`):
  cargo xtask bleu --checkpoint runs/demo --data datasets/shapes --split test --beam 3
  cargo xtask bleu --results results.json --annotations captions_val2017.json --metrics bleu,cider
  cargo xtask bleu --input hypotheses.jsonl --compat nltk --smoothing method1 --json")]
pub struct BleuArgs {
    /// JSON Lines file: {"id": ..., "hypothesis": "text", "references": ["text", ...]} per line;
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["results", "annotations"])]
    input: Option<PathBuf>,

    /// A trained run (its best checkpoint) or a checkpoint folder: caption the --split of --data
    /// and score it (spaCy-rule tokens; BLEU-1..4 with the --compat library's arithmetic and
    /// --smoothing, pycocoevalcap's by default). Writes results.json (COCO results format),
    /// captions.jsonl (per image, with BLEU) and metrics.json to --out.
    #[arg(long, value_name = "RUN", requires = "data", conflicts_with_all = ["input", "results"])]
    checkpoint: Option<PathBuf>,

    /// The prepared dataset to caption (with --checkpoint).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// The split to caption (with --checkpoint).
    #[arg(long, default_value = "test")]
    split: Split,

    /// Decoding (with --checkpoint).
    #[command(flatten)]
    decoding: DecodingArgs,

    /// Where to write the captions and scores (with --checkpoint; default: RUN/eval-SPLIT).
    #[arg(long, value_name = "DIR", requires = "checkpoint")]
    out: Option<PathBuf>,

    /// Also write a self-contained HTML page: what made it (checkpoint, decoding, metric
    /// profile, date), the metric table, the run's training curves, and every image of the split
    /// with its generated and reference captions and per-image BLEU-1..4, CIDEr-D and ROUGE-L,
    /// sortable (worst or best first) and filterable (text, metric range) in the page (with
    /// --checkpoint). Only a new file or an earlier report is written; never a run's or dataset's
    /// own files.
    #[arg(long, value_name = "FILE.html", requires = "checkpoint")]
    report: Option<PathBuf>,

    /// `auto`, `cpu`, `cuda` or `cuda:N` (with --checkpoint).
    #[arg(long, default_value = "auto")]
    device: String,

    /// COCO results file: [{"image_id": ..., "caption": "..."}, ...].
    #[arg(long, value_name = "FILE.json", requires = "annotations")]
    results: Option<PathBuf>,

    /// COCO captions annotations file (captions_*.json) holding the references.
    #[arg(long, value_name = "FILE.json", requires = "results")]
    annotations: Option<PathBuf>,

    /// How captions become tokens: `none` splits on whitespace; `spacy` uses the project's
    /// spaCy-rule tokenizer, lowercased.
    #[arg(long, value_enum, default_value_t = Tokenize::None)]
    tokenize: Tokenize,

    /// Whose BLEU arithmetic to reproduce: coco (pycocoevalcap 1.2), nltk (nltk 3.10) or
    /// sacrebleu (sacrebleu 2.6).
    #[arg(long, value_name = "coco|nltk|sacrebleu", default_value = "coco", value_parser = str::parse::<Compat>)]
    compat: Compat,

    /// Smoothing: nltk `method0`..`method7` (default method0); sacrebleu `none`, `floor[:V]`,
    /// `add-k[:V]`, `exp` (default exp); coco has none.
    #[arg(long, value_name = "NAME")]
    smoothing: Option<String>,

    /// Largest n-gram order: BLEU-1..N.
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_order: usize,

    /// Metrics to compute, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "bleu")]
    metrics: Vec<Metric>,

    /// Print one JSON object (scores on a 0–1 scale) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Tokenize {
    /// Split on whitespace.
    None,
    /// spaCy English rules, lowercased (caption-text).
    Spacy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Metric {
    /// BLEU-1..N.
    Bleu,
    /// CIDEr-D.
    Cider,
    /// ROUGE-L.
    Rouge,
}

/// Runs `cargo xtask bleu`.
pub fn run(args: &BleuArgs) -> Result<()> {
    let compat = args.compat;
    if let Some(checkpoint) = &args.checkpoint {
        // BLEU-1..4 with the library's arithmetic and smoothing (--max-order does not apply).
        let bleu = Bleu::from_names(compat, args.smoothing.as_deref())?;
        return run_checkpoint(args, checkpoint, bleu);
    }
    let bleu = Bleu::from_names(compat, args.smoothing.as_deref())?.with_max_order(args.max_order);
    let set = read_inputs(args)?;
    if set.unscored_annotations > 0 && !args.json {
        eprintln!(
            "note: {} annotated image(s) have no result and are not scored (pycocoevalcap scores result images only)",
            set.unscored_annotations
        );
    }
    let tokenization = match args.tokenize {
        Tokenize::None => Tokenization::Whitespace,
        Tokenize::Spacy => Tokenization::Spacy,
    };
    let corpus = scored_files::corpus(&set, tokenization)?;
    let wants = |m: Metric| args.metrics.contains(&m);
    let report =
        CorpusReport::score(&corpus, wants(Metric::Bleu).then_some(&bleu), wants(Metric::Cider), wants(Metric::Rouge))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(())
}

fn run_checkpoint(args: &BleuArgs, checkpoint: &Path, bleu: Bleu) -> Result<()> {
    let data = args.data.as_ref().context("--checkpoint needs --data")?;
    let decoding = args.decoding.decoding(false)?;
    let out =
        args.out.clone().unwrap_or_else(|| caption_infer::run_layout::evaluation_dir(checkpoint, args.split.name()));
    // Checked before minutes of captioning: what is written never replaces what is read.
    let inputs = [checkpoint, data.as_path()];
    caption_data::refuse_output_over_inputs(&out, &inputs)?;
    outputs::claim_folder_place(&out, outputs::FolderKind::Evaluation)?;
    claim_eval_folder(&out)?;
    if let Some(report) = &args.report {
        let claim = Claim { inputs: &inputs, folders: &[&out], runs: &[] };
        claim_output_file(report, &outputs::HTML_REPORT, &claim)?;
    }
    let dataset = PreparedDataset::open(data)?;
    let device = caption_model::parse_device(&args.device)?;
    let captioner = Captioner::from_run_or_checkpoint(checkpoint, &device)?;
    let bars = Bars::new(args.json);
    let mut captions = caption_split(&captioner, &dataset, args.split, decoding, &bars)?;
    captions.bleu = bleu;
    let scores = captions.scores()?;
    let decoding_name = args.decoding.name();
    let paths = captions.write(&out, &scores, json!({"split": args.split.name(), "decoding": decoding_name}))?;
    if let Some(report_path) = &args.report {
        report::write(
            report_path,
            &report::Page {
                title: format!("{} — {} split", dataset.manifest.name, args.split),
                provenance: report::Provenance {
                    checkpoint: captioner.source.clone(),
                    decoding,
                    profile: captions.metric_profile(),
                    split: args.split.to_string(),
                },
                dataset: &dataset,
                captions: &captions,
                scores: &scores,
                extra_rows: Vec::new(),
                plots: caption_train::plots::plot_files(checkpoint),
                attribute_hits: None,
            },
        )?;
    }
    if args.json {
        println!("{}", std::fs::read_to_string(&paths[2])?.replace('\n', ""));
    } else {
        evaluate::print_scores(
            &format!(
                "{} images of {} ({decoding_name}; {})",
                captions.ids.len(),
                args.split,
                captions.metric_profile()
            ),
            &scores,
        );
        for path in &paths {
            println!("wrote {}", path.display());
        }
        if let Some(report_path) = &args.report {
            println!("wrote {}", report_path.display());
        }
    }
    Ok(())
}

fn read_inputs(args: &BleuArgs) -> Result<EvalSet> {
    match (&args.input, &args.results, &args.annotations) {
        (Some(input), _, _) => Ok(scored_files::read_jsonl(input, std::io::stdin().lock())?),
        (None, Some(results), Some(annotations)) => Ok(scored_files::read_coco_pair(results, annotations)?),
        _ => bail!(
            "say what to score, one of: --input FILE.jsonl (hypotheses with their references); --results \
             FILE.json --annotations FILE.json (pycocoevalcap's pair); --checkpoint RUN --data DIR (caption a \
             prepared dataset's split with a trained model and score it). See `cargo xtask bleu --help`"
        ),
    }
}
