#!/usr/bin/env python3
"""One self-critical training step in PyTorch, written as self-critical.pytorch writes it, next
to crates/caption-train/examples/scst_bench.rs (same machine, same threads):

- the model: the PyTorch original's encoder head (fc 2048 -> 256, ReLU) on cached pooled features
  and its DecoderRNN (embed = hidden = 256, one LSTM layer, the vocabulary of words in 5 or more
  Flickr8k training captions), in train mode as self-critical.pytorch samples;
- one step: 32 images x 5 samples drawn word by word (multinomial over softmax, at most 16 tokens,
  each sample's log-probabilities kept for the loss, as its `_sample` does), each rewarded with
  CIDEr-D in Python (pycocoevalcap's CiderScorer with the document frequencies and reference
  length of Flickr8k's 6,000 training images' references: `CiderD(df=<train idxs>)`), the mean of
  the image's other samples as the baseline (`get_self_critical_reward`'s `new_self_critical`),
  RewardCriterion, backward, Adam;
- the reward alone: the CIDEr-D of the 160 sampled captions.

Captions are lowercased and split on whitespace, as scst_bench.rs reads them. Prints JSON lines.
Usage: tools/.venv/bin/python tools/train/bench_scst_torch.py [--data ../shared/data/flickr8k] [--threads 2] [--steps 10]
"""

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from pycocoevalcap.cider.cider_scorer import CiderScorer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "model"))
from original import DecoderRNN  # noqa: E402

IMAGES, SAMPLES, MAX_LENGTH = 32, 5, 16
PAD, SOS, EOS, UNK = 0, 1, 2, 3


def training_captions(data):
    by_image = {}
    with open(data / "captions.txt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_image.setdefault(row["image"], []).append(row["caption"].lower().split())
    return [by_image[image] for image in (data / "Flickr_8k.trainImages.txt").read_text().split() if image in by_image]


class TrainingCider:
    """CIDEr-D with the training references' document frequencies (self-critical.pytorch's
    CiderD(df=...)): pycocoevalcap's CiderScorer, its frequencies counted once."""

    def __init__(self, training):
        scorer = CiderScorer(n=4, sigma=6.0)
        for refs in training:
            scorer.cook_append(None, [" ".join(r) for r in refs])
        scorer.compute_doc_freq()
        self.document_frequency, self.images = scorer.document_frequency, len(scorer.crefs)

    def scores(self, hypotheses, references):
        scorer = CiderScorer(n=4, sigma=6.0)
        for hyp, refs in zip(hypotheses, references):
            scorer.cook_append(" ".join(hyp), [" ".join(r) for r in refs])
        scorer.document_frequency = self.document_frequency
        images = self.images

        class Counted(list):
            def __len__(self):
                return images

        scorer.crefs = Counted(scorer.crefs)
        return np.array(scorer.compute_cider())


def sample(fc, decoder, pooled):
    """self-critical.pytorch's `_sample` for the original's model: features from the image, then
    each step's word drawn from softmax(logits), its log-probability kept; rows stop at <EOS>."""
    features = torch.relu(fc(pooled)).repeat_interleave(SAMPLES, dim=0)
    rows = features.shape[0]
    x, states = features.unsqueeze(0), None
    words, logprobs = [], []
    unfinished = torch.ones(rows, dtype=torch.bool)
    for _ in range(MAX_LENGTH):
        hiddens, states = decoder.lstm(x, states)
        step_logprobs = torch.log_softmax(decoder.linear(hiddens.squeeze(0)), dim=1)
        word = torch.multinomial(step_logprobs.detach().exp(), 1).squeeze(1)
        word = word * unfinished  # PAD after the end, as its sequences pad with 0
        logprobs.append(step_logprobs.gather(1, word.unsqueeze(1)).squeeze(1))
        words.append(word)
        unfinished = unfinished & (word != EOS)
        if not unfinished.any():
            break
        x = decoder.embed(word).unsqueeze(0)
    return torch.stack(words, 1), torch.stack(logprobs, 1)


def reward_criterion(logprobs, seq, reward):
    mask = (seq != PAD).float()
    return -(logprobs * reward * mask).sum() / mask.sum()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "flickr8k"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    training = training_captions(Path(args.data))
    counts = Counter(word for refs in training for caption in refs for word in caption)
    itos = ["<PAD>", "<SOS>", "<EOS>", "<UNK>"] + sorted(w for w, c in counts.items() if c >= 5)
    cider = TrainingCider(training)
    fc, decoder = nn.Linear(2048, 256), DecoderRNN(256, 256, len(itos), 1)
    fc.train(), decoder.train()
    optimizer = torch.optim.Adam(list(fc.parameters()) + list(decoder.parameters()), lr=5e-5)
    batches = [torch.relu(torch.randn(IMAGES, 2048)) for _ in range(args.steps + 2)]

    def words(seq):
        return [[itos[i] for i in row if i >= UNK] for row in seq.tolist()]

    def step(index, pooled):
        seq, logprobs = sample(fc, decoder, pooled)
        images = [index * IMAGES + i for i in range(IMAGES) for _ in range(SAMPLES)]
        rewards = cider.scores(words(seq), [training[i % len(training)] for i in images]).reshape(IMAGES, SAMPLES)
        baseline = (rewards.sum(1, keepdims=True) - rewards) / (SAMPLES - 1)
        advantage = torch.from_numpy((rewards - baseline).reshape(-1, 1)).float().expand_as(logprobs)
        loss = reward_criterion(logprobs, seq, advantage)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return seq

    times = []
    for index, pooled in enumerate(batches):
        started = time.perf_counter()
        seq = step(index, pooled)
        times.append(time.perf_counter() - started)
    vocabulary = len(itos)
    print(json.dumps({"bench": "scst step b32x5 t16 (sampling, CIDEr-D reward, mean baseline, loss, backward, Adam)",
                      "vocabulary": vocabulary, "ms": 1e3 * sum(times[2:]) / args.steps, "torch": torch.__version__}))
    hypotheses = words(seq)
    references = [training[i] for i in range(IMAGES) for _ in range(SAMPLES)]
    started = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        cider.scores(hypotheses, references)
    print(json.dumps({"bench": "reward: CIDEr-D of 160 sampled captions", "vocabulary": vocabulary,
                      "ms": 1e3 * (time.perf_counter() - started) / repeats, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
