//! `cargo xtask tokenize` and `cargo xtask vocab`.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use caption_data::sources::read_captions_file;
use caption_text::{Ordering, Tokenizer, Vocabulary};
use caption_train::outputs::{self, Claim, claim_output_file};
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
    /// Input file (a regular file); standard input when absent or `-`. Lines of up to 1 MiB,
    /// UTF-8; a byte order mark at the start is dropped.
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

/// Longest line `tokenize` reads (a caption is a few hundred bytes).
const MAX_LINE_BYTES: usize = 1 << 20;

/// Runs `cargo xtask tokenize`: lines are read, tokenized and printed a batch at a time, so
/// memory stays bounded whatever the input's length.
pub fn tokenize(args: &TokenizeArgs) -> Result<()> {
    let (reader, source): (Box<dyn BufRead>, String) = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file =
                caption_data::open_input_file(path).with_context(|| format!("cannot read {}", path.display()))?;
            (Box::new(BufReader::new(file)), path.display().to_string())
        }
        _ => (Box::new(std::io::stdin().lock()), "<stdin>".to_string()),
    };
    let mut lines = caption_data::BoundedLines::new(reader, MAX_LINE_BYTES);
    let tokenizer = Tokenizer::english();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut batch: Vec<String> = Vec::with_capacity(BATCH);
    loop {
        let line = match lines.next_line().with_context(|| source.clone())? {
            Some((number, bytes)) => {
                // A byte order mark is no part of the first line's text.
                let bytes = if number == 1 { bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes) } else { bytes };
                let text = std::str::from_utf8(bytes).map_err(|e| anyhow!("{source}:{number}: not UTF-8: {e}"))?;
                Some(text.to_owned())
            }
            None => None,
        };
        let end = line.is_none();
        batch.extend(line);
        if batch.len() == BATCH || (end && !batch.is_empty()) {
            let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
            for tokens in tokenizer.tokenize_batch(&texts) {
                let texts: Vec<String> =
                    tokens.iter().map(|t| if args.lower { t.lower() } else { t.text.to_string() }).collect();
                serde_json::to_writer(&mut out, &texts).context("standard output")?;
                out.write_all(b"\n").context("standard output")?;
            }
            batch.clear();
        }
        if end {
            break;
        }
    }
    out.flush().context("standard output")?;
    Ok(())
}

/// Runs `cargo xtask vocab`.
pub fn vocab(args: &VocabArgs) -> Result<()> {
    let claim = Claim { inputs: &[&args.captions], ..Claim::default() };
    claim_output_file(&args.out, &outputs::TOKENIZER_JSON, &claim)?;
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
