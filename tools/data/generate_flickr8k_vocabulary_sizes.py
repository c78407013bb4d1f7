#!/usr/bin/env python3
"""Flickr8k's vocabulary sizes as the PyTorch original builds a vocabulary (spaCy's English
tokenizer, `tok.text.lower()`, a word enters when its count reaches the threshold, plus the four
specials <PAD> <SOS> <EOS> <UNK>), on the real caption files in ../shared/data/flickr8k:

- seed_compatible: over all 40,455 captions of Kaggle's captions.txt (what the original does);
- train_only: over the captions of the 6,000 official training images (Flickr8k.token.txt +
  Flickr_8k.trainImages.txt), what `prepare-data` builds by default.

Writes crates/caption-data/tests/fixtures/flickr8k_vocabulary_sizes.json, which
crates/caption-data/tests/flickr8k_files.rs checks `prepare` against.
Usage: tools/.venv/bin/python tools/data/generate_flickr8k_vocabulary_sizes.py
"""

import csv
import json
import os
from collections import Counter

import spacy

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DATA = os.path.join(ROOT, "..", "shared", "data", "flickr8k")
OUT = os.path.join(ROOT, "crates", "caption-data", "tests", "fixtures", "flickr8k_vocabulary_sizes.json")
THRESHOLD = 5


def size(captions, tokenizer):
    counts = Counter()
    words = set()
    for caption in captions:
        for token in tokenizer(caption):
            word = token.text.lower()
            counts[word] += 1
            if counts[word] == THRESHOLD:
                words.add(word)
    return 4 + len(words)


def main():
    tokenizer = spacy.blank("en").tokenizer
    with open(os.path.join(DATA, "captions.txt"), newline="", encoding="utf-8") as f:
        kaggle = [row["caption"] for row in csv.DictReader(f)]
    with open(os.path.join(DATA, "Flickr_8k.trainImages.txt"), encoding="utf-8") as f:
        train_images = {line.strip() for line in f if line.strip()}
    train = []
    with open(os.path.join(DATA, "Flickr8k.token.txt"), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            name, caption = line.rstrip("\n").split("\t", 1)
            if name.rsplit("#", 1)[0] in train_images:
                train.append(caption)
    result = {
        "spacy": spacy.__version__,
        "threshold": THRESHOLD,
        "seed_compatible": {"captions": len(kaggle), "size": size(kaggle, tokenizer)},
        "train_only": {"images": len(train_images), "captions": len(train), "size": size(train, tokenizer)},
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
