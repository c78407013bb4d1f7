#!/usr/bin/env python3
"""The PyTorch original's training batches, for caption-data's loader test.

Runs the original's data code (the captioning tutorial's get_loader.py: `Vocabulary`,
`FlickrDataset.__getitem__`'s `[<SOS>] + numericalize(caption) + [<EOS>]`, `MyCollate`'s
`pad_sequence(batch_first=False, padding_value=<PAD>)`) on the first 200 captions of Flickr8k's
captions.txt, without shuffling, and writes into crates/caption-data/tests/fixtures/:
- captions_200.txt: those captions (Kaggle layout, as read by pandas);
- original_batches.json: the vocabulary (`itos`), the threshold, the batch size and every padded
  batch, time-major (`batch[t][b]`), as the training loop receives them.

The original's Vocabulary and MyCollate come from original_loader.py beside this file (verbatim,
with `spacy.blank("en")` for `en_core_web_sm`: the same tokenizer rules, no model download).

Usage: tools/.venv/bin/python tools/data/generate_batch_fixture.py [--shared ../shared]
(needs tools/requirements.txt and torch from tools/requirements-torch.txt)
"""

import argparse
import json
from pathlib import Path

import pandas as pd
import torch
from original_loader import MyCollate, Vocabulary

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "caption-data" / "tests" / "fixtures"
CAPTIONS = 200
THRESHOLD = 3
BATCH_SIZE = 32


# --- the original's FlickrDataset (get_loader.py), verbatim but for the image loading ---
class FlickrDataset:
    def __init__(self, captions_file, freq_threshold=5):
        self.df = pd.read_csv(captions_file)
        self.imgs = self.df["image"]
        self.captions = self.df["caption"]
        self.vocab = Vocabulary(freq_threshold)
        self.vocab.build_vocabulary(self.captions.tolist())

    def __len__(self):
        return len(self.df)

    def __getitem__(self, index):
        caption = self.captions[index]
        numericalized_caption = [self.vocab.stoi["<SOS>"]]
        numericalized_caption += self.vocab.numericalize(caption)
        numericalized_caption.append(self.vocab.stoi["<EOS>"])
        return torch.tensor(numericalized_caption)


# --- end of the original's code ---


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = parser.parse_args()
    lines = (Path(args.shared) / "data" / "flickr8k" / "captions.txt").read_text().splitlines(keepends=True)
    OUT.mkdir(parents=True, exist_ok=True)
    captions_file = OUT / "captions_200.txt"
    captions_file.write_text("".join(lines[: CAPTIONS + 1]))

    dataset = FlickrDataset(captions_file, freq_threshold=THRESHOLD)
    collate = MyCollate(pad_idx=dataset.vocab.stoi["<PAD>"])
    batches = []
    for start in range(0, len(dataset), BATCH_SIZE):
        items = [dataset[i] for i in range(start, min(start + BATCH_SIZE, len(dataset)))]
        batches.append(collate(items).tolist())
    fixture = {
        "source": "first 200 captions of Flickr8k captions.txt; the original's get_loader.py",
        "threshold": THRESHOLD,
        "batch_size": BATCH_SIZE,
        "itos": [dataset.vocab.itos[i] for i in range(len(dataset.vocab))],
        "batches": batches,
    }
    (OUT / "original_batches.json").write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"{len(dataset)} captions, {len(dataset.vocab)} ids, {len(batches)} batches -> {OUT}")


if __name__ == "__main__":
    main()
