#!/usr/bin/env python3
"""What `cargo xtask vocab captions.txt --ordering seed --out OUT` does, in Python: the PyTorch
original's data code reads Kaggle's captions.txt with pandas and builds its `Vocabulary`
(spaCy tokens, lowercased, threshold 5, ids in the order words reach it); the vocabulary is
written as JSON (stoi).

Usage: tools/.venv/bin/python tools/cli/vocab_original.py captions.txt OUT.json
"""

import json
import sys

import pandas as pd
import spacy

spacy_eng = spacy.blank("en")


class Vocabulary:
    # The original's (get_loader.py), as tools/data/generate_batch_fixture.py runs it.
    def __init__(self, freq_threshold):
        self.itos = {0: "<PAD>", 1: "<SOS>", 2: "<EOS>", 3: "<UNK>"}
        self.stoi = {"<PAD>": 0, "<SOS>": 1, "<EOS>": 2, "<UNK>": 3}
        self.freq_threshold = freq_threshold

    @staticmethod
    def tokenizer_eng(text):
        return [tok.text.lower() for tok in spacy_eng.tokenizer(text)]

    def build_vocabulary(self, sentence_list):
        frequencies = {}
        idx = 4
        for sentence in sentence_list:
            for word in self.tokenizer_eng(sentence):
                if word not in frequencies:
                    frequencies[word] = 1
                else:
                    frequencies[word] += 1
                if frequencies[word] == self.freq_threshold:
                    self.stoi[word] = idx
                    self.itos[idx] = word
                    idx += 1


def main():
    df = pd.read_csv(sys.argv[1])
    vocab = Vocabulary(5)
    vocab.build_vocabulary(df["caption"].tolist())
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(vocab.stoi, f, ensure_ascii=False)
    print(f"{len(df)} captions, vocabulary {len(vocab.stoi)} ids")


if __name__ == "__main__":
    main()
