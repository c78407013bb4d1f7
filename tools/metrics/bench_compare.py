#!/usr/bin/env python3
"""Side-by-side timing of caption-metrics against nltk, sacrebleu and pycocoevalcap, in one run.

Runs `cargo bench -p caption-metrics --bench bleu` (criterion, single-threaded) and
tools/metrics/bench_python.py on the same corpus (5,000 Flickr8k hypotheses × 5 references), then
prints a Markdown table with the ratios, ready for docs/benchmarks.md.

Usage: tools/.venv/bin/python tools/metrics/bench_compare.py
"""

import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rust_seconds(name):
    estimates = ROOT / "target" / "criterion" / "5000x5" / name / "new" / "estimates.json"
    return json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9


def main():
    subprocess.run(
        ["cargo", "bench", "-p", "caption-metrics", "--bench", "bleu", "--", "--warm-up-time", "2", "--measurement-time", "5"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    python = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "tools" / "metrics" / "bench_python.py")],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    rows = [
        ("BLEU-1..4, coco profile", "pycocoevalcap_bleu_1_4", "bleu_1_4_coco_from_tokens"),
        ("BLEU-1..4, coco profile (corpus already interned)", "pycocoevalcap_bleu_1_4", "bleu_1_4_coco_prepared_corpus"),
        ("BLEU-1..4, nltk profile", "nltk_bleu_1_4", "bleu_1_4_nltk_from_tokens"),
        ("BLEU-1..4, sacrebleu profile (4 BLEU objects)", "sacrebleu_bleu_1_4", "bleu_1_4_sacrebleu_from_tokens"),
        ("BLEU-4 only, sacrebleu (1 object) vs our BLEU-1..4", "sacrebleu_bleu_4_only", "bleu_1_4_sacrebleu_from_tokens"),
        ("CIDEr-D (prepared corpus)", "pycocoevalcap_cider_d", "cider_d"),
        ("ROUGE-L (prepared corpus)", "pycocoevalcap_rouge_l", "rouge_l"),
    ]
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}; medians (Rust) and best of 3 (Python).\n")
    print("| task | Python library | Python | caption-metrics | speed-up |")
    print("|---|---|---:|---:|---:|")
    for task, py, rs in rows:
        p, r = python[py], rust_seconds(rs)
        library = py.split("_")[0]
        print(f"| {task} | {library} | {p * 1e3:.0f} ms | {r * 1e3:.2f} ms | {p / r:.0f}× |")
    fastest = min(python["nltk_bleu_1_4"], python["pycocoevalcap_bleu_1_4"], python["sacrebleu_bleu_4_only"])
    ours = rust_seconds("bleu_1_4_coco_from_tokens")
    print(f"\nFastest Python library for BLEU: {fastest * 1e3:.0f} ms; caption-metrics from tokens: "
          f"{ours * 1e3:.2f} ms ({fastest / ours:.0f}×).")


if __name__ == "__main__":
    main()
