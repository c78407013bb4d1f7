#!/usr/bin/env python3
"""The PyTorch original's training steps, next to crates/caption-train/examples/train_bench.rs:

- frozen: from cached 2048-d pooled features, the original's encoder head (fc, ReLU, dropout 0.5),
  DecoderRNN, CrossEntropyLoss(ignore_index=PAD), backward, Adam (batch 32, 21 tokens, vocabulary
  2,994, embed = hidden = 256);
- seed: the original's CNNtoRNN with train_CNN=False in train mode on 32 images of 299x299 (only
  fc and the decoder require gradients, so nothing flows back into Inception v3);
- finetune (--finetune): the same with every Inception v3 parameter trained (lr x 0.1).

Prints JSON lines. Usage:
  tools/.venv/bin/python tools/train/bench_train_torch.py [--device cpu|cuda] [--threads N] [--seed-steps N] [--image-batch N] [--finetune]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "model"))
from original import CNNtoRNN  # noqa: E402

BATCH, TOKENS, VOCABULARY, PAD = 32, 21, 2994, 0
# <SOS> … <EOS> lengths of 32 Flickr8k captions (random.Random(0).sample of all 40,455, spaCy
# tokens + 2), the same list as train_bench.rs: padded to 20, 30 % of the targets are PAD.
FLICKR8K_LENGTHS = [12, 13, 17, 8, 14, 10, 16, 15, 9, 20, 12, 18, 9, 13, 15, 16,
                    10, 16, 12, 19, 16, 18, 9, 14, 12, 15, 19, 11, 18, 13, 18, 14]


# 40 batches as a Flickr8k epoch meets them (tools/train/generate_epoch_lengths.py), the same
# file train_bench.rs reads.
EPOCH_LENGTHS = json.loads((Path(__file__).resolve().parent / "flickr8k_epoch_lengths.json").read_text())


def epoch_batch(lengths, device):
    """A batch of captions of `lengths`, padded to the longest: token `(t, b)` is
    `4 + (t · 32 + b) · 7919 mod (vocabulary − 4)` (the full-length benchmark's tokens), as in
    train_bench.rs."""
    longest = max(lengths)
    ids = [[4 + ((t * BATCH + b) * 7919 % (VOCABULARY - 4)) if t < length else PAD
            for b, length in enumerate(lengths)] for t in range(longest)]
    return torch.tensor(ids, device=device)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed-steps", type=int, default=3)
    parser.add_argument("--finetune", action="store_true")
    parser.add_argument("--image-batch", type=int, default=BATCH, help="images per seed/finetune step (default 32)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # candle computes float32 products in float32: on CUDA torch is timed the same way first
    # (TF32 off), then with its defaults (TF32 convolutions in cuDNN).
    modes = [("strict-f32", False)] + ([("torch-default-tf32", True)] if device.type == "cuda" else [])
    for mode, tf32 in modes:
        if device.type == "cuda":
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
        bench_all(args, device, mode)


def bench_all(args, device, mode):
    """Times every step of one precision `mode`."""
    torch.manual_seed(0)
    model = CNNtoRNN(256, 256, VOCABULARY, 1).to(device).train()
    encoder, decoder = model.encoderCNN, model.decoderRNN
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    ids = [4 + (i * 7919 % (VOCABULARY - 4)) for i in range(TOKENS * BATCH)]
    captions = torch.tensor(ids, device=device).reshape(TOKENS, BATCH)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(steps, step):
        step()
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return (time.perf_counter() - start) / steps

    def report(bench, seconds, rate, batch=BATCH):
        print(json.dumps({"bench": bench, "device": device.type, "ms": round(seconds * 1e3, 2),
                          rate: round(batch / seconds, 1), "mode": mode, "torch": torch.__version__,
                          "threads": torch.get_num_threads()}), flush=True)

    head = list(encoder.inception.fc.parameters()) + list(decoder.parameters())
    for name, parameter in encoder.inception.named_parameters():
        parameter.requires_grad = "fc." in name
    optimizer = torch.optim.Adam(head, lr=3e-4)

    def step_from(pooled, captions=captions):
        features = encoder.dropout(encoder.relu(encoder.inception.fc(pooled)))
        outputs = decoder(features, captions[:-1])
        loss = criterion(outputs.reshape(-1, VOCABULARY), captions.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    pooled = torch.randn(BATCH, 2048, device=device)
    report("frozen train step (fc + decoder + Adam) b32 t21 v2994 e256", timed(20, lambda: step_from(pooled)),
           "samples_per_second")
    padded = epoch_batch(FLICKR8K_LENGTHS, device)
    report("frozen train step, Flickr8k caption lengths (padded to 20, 30% PAD)",
           timed(20, lambda: step_from(pooled, padded)), "samples_per_second")
    epoch = [epoch_batch(lengths, device) for lengths in EPOCH_LENGTHS["batches"]]
    report(f"frozen train step, {len(epoch)} Flickr8k epoch batches ({EPOCH_LENGTHS['pad_share']:.0%} PAD)",
           timed(1, lambda: [step_from(pooled, batch) for batch in epoch]) / len(epoch), "samples_per_second")

    images = torch.randn(args.image_batch, 3, 299, 299, device=device)
    image_captions = captions[:, : args.image_batch]

    def seed_step():
        outputs = model(images, image_captions[:-1])
        loss = criterion(outputs.reshape(-1, VOCABULARY), image_captions.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    if args.seed_steps == 0:
        return
    report(f"seed train step (Inception v3 train mode 299 px + fc + decoder) b{args.image_batch}",
           timed(args.seed_steps, seed_step), "images_per_second", args.image_batch)

    if args.finetune:
        body = [p for n, p in encoder.inception.named_parameters() if "fc." not in n]
        for parameter in body:
            parameter.requires_grad = True
        optimizer = torch.optim.Adam([{"params": head}, {"params": body, "lr": 3e-5}], lr=3e-4)
        report(f"finetune train step (all of Inception v3 trains) b{args.image_batch}",
               timed(args.seed_steps, seed_step), "images_per_second", args.image_batch)


if __name__ == "__main__":
    main()
