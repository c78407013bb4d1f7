#!/usr/bin/env python3
"""The original's DecoderRNN speed, next to crates/caption-model/examples/decoder_bench.rs: one
teacher-forced training step (forward, CrossEntropyLoss, backward, Adam lr 3e-4) at batch 32,
length 20, vocabulary 2,994, embed = hidden = 256; greedy decoding of 50 steps for one image as the
original's caption_image loop does it. Prints JSON lines.

Usage: python tools/model/bench_decoder_torch.py [--device cpu|cuda] [--threads N]
"""

import argparse
import json
import time

import torch
import torch.nn as nn

from original import DecoderRNN


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    decoder = DecoderRNN(256, 256, 2994, 1).to(device).train()  # cuDNN's RNN backward needs train mode
    decoder.dropout.p = 0.0  # no dropout, as the Rust side
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-4)
    criterion = nn.CrossEntropyLoss()
    features = torch.randn(32, 256, device=device)
    captions = torch.randint(0, 2994, (20, 32), device=device)
    targets = torch.cat([captions, torch.zeros(1, 32, dtype=torch.long, device=device)])

    def step():
        outputs = decoder(features, captions)
        loss = criterion(outputs.reshape(-1, 2994), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(20):
        step()
    sync(device)
    per_step = (time.perf_counter() - start) / 20
    print(json.dumps({"bench": "torch decoder train step b32 t20 v2994 e256", "device": str(device), "ms": round(per_step * 1e3, 2),
                      "samples_per_second": round(32 / per_step)}))

    def greedy(features):
        with torch.no_grad():
            x = features.unsqueeze(0)
            states = None
            for _ in range(50):
                hiddens, states = decoder.lstm(x, states)
                output = decoder.linear(hiddens.squeeze(0))
                predicted = output.argmax(1)
                predicted.item()
                x = decoder.embed(predicted).unsqueeze(0)

    decoder.eval()
    one = torch.randn(1, 256, device=device)
    greedy(one)
    start = time.perf_counter()
    for _ in range(20):
        greedy(one)
    print(json.dumps({"bench": "torch greedy 50 steps, 1 image", "device": str(device),
                      "ms": round((time.perf_counter() - start) / 20 * 1e3, 2), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
