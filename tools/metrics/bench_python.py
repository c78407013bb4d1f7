#!/usr/bin/env python3
"""Times nltk, sacrebleu and pycocoevalcap on the corpus benches/bleu.rs scores.

5,000 hypotheses × 5 references from the real Flickr8k captions: hypothesis i is image i's first
caption; its references are the image's other four captions and the next image's first caption.
Lowercased, split on whitespace. Each library gets the input form it takes (token lists for nltk,
strings for the others) prepared before the clock starts; each timing is the best of --repeat runs.
Prints one JSON object of seconds.

Usage: tools/.venv/bin/python tools/metrics/bench_python.py [--shared ../shared]
"""

import argparse
import contextlib
import csv
import io
import json
import time
import warnings
from pathlib import Path

from nltk.translate.bleu_score import corpus_bleu
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from sacrebleu.metrics import BLEU

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
SEGMENTS = 5000


def corpus(shared):
    by_image = {}
    with open(Path(shared) / "data" / "flickr8k" / "captions.txt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_image.setdefault(row["image"], []).append(row["caption"].lower().split())
    images = list(by_image.values())
    hyps = [images[i][0] for i in range(SEGMENTS)]
    refs = [images[i][1:5] + [images[i + 1][0]] for i in range(SEGMENTS)]
    return hyps, refs


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hyps, refs = corpus(args.shared)
    hyp_text = [" ".join(h) for h in hyps]
    ref_text = [[" ".join(r) for r in rs] for rs in refs]
    ref_streams = [[rs[k] for rs in ref_text] for k in range(5)]
    gts = {i: ref_text[i] for i in range(SEGMENTS)}
    res = {i: [hyp_text[i]] for i in range(SEGMENTS)}
    weights = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]

    def coco_bleu():
        with contextlib.redirect_stdout(io.StringIO()):
            Bleu(4).compute_score(gts, res)

    def sacre():
        # One object per order gives BLEU-1..4, as the Rust profile reports them.
        for n in range(1, 5):
            BLEU(tokenize="none", max_ngram_order=n).corpus_score(hyp_text, ref_streams)

    timings = {
        "nltk_bleu_1_4": best_of(args.repeat, lambda: corpus_bleu(refs, hyps, weights=weights)),
        "pycocoevalcap_bleu_1_4": best_of(args.repeat, coco_bleu),
        "sacrebleu_bleu_4_only": best_of(
            args.repeat, lambda: BLEU(tokenize="none").corpus_score(hyp_text, ref_streams)
        ),
        "sacrebleu_bleu_1_4": best_of(args.repeat, sacre),
        "pycocoevalcap_cider_d": best_of(args.repeat, lambda: Cider().compute_score(gts, res)),
        "pycocoevalcap_rouge_l": best_of(args.repeat, lambda: Rouge().compute_score(gts, res)),
    }
    print(json.dumps(timings, indent=1))


if __name__ == "__main__":
    main()
