#!/usr/bin/env python3
"""The caption lengths of 40 training batches as a Flickr8k epoch meets them, for the benchmarks.

Writes tools/train/flickr8k_epoch_lengths.json: 40 batches of 32 `<SOS> … <EOS>` lengths (spaCy's
English tokens + 2, as the original's loader counts them) from a `random.Random(0)` shuffle of all
40,455 captions of ../shared/data/flickr8k/captions.txt. Each batch is padded to its own longest
caption, as the original's `MyCollate` pads. Read by `bench_train_torch.py` and by caption-train's
`train_bench` example, so both time the same batches.

Usage: tools/.venv/bin/python tools/train/generate_epoch_lengths.py [--shared ../shared]
"""

import argparse
import csv
import json
import random
from pathlib import Path

import spacy

ROOT = Path(__file__).resolve().parents[2]
BATCHES, BATCH = 40, 32


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = parser.parse_args()
    with open(Path(args.shared) / "data" / "flickr8k" / "captions.txt", newline="", encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f)]
    tokenizer = spacy.blank("en").tokenizer
    lengths = [len(tokenizer(caption)) + 2 for caption in captions]
    random.Random(0).shuffle(lengths)
    batches = [lengths[k * BATCH:(k + 1) * BATCH] for k in range(BATCHES)]
    pad_share = 1 - sum(map(sum, batches)) / sum(max(b) * BATCH for b in batches)
    out = {
        "source": "Flickr8k captions.txt, random.Random(0) shuffle, spaCy tokens + 2",
        "spacy": spacy.__version__,
        "pad_share": round(pad_share, 4),
        "batches": batches,
    }
    path = ROOT / "tools" / "train" / "flickr8k_epoch_lengths.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"{path}: {BATCHES} batches of {BATCH}, {pad_share:.1%} of the padded targets are PAD")


if __name__ == "__main__":
    main()
