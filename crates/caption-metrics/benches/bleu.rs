//! BLEU / CIDEr-D / ROUGE-L speed on 5,000 hypotheses × 5 references of caption length.
//!
//! The corpus is built from the real Flickr8k captions (`../shared/data/flickr8k/captions.txt`),
//! exactly as `tools/metrics/bench_python.py` builds it for nltk, sacrebleu and pycocoevalcap:
//! hypothesis i is image i's first caption; its references are the image's other four captions and
//! the next image's first caption. Lowercased, split on whitespace. Single-threaded.
//! `tools/metrics/bench_compare.py` runs both and writes the comparison table.

use std::hint::black_box;
use std::path::Path;

use caption_metrics::{Bleu, CiderD, Corpus, NltkSmoothing, RougeL, SacrebleuSmoothing};
use criterion::{Criterion, criterion_group, criterion_main};

/// Number of hypotheses scored.
const SEGMENTS: usize = 5000;

/// (hypotheses, references) as whitespace-split lowercase captions.
fn flickr8k_corpus() -> (Vec<Vec<String>>, Vec<Vec<Vec<String>>>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/flickr8k/captions.txt");
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut images: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for row in reader.records() {
        let row = row.expect("valid CSV");
        let tokens: Vec<String> = row[1].to_lowercase().split_whitespace().map(str::to_string).collect();
        match images.last_mut() {
            Some((image, captions)) if image == &row[0] => captions.push(tokens),
            _ => images.push((row[0].to_string(), vec![tokens])),
        }
    }
    let hyps = images[..SEGMENTS].iter().map(|(_, c)| c[0].clone()).collect();
    let refs = (0..SEGMENTS)
        .map(|i| {
            let mut refs = images[i].1[1..5].to_vec();
            refs.push(images[i + 1].1[0].clone());
            refs
        })
        .collect();
    (hyps, refs)
}

fn benches(c: &mut Criterion) {
    let (hyps, refs) = flickr8k_corpus();
    let hyp_tokens: Vec<Vec<&str>> = hyps.iter().map(|h| h.iter().map(String::as_str).collect()).collect();
    let ref_tokens: Vec<Vec<Vec<&str>>> =
        refs.iter().map(|rs| rs.iter().map(|r| r.iter().map(String::as_str).collect()).collect()).collect();
    let corpus = Corpus::new(&hyp_tokens, &ref_tokens).unwrap();

    let mut group = c.benchmark_group("5000x5");
    let profiles = [
        ("coco", Bleu::coco()),
        ("nltk", Bleu::nltk(NltkSmoothing::default())),
        ("sacrebleu", Bleu::sacrebleu(SacrebleuSmoothing::Exp)),
    ];
    for (name, bleu) in &profiles {
        // From token strings to BLEU-1..4: interning included, as the Python libraries hash strings.
        group.bench_function(format!("bleu_1_4_{name}_from_tokens"), |b| {
            b.iter(|| {
                let corpus = Corpus::new(black_box(&hyp_tokens), black_box(&ref_tokens)).unwrap();
                bleu.corpus(&corpus).unwrap()
            })
        });
    }
    group.bench_function("bleu_1_4_coco_prepared_corpus", |b| {
        b.iter(|| Bleu::coco().corpus(black_box(&corpus)).unwrap())
    });
    group.bench_function("corpus_from_tokens", |b| {
        b.iter(|| Corpus::new(black_box(&hyp_tokens), black_box(&ref_tokens)).unwrap())
    });
    group.bench_function("cider_d", |b| b.iter(|| CiderD::default().score(black_box(&corpus)).unwrap()));
    group.bench_function("rouge_l", |b| b.iter(|| RougeL::default().score(black_box(&corpus))));
    group.finish();
}

criterion_group!(bleu, benches);
criterion_main!(bleu);
