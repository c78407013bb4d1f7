"""PIL + torchvision's eval transform (Resize((299, 299)) -> ToTensor -> Normalize(0.5, 0.5)) on the
Flickr8k photos in ../shared/data: images/s with one process and with N processes (a
DataLoader-like pool), best of ROUNDS. Compare with `cargo run -p caption-data --example bench_images`.

    tools/.venv/bin/python tools/data/bench_images_python.py [ROUNDS] [PROCESSES]
"""
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT.parent / "shared" / "data" / "flickr8k" / "images").iterdir())
TRANSFORM = transforms.Compose([transforms.Resize((299, 299)), transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])


def one(path):
    torch.set_num_threads(1)
    return TRANSFORM(Image.open(path).convert("RGB")).shape


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(1)
    for f in FILES:
        one(f)
    best = min(timed(lambda: [one(f) for f in FILES]) for _ in range(rounds))
    print(f"processes 1: {len(FILES) / best:.1f} images/s ({len(FILES)} images, best of {rounds})")
    with Pool(processes) as pool:
        pool.map(one, FILES)
        best = min(timed(lambda: pool.map(one, FILES)) for _ in range(rounds))
    print(f"processes {processes}: {len(FILES) / best:.1f} images/s")


def timed(work):
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
