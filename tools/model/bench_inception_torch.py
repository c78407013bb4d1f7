#!/usr/bin/env python3
"""torchvision Inception v3 forward speed (eval, float32) at batch 1 and 32, next to
crates/caption-model/examples/device_check.rs. On CUDA it reports both strict float32 (TF32 off,
what candle computes) and PyTorch's defaults (TF32 allowed in cuDNN convolutions).

Usage: python tools/model/bench_inception_torch.py [--device cuda] [--threads N]
"""

import argparse
import json
import time

import torch
import torchvision


def bench(net, device, batch, iterations):
    x = torch.randn(batch, 3, 299, 299, device=device)
    with torch.no_grad():
        for _ in range(3):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * iterations / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval().to(device)
    modes = [("strict-f32", False)] + ([("torch-default-tf32", True)] if device.type == "cuda" else [])
    for mode, tf32 in modes:
        if device.type == "cuda":
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
        for batch in (1, 32):
            rate = bench(net, device, batch, 50 if batch == 1 else 10)
            print(json.dumps({"bench": "torchvision inception_v3 forward eval f32", "mode": mode, "device": str(device),
                              "batch": batch, "images_per_second": round(rate, 1), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
