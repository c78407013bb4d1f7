#!/usr/bin/env python3
"""What `cargo xtask vocab captions.txt --ordering seed --out OUT` does, in Python: the PyTorch
original's data code reads Kaggle's captions.txt with pandas and builds its `Vocabulary`
(spaCy tokens, lowercased, threshold 5, ids in the order words reach it); the vocabulary is
written as JSON (stoi).

Usage: tools/.venv/bin/python tools/cli/vocab_original.py captions.txt OUT.json
"""

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from original_loader import Vocabulary  # noqa: E402


def main():
    df = pd.read_csv(sys.argv[1])
    vocab = Vocabulary(5)
    vocab.build_vocabulary(df["caption"].tolist())
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(vocab.stoi, f, ensure_ascii=False)
    print(f"{len(df)} captions, vocabulary {len(vocab.stoi)} ids")


if __name__ == "__main__":
    main()
