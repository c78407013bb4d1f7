//! Tokenizer throughput on the Flickr8k captions (40,455 captions, three passes: 1.44 M tokens),
//! single-threaded and on all threads. `*_one_thread` drop each caption's tokens at once;
//! `collect` and `batch` keep them all, as `tokenize_batch` returns them. `tools/text/bench_spacy.py` times spaCy on the same input.

use std::hint::black_box;
use std::path::Path;

use caption_text::Tokenizer;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn captions() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/flickr8k/captions.txt");
    let one: Vec<String> = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    one.iter().cycle().take(one.len() * 3).cloned().collect()
}

fn benches(c: &mut Criterion) {
    let captions = captions();
    let tokenizer = Tokenizer::english();
    let tokens: usize = captions.iter().map(|c| tokenizer.tokenize(c).len()).sum();
    let mut group = c.benchmark_group("flickr8k_x3");
    group.throughput(Throughput::Elements(tokens as u64));
    group.sample_size(20);
    group.bench_function("tokenize_one_thread", |b| {
        b.iter(|| captions.iter().map(|c| tokenizer.tokenize(black_box(c)).len()).sum::<usize>())
    });
    group.bench_function("tokenize_collect_one_thread", |b| {
        b.iter(|| captions.iter().map(|c| tokenizer.tokenize(black_box(c))).collect::<Vec<_>>())
    });
    group.bench_function("tokenize_batch_all_threads", |b| b.iter(|| tokenizer.tokenize_batch(black_box(&captions))));
    group.bench_function("lowercase_words_one_thread", |b| {
        b.iter(|| captions.iter().map(|c| tokenizer.lowercase_words(black_box(c)).len()).sum::<usize>())
    });
    group.bench_function("lowercase_words_batch_all_threads", |b| {
        b.iter(|| tokenizer.lowercase_words_batch(black_box(&captions)))
    });
    group.finish();
}

criterion_group!(tokenize, benches);
criterion_main!(tokenize);
