#!/usr/bin/env python3
"""Benchmark: pycocoevalcap's Bleu(4) + Cider + Rouge against caption.metrics' drop-ins, inside
one Python process, on 5,000 Flickr8k images x 5 references (real captions; each hypothesis a
seeded edit of one of its image's captions or another image's caption). Both sides get the same
pre-tokenized strings; the outputs are checked equal before timing counts.

Usage: tools/.venv/bin/python tools/python/bench_metrics.py [--shared ../shared] [--rounds 3]
Needs: the caption wheel installed (tools/python/test.sh installs it) and tools/python/requirements.txt.
"""

import argparse
import csv
import random
import re
import time
from pathlib import Path

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
from pycocoevalcap.cider.cider import Cider as CocoCider
from pycocoevalcap.rouge.rouge import Rouge as CocoRouge

from caption.metrics import Bleu, Cider, Rouge

ROOT = Path(__file__).resolve().parents[2]


def corpus(shared: Path, images: int) -> tuple[dict, dict]:
    by_image: dict[str, list[str]] = {}
    with open(shared / "data" / "flickr8k" / "captions.txt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_image.setdefault(row["image"], []).append(" ".join(re.findall(r"[a-z0-9]+", row["caption"].lower())))
    names = [name for name, caps in by_image.items() if len(caps) == 5][:images]
    rng = random.Random(0)
    gts, res = {}, {}
    for i, name in enumerate(names):
        gts[i] = by_image[name]
        if rng.random() < 0.2:
            res[i] = [by_image[names[rng.randrange(len(names))]][0]]
        else:
            words = rng.choice(by_image[name]).split()
            if len(words) > 3:
                del words[rng.randrange(len(words))]
            res[i] = [" ".join(words)]
    return gts, res


def timed(scorer, gts, res, rounds: int):
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = scorer.compute_score(gts, res, verbose=0) if isinstance(scorer, (Bleu, CocoBleu)) else scorer.compute_score(gts, res)
        best = min(best, time.perf_counter() - start)
    return best, out


def equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gts, res = corpus(args.shared, args.images)
    print(f"{len(gts)} images x {sum(len(r) for r in gts.values()) / len(gts):.0f} references, best of {args.rounds}")
    print(f"| metric | pycocoevalcap (s) | caption.metrics (s) | speed-up |")
    print(f"|---|---:|---:|---:|")
    totals = [0.0, 0.0]
    for name, theirs, mine in (("Bleu(4)", CocoBleu(4), Bleu(4)), ("Cider", CocoCider(), Cider()), ("Rouge", CocoRouge(), Rouge())):
        their_time, their_out = timed(theirs, gts, res, args.rounds)
        my_time, my_out = timed(mine, gts, res, args.rounds)
        assert equal(my_out, their_out), f"{name}: outputs differ"
        totals[0] += their_time
        totals[1] += my_time
        print(f"| {name} | {their_time:.3f} | {my_time:.4f} | {their_time / my_time:.0f}x |")
    print(f"| **all three** | {totals[0]:.3f} | {totals[1]:.4f} | **{totals[0] / totals[1]:.0f}x** |")


if __name__ == "__main__":
    main()
