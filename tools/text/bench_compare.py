#!/usr/bin/env python3
"""Side-by-side tokenizer throughput: caption-text against spaCy, in one run.

Runs `cargo bench -p caption-text --bench tokenize` (criterion, median) and tools/text/bench_spacy.py
on the same input (the Flickr8k captions three times, 1.44 M tokens) back to back, then prints a
Markdown table for docs/benchmarks.md.

Usage: tools/.venv/bin/python tools/text/bench_compare.py
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rust_seconds(name):
    path = ROOT / "target" / "criterion" / "flickr8k_x3" / name / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1e9


def main():
    subprocess.run(
        ["cargo", "bench", "-p", "caption-text", "--bench", "tokenize", "--", "--warm-up-time", "2",
         "--measurement-time", "5"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    spacy = json.loads(subprocess.run([sys.executable, str(ROOT / "tools" / "text" / "bench_spacy.py")],
                                      cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    tokens = spacy["tokens"]
    rows = [
        ("tokenize, one thread", spacy["seconds"], "tokenize_one_thread"),
        ("tokenize, one thread, all tokens kept", spacy["seconds"], "tokenize_collect_one_thread"),
        ("tokenize_batch, all threads (rayon)", spacy["seconds"], "tokenize_batch_all_threads"),
        ("lowercased words, one thread", spacy["lowercase_words_seconds"], "lowercase_words_one_thread"),
        ("lowercased words, all threads", spacy["lowercase_words_seconds"], "lowercase_words_batch_all_threads"),
    ]
    print(f"{tokens:,} tokens; spaCy {spacy['spacy']} one thread, best of 3 after a warm-up pass.\n")
    print("| task | spaCy | caption-text | speed-up |")
    print("|---|---:|---:|---:|")
    for task, python_seconds, rust in rows:
        r = rust_seconds(rust)
        print(f"| {task} | {tokens / python_seconds / 1e6:.2f} M tokens/s | {tokens / r / 1e6:.2f} M tokens/s | "
              f"{python_seconds / r:.1f}× |")


if __name__ == "__main__":
    main()
