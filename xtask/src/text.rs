//! `cargo xtask tokenize` and `cargo xtask vocab`.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use caption_data::sources::read_captions_file;
use caption_text::{Ordering, Tokenizer, Vocabulary};
use clap::{Args, ValueEnum};

/// Tokenize lines with spaCy's English rules.
///
/// Reads lines from FILE (or standard input) and prints one JSON array of token strings per line,
/// in order, exactly as `spacy.blank("en").tokenizer` splits them: whitespace tokens included
/// (`"a  b"` gives `["a", " ", "b"]`). Line endings (LF or CRLF) are not part of the line.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  echo \"I can't go to the U.S.\" | cargo xtask tokenize --lower")]
pub struct TokenizeArgs {
    /// Lowercase each token as the original does (`tok.text.lower()`).
    #[arg(long)]
    lower: bool,
    /// Input file; standard input when absent.
    file: Option<PathBuf>,
}

/// Build a caption vocabulary and save it as a Hugging Face tokenizer.json.
///
/// Captions are tokenized with spaCy's English rules and lowercased, then words seen at least
/// THRESHOLD times get ids after `<PAD>`=0, `<SOS>`=1, `<EOS>`=2, `<UNK>`=3. With `--ordering original` (the default; `seed` is its old name) the ids
/// are exactly those of the PyTorch original (a word gets the next id when its count first reaches
/// the threshold, scanning captions in file order), so its checkpoints can be used with the result.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  cargo xtask vocab crates/caption-data/tests/fixtures/captions_200.txt --out runs/tokenizer.json
  cargo xtask vocab captions.txt --ordering frequency --threshold 3 --out tokenizer.json")]
pub struct VocabArgs {
    /// Captions file: Kaggle captions.txt, Flickr8k.token.txt, Karpathy or COCO captions JSON, or
    /// one caption per line (the layout is recognised from the content).
    captions: PathBuf,
    /// How ids are assigned.
    #[arg(long, value_enum, default_value_t = OrderingArg::Original)]
    ordering: OrderingArg,
    /// Minimum count for a word to get an id.
    #[arg(long, default_value_t = 5)]
    threshold: usize,
    /// Where to write tokenizer.json.
    #[arg(long, value_name = "tokenizer.json")]
    out: PathBuf,
    /// How many of the most frequent words to show.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OrderingArg {
    /// The original's ids: order in which words reach the threshold (also spelled `seed`, its
    /// name before).
    #[value(alias = "seed")]
    Original,
    /// Most frequent first, ties by word.
    Frequency,
}

/// Lines tokenized per parallel batch.
const BATCH: usize = 8192;

/// Runs `cargo xtask tokenize`.
pub fn tokenize(args: &TokenizeArgs) -> Result<()> {
    let mut bytes = Vec::new();
    let source = match &args.file {
        Some(path) => {
            bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            path.display().to_string()
        }
        None => {
            std::io::stdin().read_to_end(&mut bytes).context("cannot read standard input")?;
            "<stdin>".to_string()
        }
    };
    let mut lines: Vec<&str> = Vec::new();
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if !bytes.is_empty() {
        for (index, line) in body.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match std::str::from_utf8(line) {
                Ok(text) => lines.push(text),
                Err(e) => bail!("{source}:{}: not UTF-8: {e}", index + 1),
            }
        }
    }
    let tokenizer = Tokenizer::english();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for batch in lines.chunks(BATCH) {
        for tokens in tokenizer.tokenize_batch(batch) {
            let texts: Vec<String> =
                tokens.iter().map(|t| if args.lower { t.lower() } else { t.text.to_string() }).collect();
            serde_json::to_writer(&mut out, &texts).context("standard output")?;
            out.write_all(b"\n").context("standard output")?;
        }
    }
    out.flush().context("standard output")?;
    Ok(())
}

/// Runs `cargo xtask vocab`.
pub fn vocab(args: &VocabArgs) -> Result<()> {
    caption_data::refuse_output_over_inputs(&args.out, &[&args.captions])?;
    let records = read_captions_file(&args.captions)?;
    let captions: Vec<&str> = records.iter().map(|r| r.caption.as_str()).collect();
    let tokenizer = Tokenizer::english();
    let words = tokenizer.lowercase_words_batch(&captions);
    let ordering = match args.ordering {
        OrderingArg::Original => Ordering::Original,
        OrderingArg::Frequency => Ordering::Frequency,
    };
    let vocabulary =
        Vocabulary::build(&words, args.threshold, ordering)?.with_tokenizer_rules(tokenizer.rules_version());
    vocabulary.save(&args.out)?;

    let tokens: usize = words.iter().map(Vec::len).sum();
    let distinct: std::collections::HashSet<&String> = words.iter().flatten().collect();
    println!(
        "{} captions, {tokens} tokens, {} distinct words (spaCy English rules, lowercased)",
        captions.len(),
        distinct.len()
    );
    println!(
        "vocabulary: {} ids = 4 specials + {} words seen at least {} times; ordering {}",
        vocabulary.len(),
        vocabulary.len() - 4,
        args.threshold,
        ordering
    );
    let mut by_count: Vec<u32> = (4..vocabulary.len() as u32).collect();
    by_count.sort_by(|&a, &b| vocabulary.count(b).cmp(&vocabulary.count(a)).then(a.cmp(&b)));
    println!("most frequent words (id: word × count):");
    for &id in by_count.iter().take(args.top) {
        println!("  {id:>5}: {:?} × {}", vocabulary.word(id).unwrap_or_default(), vocabulary.count(id));
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
