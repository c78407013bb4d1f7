#!/usr/bin/env python3
"""The commands as users run them, whole processes, against the Python a user would otherwise
run, on the same files in the same minutes. Prints a Markdown table of median wall times and
ratios (Python's time / ours), and checks that both sides give the same answers.

Ours is timed twice: the binary `cargo xtask` builds (target/debug/xtask, the profile the alias
uses), and `cargo xtask ...` itself, which adds Cargo's check that the build is fresh.
Python runs the scripts beside this one (tools/cli/*.py), start-up and imports included.

Rows:
- bleu: 5,000 hypotheses × 5 references from Flickr8k (hypothesis = an image's first caption,
  references = its other four and the next image's first), JSON Lines, BLEU-1..4, in each of the
  three profiles against the library it reproduces (nltk, sacrebleu, pycocoevalcap);
- tokenize: the 40,455 Flickr8k captions, one per line, lowercased tokens as JSON lines;
- vocab: Flickr8k's captions.txt → the original's vocabulary (threshold 5, seed ordering);
- prepare-data: Flickr8k's captions.txt with ../shared's images folder (18 of its 8,091 photos);
- caption: 100 shapes images with the demo's checkpoint (runs/demo/best: run `cargo xtask demo`
  first) against the original's `caption_image` loop in PyTorch, model loaded in both.

Usage: tools/.venv/bin/python tools/cli/bench_cli.py [--repeat 5] [--shared ../shared] [--binary PATH]
"""

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def timed(command, repeat, cwd=ROOT, before=None):
    """Median wall time of `repeat` runs (after one warm-up run) and the last run's stdout."""
    times, out = [], ""
    for k in range(repeat + 1):
        if before:
            before()
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{' '.join(map(str, command))} failed:\n{done.stderr}")
        out = done.stdout
        if k > 0:
            times.append(elapsed)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--binary", help="time this xtask binary instead (e.g. another build), without `cargo xtask`")
    args = parser.parse_args()
    flickr = Path(args.shared) / "data" / "flickr8k"
    if args.binary:
        binary = Path(args.binary).resolve()
    else:
        binary = ROOT / "target" / "debug" / "xtask"
        subprocess.run(["cargo", "build", "--quiet", "-p", "xtask"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))

    by_image = {}
    with open(flickr / "captions.txt", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        by_image.setdefault(row["image"], []).append(row["caption"].lower())
    images = list(by_image.values())
    corpus = work / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(5000):
            record = {"id": i, "hypothesis": images[i][0], "references": images[i][1:5] + [images[i + 1][0]]}
            f.write(json.dumps(record) + "\n")
    lines = work / "captions_lines.txt"
    lines.write_text("".join(row["caption"] + "\n" for row in rows), encoding="utf-8")
    demo = ROOT / "runs" / "demo" / "best"
    if not (demo / "trainer.json").is_file():
        sys.exit("runs/demo/best is missing: run `cargo xtask demo` first")
    pictures = sorted((ROOT / "datasets" / "shapes" / "images").glob("*.png"))[:100]
    if len(pictures) < 100:
        sys.exit("datasets/shapes/images has fewer than 100 images: run `cargo xtask demo` first")

    def ours(*words):
        return [str(binary), *map(str, words)], ["cargo", "xtask", *map(str, words)]

    def clear(path):
        return lambda: shutil.rmtree(path, ignore_errors=True)

    cases = [
        ("bleu, nltk profile", ours("bleu", "--input", corpus, "--compat", "nltk", "--json"),
         [PYTHON, HERE / "bleu_python.py", corpus, "nltk"], None, None),
        ("bleu, sacrebleu profile", ours("bleu", "--input", corpus, "--compat", "sacrebleu", "--json"),
         [PYTHON, HERE / "bleu_python.py", corpus, "sacrebleu"], None, None),
        ("bleu, coco profile", ours("bleu", "--input", corpus, "--compat", "coco", "--json"),
         [PYTHON, HERE / "bleu_python.py", corpus, "coco"], None, None),
        ("tokenize --lower, 40,455 captions", ours("tokenize", "--lower", lines),
         [PYTHON, HERE / "tokenize_spacy.py", lines], None, None),
        ("vocab captions.txt", ours("vocab", flickr / "captions.txt", "--out", work / "tokenizer.json"),
         [PYTHON, HERE / "vocab_original.py", flickr / "captions.txt", work / "vocab.json"], None, None),
        ("prepare-data, Flickr8k text", ours("prepare-data", "-q", "--captions", flickr / "captions.txt",
                                               "--images-dir", flickr / "images", "--out", work / "prepared"),
         [PYTHON, HERE / "prepare_python.py", flickr / "captions.txt", flickr / "images", work / "prepared_py"],
         clear(work / "prepared"), clear(work / "prepared_py")),
        ("caption, 100 images", ours("caption", "--device", "cpu", "--checkpoint", demo, *pictures),
         [PYTHON, HERE / "caption_original.py", demo, *pictures], None, None),
    ]
    print(f"{args.repeat} runs each after a warm-up, medians; ours: {binary}" + ("" if args.binary else " and `cargo xtask`"))
    print()
    print("| command | ours (binary) | ours (`cargo xtask`) | Python | Python / ours (binary) | Python / ours (`cargo xtask`) |")
    print("|---|---|---|---|---|---|")
    outputs = {}
    for name, (direct, via_cargo), python, before_ours, before_python in cases:
        t_ours, out_ours = timed(direct, args.repeat, before=before_ours)
        t_cargo = float("nan") if args.binary else timed(via_cargo, args.repeat, before=before_ours)[0]
        t_py, out_py = timed([str(c) for c in python], args.repeat, before=before_python)
        outputs[name] = (out_ours, out_py)
        print(f"| {name} | {t_ours:.3f} s | {t_cargo:.3f} s | {t_py:.3f} s | **{t_py / t_ours:.1f}×** | {t_py / t_cargo:.1f}× |")
        sys.stdout.flush()

    # The same answers on both sides.
    print()
    for name in [c[0] for c in cases if c[0].startswith("bleu")]:
        ours_json, py_json = (json.loads(o.strip().splitlines()[-1]) for o in outputs[name])
        worst = max(abs(ours_json[f"bleu_{n}"] - py_json[f"bleu_{n}"]) for n in range(1, 5))
        print(f"{name}: largest BLEU difference {worst:.3g}")
    ours_tokens, py_tokens = outputs["tokenize --lower, 40,455 captions"]
    print(f"tokenize: outputs {'identical' if ours_tokens == py_tokens else 'DIFFER'}")
    stoi = json.loads((work / "vocab.json").read_text())
    vocab = json.loads((work / "tokenizer.json").read_text())["model"]["vocab"]
    print(f"vocab: {'same words and ids' if stoi == vocab else 'DIFFER'} ({len(stoi)} ids)")
    ours_captions, py_captions = outputs["caption, 100 images"]
    same = sum(a == b for a, b in zip(ours_captions.splitlines(), py_captions.splitlines()))
    print(f"caption: {same} of {len(pictures)} captions identical")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
