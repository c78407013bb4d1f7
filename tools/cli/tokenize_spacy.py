#!/usr/bin/env python3
"""What `cargo xtask tokenize --lower FILE` does, in Python: one JSON array of spaCy's tokens
(`spacy.blank("en").tokenizer`, lowercased, whitespace tokens included) per input line, on
standard output.

Usage: tools/.venv/bin/python tools/cli/tokenize_spacy.py FILE
"""

import json
import sys

import spacy


def main():
    tokenizer = spacy.blank("en").tokenizer
    out = sys.stdout
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            out.write(json.dumps([t.text.lower() for t in tokenizer(line)], ensure_ascii=False, separators=(",", ":")))
            out.write("\n")


if __name__ == "__main__":
    main()
