//! `cargo xtask bleu`: score caption files.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use caption_metrics::formats::{self, EvalSet};
use caption_metrics::{Bleu, BleuScore, CiderD, CiderScore, Compat, Corpus, RougeL, RougeScore};
use caption_text::Tokenizer;
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

/// Score captions against references.
///
/// Inputs are either JSON Lines (`--input`, one `{"id", "hypothesis", "references"}` object per
/// line) or pycocoevalcap's pair of files (`--results` with `--annotations`). BLEU follows the
/// arithmetic of the library named by `--compat`, to the last digit: `coco` (pycocoevalcap 1.2, what
/// captioning papers report), `nltk` (3.10 corpus_bleu) or `sacrebleu` (2.6, tokenize='none').
/// CIDEr-D and ROUGE-L are pycocoevalcap's.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  cargo xtask bleu --input captions.jsonl\n  cargo xtask bleu --results results.json --annotations captions_val2017.json --metrics bleu,cider,rouge\n  cargo xtask bleu --input captions.jsonl --compat nltk --smoothing method1 --json"
)]
pub struct BleuArgs {
    /// JSON Lines file: {"id": ..., "hypothesis": "text", "references": ["text", ...]} per line.
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["results", "annotations"], required_unless_present = "results")]
    input: Option<PathBuf>,

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

    /// Whose BLEU arithmetic to reproduce.
    #[arg(long, value_enum, default_value_t = CompatArg::Coco)]
    compat: CompatArg,

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
enum CompatArg {
    /// pycocoevalcap 1.2.
    Coco,
    /// nltk 3.10.
    Nltk,
    /// sacrebleu 2.6.
    Sacrebleu,
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

/// Every metric asked for.
struct Report {
    segments: usize,
    bleu: Option<BleuScore>,
    cider: Option<CiderScore>,
    rouge: Option<RougeScore>,
}

/// Runs `cargo xtask bleu`.
pub fn run(args: &BleuArgs) -> Result<()> {
    let compat = match args.compat {
        CompatArg::Coco => Compat::Coco,
        CompatArg::Nltk => Compat::Nltk,
        CompatArg::Sacrebleu => Compat::Sacrebleu,
    };
    let bleu = Bleu::from_names(compat, args.smoothing.as_deref())?.with_max_order(args.max_order);
    let set = read_inputs(args)?;
    if set.unscored_annotations > 0 && !args.json {
        eprintln!(
            "note: {} annotated image(s) have no result and are not scored (pycocoevalcap scores result images only)",
            set.unscored_annotations
        );
    }
    let corpus = tokenize(&set, args.tokenize)?;
    let wants = |m: Metric| args.metrics.contains(&m);
    let report = Report {
        segments: corpus.len(),
        bleu: wants(Metric::Bleu).then(|| bleu.corpus(&corpus)).transpose()?,
        cider: wants(Metric::Cider).then(|| CiderD::default().score(&corpus)).transpose()?,
        rouge: wants(Metric::Rouge).then(|| RougeL::default().score(&corpus)),
    };
    if args.json {
        println!("{}", serde_json::to_string(&to_json(&report))?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn read_inputs(args: &BleuArgs) -> Result<EvalSet> {
    if let Some(input) = &args.input {
        let file = fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
        return Ok(formats::read_jsonl(BufReader::new(file), &input.display().to_string())?);
    }
    let (Some(results), Some(annotations)) = (&args.results, &args.annotations) else {
        bail!("give --input FILE.jsonl, or --results with --annotations");
    };
    let read = |path: &Path| fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    Ok(formats::read_coco(
        &read(results)?,
        &results.display().to_string(),
        &read(annotations)?,
        &annotations.display().to_string(),
    )?)
}

fn tokenize(set: &EvalSet, tokenize: Tokenize) -> Result<Corpus> {
    match tokenize {
        Tokenize::None => Ok(Corpus::from_whitespace_text(&set.hypotheses, &set.references)?),
        Tokenize::Spacy => {
            let tokenizer = Tokenizer::english();
            let hypotheses = tokenizer.lowercase_words_batch(&set.hypotheses);
            let references: Vec<Vec<Vec<String>>> =
                set.references.iter().map(|refs| tokenizer.lowercase_words_batch(refs)).collect();
            Ok(Corpus::new(&hypotheses, &references)?)
        }
    }
}

fn to_json(report: &Report) -> Value {
    let mut object = Map::new();
    object.insert("segments".into(), json!(report.segments));
    if let Some(bleu) = &report.bleu {
        for (n, score) in bleu.bleu.iter().enumerate() {
            object.insert(format!("bleu_{}", n + 1), json!(score));
        }
        object.insert("brevity_penalty".into(), json!(bleu.brevity_penalty));
        object.insert("precisions".into(), json!(bleu.precisions));
        object.insert("hyp_len".into(), json!(bleu.hyp_len));
        object.insert("ref_len".into(), json!(bleu.ref_len));
        object.insert("compat".into(), json!(bleu.compat));
        object.insert("smoothing".into(), json!(bleu.smoothing));
        if let Some(sacrebleu) = &bleu.sacrebleu {
            object.insert("sacrebleu".into(), json!(sacrebleu));
        }
    }
    if let Some(cider) = &report.cider {
        object.insert("cider".into(), json!(cider.score));
    }
    if let Some(rouge) = &report.rouge {
        object.insert("rouge_l".into(), json!(rouge.score));
    }
    Value::Object(object)
}

fn print_table(report: &Report) {
    println!("{} segments", report.segments);
    if let Some(bleu) = &report.bleu {
        println!("BLEU ({} profile, smoothing {})", bleu.compat, bleu.smoothing);
        for (n, (score, precision)) in bleu.bleu.iter().zip(&bleu.precisions).enumerate() {
            println!("  BLEU-{:<2} {:>8.4}   precision {:.4}", n + 1, score, precision);
        }
        println!(
            "  brevity penalty {:.4}  (hypothesis {} tokens, reference {} tokens)",
            bleu.brevity_penalty, bleu.hyp_len, bleu.ref_len
        );
        if let Some(sacrebleu) = &bleu.sacrebleu {
            println!("  sacrebleu: {}", sacrebleu.formatted);
            println!("  signature: {}", sacrebleu.signature);
        }
    }
    if let Some(cider) = &report.cider {
        println!("CIDEr-D  {:>8.4}", cider.score);
    }
    if let Some(rouge) = &report.rouge {
        println!("ROUGE-L  {:>8.4}", rouge.score);
    }
}
