#!/usr/bin/env python3
"""spaCy's tokenizer throughput on the input crates/caption-text/benches/tokenize.rs uses.

The Flickr8k captions three times over (1.44 M tokens), `spacy.blank("en").tokenizer` on each,
one thread; best of --repeat passes after one warm-up pass (spaCy caches chunks as we do).
Prints one JSON object.

Usage: tools/.venv/bin/python tools/text/bench_spacy.py
"""

import argparse
import csv
import json
import time
from pathlib import Path

import spacy

ROOT = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with open(Path(args.shared) / "data" / "flickr8k" / "captions.txt", newline="", encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f)] * 3
    tokenizer = spacy.blank("en").tokenizer
    tokens = sum(len(tokenizer(c)) for c in captions)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        for c in captions:
            tokenizer(c)
        best = min(best, time.perf_counter() - start)
    lower = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        for c in captions:
            [tok.text.lower() for tok in tokenizer(c)]
        lower = min(lower, time.perf_counter() - start)
    print(json.dumps({"spacy": spacy.__version__, "captions": len(captions), "tokens": tokens,
                      "seconds": best, "tokens_per_second": tokens / best,
                      "lowercase_words_seconds": lower, "lowercase_words_tokens_per_second": tokens / lower}))


if __name__ == "__main__":
    main()
