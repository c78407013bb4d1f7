#!/usr/bin/env python3
"""The attention decoder's frozen training step in PyTorch, next to
crates/caption-train/examples/attention_bench.rs: the reference DecoderWithAttention
(tools/model/attention_reference.py, the tutorial's semantics) on cached grids of 64 positions x
2048 channels (Inception v3's Mixed_7c at 299 px), the tutorial's sizes (512 everywhere),
vocabulary 2,994, batch 32 with Flickr8k caption lengths, dropout 0.5, the tutorial's loss
(cross-entropy + alpha_c 1 x the doubly stochastic term), backward, Adam lr 4e-4. Prints a JSON
line.

Usage: tools/.venv/bin/python tools/model/bench_attention_torch.py [--threads N] [--steps N]
"""

import argparse
import json
import time

import torch

from attention_reference import DecoderWithAttention, loss

BATCH, VOCABULARY, POSITIONS, CHANNELS = 32, 2994, 64, 2048
# The same 32 Flickr8k caption lengths (<SOS> ... <EOS>) as tools/train/bench_train_torch.py.
FLICKR8K_LENGTHS = [12, 13, 17, 8, 14, 10, 16, 15, 9, 20, 12, 18, 9, 13, 15, 16,
                    10, 16, 12, 19, 16, 18, 9, 14, 12, 15, 19, 11, 18, 13, 18, 14]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    decoder = DecoderWithAttention(512, 512, 512, VOCABULARY, encoder_dim=CHANNELS, dropout=0.5).train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=4e-4)
    grid = torch.randn(BATCH, POSITIONS, CHANNELS).relu()
    longest = max(FLICKR8K_LENGTHS)
    captions = torch.zeros(BATCH, longest, dtype=torch.long)
    for b, length in enumerate(FLICKR8K_LENGTHS):
        captions[b, 0] = 1
        for t in range(1, length - 1):
            captions[b, t] = 4 + ((t * BATCH + b) * 7919 % (VOCABULARY - 4))
        captions[b, length - 1] = 2
    lengths = torch.tensor(FLICKR8K_LENGTHS).unsqueeze(1)

    def step():
        scores, sorted_captions, decode_lengths, alphas, _ = decoder(grid, captions, lengths)
        value = loss(scores, sorted_captions, decode_lengths, alphas, alpha_c=1.0)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    per_step = (time.perf_counter() - start) / args.steps
    print(json.dumps({"bench": "torch attention frozen step b32 p64 c2048 d512 v2994", "threads": torch.get_num_threads(),
                      "ms": round(per_step * 1e3, 1), "samples_per_second": round(BATCH / per_step, 1)}))


if __name__ == "__main__":
    main()
