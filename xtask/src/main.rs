//! `cargo xtask`: the caption toolkit's command line. It parses arguments, shows progress and wires
//! the crates together; the work itself lives in the crates.

mod bleu;
mod caption;
mod data;
mod decoding;
mod demo;
mod evaluate;
mod model;
mod progress;
mod text;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The caption toolkit: prepare datasets, train the Inception v3 + LSTM captioner, caption images,
/// score captions (BLEU, CIDEr-D, ROUGE-L), tokenize, build vocabularies, convert PyTorch
/// checkpoints both ways, extract Inception v3 features. Start with `cargo xtask demo`.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline offline on a synthetic dataset: prepare, train, score, report.
    Demo(demo::DemoArgs),
    /// Prepare a dataset (shapes, Flickr8k, COCO, ...): splits, image checks, vocabulary, parquet.
    PrepareData(data::PrepareArgs),
    /// Train the Inception v3 + LSTM captioner (frozen features or the original's setup), with checkpoints.
    Train(train::TrainArgs),
    /// Caption images with a trained run, a checkpoint, or the PyTorch original's checkpoint.
    Caption(caption::CaptionArgs),
    /// Serve captions over HTTP: dynamic batching, a web page, health, metrics and limits.
    Serve(caption_serve::ServeFlags),
    /// Score captions with BLEU-1..4, CIDEr-D and ROUGE-L exactly as pycocoevalcap, nltk or sacrebleu do.
    Bleu(bleu::BleuArgs),
    /// Tokenize lines with spaCy's English rules; one JSON array of tokens per line.
    Tokenize(text::TokenizeArgs),
    /// Build a caption vocabulary (the original's ids with --ordering seed) as tokenizer.json.
    Vocab(text::VocabArgs),
    /// Convert the PyTorch original's my_checkpoint.pth.tar to safetensors.
    ImportCheckpoint(model::ImportArgs),
    /// Export a trained model for PyTorch: weights, config.json, vocabulary and a captioning script.
    Export(model::ExportArgs),
    /// Inception v3 pooled features (and ImageNet logits) for a preprocessed image tensor.
    Features(model::FeaturesArgs),
}

fn main() -> ExitCode {
    // Piped into `head`, a command should stop quietly, not panic on the closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // SAFETY: no other thread exists yet.
    unsafe {
        caption_model::pin_cpu_thread_count();
        // Errors are messages for people: no backtraces captured into them (candle's and
        // anyhow's follow RUST_BACKTRACE otherwise). Panics still show one with RUST_BACKTRACE.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::PrepareData(args) => data::prepare_data(&args).map(drop),
        Command::Train(args) => train::run(&args).and_then(|summary| match summary.interrupted {
            true => Err(Interrupted.into()),
            false => Ok(()),
        }),
        Command::Caption(args) => caption::run(&args),
        Command::Serve(args) => args.run().map_err(anyhow::Error::msg),
        Command::Bleu(args) => bleu::run(&args),
        Command::Tokenize(args) => text::tokenize(&args),
        Command::Vocab(args) => text::vocab(&args),
        Command::ImportCheckpoint(args) => model::import_checkpoint(&args),
        Command::Export(args) => model::export(&args),
        Command::Features(args) => model::features(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Stopped by Ctrl-C after saving: the status a shell gives a command ended by SIGINT.
        Err(error) if error.is::<Interrupted>() => ExitCode::from(130),
        Err(error) => {
            eprintln!("error: {}", message(&error));
            ExitCode::FAILURE
        }
    }
}

/// A run stopped by Ctrl-C, its checkpoint saved (exit status 130).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted: a checkpoint was saved; continue with --resume")
    }
}

impl std::error::Error for Interrupted {}

/// The cause chain on one line, each cause once: a cause whose text its parent already holds
/// (as `{0}` and `#[source]` both do in some libraries' errors) is not repeated.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}
