#!/usr/bin/env python3
"""Checks that a tokenizer.json written by `cargo xtask vocab` loads in Python's `tokenizers` and
gives the PyTorch original's ids.

Loads FILE with tokenizers.Tokenizer.from_file, encodes every Flickr8k caption pre-tokenized by
spaCy (lowercased) and compares with the original's numericalize: [<SOS>] + stoi (or <UNK>) + [<EOS>],
stoi built by the original's build_vocabulary at threshold 5.

Usage: tools/.venv/bin/python tools/text/check_tokenizer_json.py tokenizer.json [--shared ../shared]
"""

import argparse
import csv
from pathlib import Path

import spacy
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tokenizer_json")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = parser.parse_args()
    hf = Tokenizer.from_file(args.tokenizer_json)
    spacy_eng = spacy.blank("en").tokenizer
    with open(Path(args.shared) / "data" / "flickr8k" / "captions.txt", newline="", encoding="utf-8") as f:
        captions = [row["caption"] for row in csv.DictReader(f)]
    words = [[tok.text.lower() for tok in spacy_eng(c)] for c in captions]
    stoi = {"<PAD>": 0, "<SOS>": 1, "<EOS>": 2, "<UNK>": 3}
    frequencies = {}
    for sentence in words:
        for word in sentence:
            frequencies[word] = frequencies.get(word, 0) + 1
            if frequencies[word] == 5:
                stoi[word] = len(stoi)
    assert hf.get_vocab_size() == len(stoi), (hf.get_vocab_size(), len(stoi))
    mismatches = 0
    for sentence in words:
        # Whitespace tokens cannot pass through a whitespace pre-tokenizer; the original keeps them.
        if any(w.isspace() for w in sentence):
            continue
        expected = [1] + [stoi.get(w, 3) for w in sentence] + [2]
        if hf.encode(sentence, is_pretokenized=True).ids != expected:
            mismatches += 1
    print(f"{args.tokenizer_json}: {hf.get_vocab_size()} ids; {len(words)} captions, {mismatches} mismatches")
    raise SystemExit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
