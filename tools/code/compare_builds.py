#!/usr/bin/env python3
"""Two builds side by side in one run: the same benchmarks and commands, alternated, each's
median, and the ratio new/old (time: below 1 is faster). What issue #30 asks of a refactoring:
"benchmarks before and after in one run within the machine's spread".

Each build is a folder holding `xtask` and the examples `device_check`, `train_bench` and
`attention_bench` (built with the dev profile, what `cargo xtask` runs):

    python3 tools/code/compare_builds.py OLD_BIN NEW_BIN [--rounds 3]

Build the old side in its own checkout (`git worktree add /tmp/old COMMIT`) and copy its binaries
out before building the new side. If both checkouts share one `target/`, cargo gives the
workspace crates of both the same artifact names: run `cargo clean -p` on the workspace crates
before building the new side, and check that each `xtask` is the build it should be (`--help`).

It times, from the repository root: Inception v3's forward and the LSTM decoder's pass and greedy
loop (`device_check`), the frozen training step (`train_bench`), the attention decoder's frozen
step (`attention_bench`), and `xtask caption` as a whole process over the demo's 130 test images
and more (greedy and beam 3) with `runs/demo` (run `cargo xtask demo` first). Then both builds'
`xtask demo --json` scores must be equal to the last digit (a fresh dataset and run each).
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def json_lines(output):
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                pass


def example_times(binary, args):
    """Milliseconds by bench name (per-image for throughput lines)."""
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=True).stdout
    times = {}
    for record in json_lines(out):
        name = record.get("bench")
        if not name:
            continue
        if "ms" in record:
            times[name] = record["ms"]
        elif "images_per_second" in record:
            times[f"{name}, batch {record.get('batch')}"] = 1e3 / record["images_per_second"]
    return times


def process_seconds(command):
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def main():
    old, new = Path(sys.argv[1]), Path(sys.argv[2])
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    images = sorted(Path("datasets/shapes/images").glob("*.png"))[:130]
    if not images or not Path("runs/demo").is_dir():
        sys.exit("run `cargo xtask demo` first: the caption timings use runs/demo and datasets/shapes")
    results = {}

    def add(name, build, value):
        results.setdefault(name, {"old": [], "new": []})[build].append(value)

    for round_number in range(rounds):
        for build, folder in (("old", old), ("new", new)) if round_number % 2 == 0 else (("new", new), ("old", old)):
            for example, args in (
                ("device_check", []),
                ("train_bench", []),
                ("attention_bench", ["--steps", "10"]),
            ):
                for name, ms in example_times(str(folder / example), args).items():
                    add(f"{example}: {name} (ms)", build, ms)
            for label, extra in (("greedy", []), ("beam 3", ["--beam", "3"])):
                command = [str(folder / "xtask"), "caption", "--device", "cpu", "--checkpoint", "runs/demo", *extra]
                add(f"xtask caption, 130 images, {label} (s)", build, process_seconds(command + [str(i) for i in images]))
        print(f"round {round_number + 1}/{rounds} done", file=sys.stderr)

    print(f"| measure | old (median of {rounds}) | new | new/old |")
    print("|---|---|---|---|")
    for name, values in results.items():
        if len(values["old"]) != len(values["new"]) or not values["old"]:
            continue
        a, b = statistics.median(values["old"]), statistics.median(values["new"])
        spread = max(values["old"] + values["new"]) / min(values["old"] + values["new"])
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.3f} (all runs within {spread:.2f}×) |")

    scores = {}
    for build, folder in (("old", old), ("new", new)):
        with tempfile.TemporaryDirectory() as scratch:
            out = subprocess.run(
                [str(folder / "xtask"), "demo", "--json", "--data", f"{scratch}/data", "--run", f"{scratch}/run"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            record = list(json_lines(out))[-1]
            keys = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l", "baseline_bleu_4",
                    "attribute_accuracy", "object_accuracy")
            scores[build] = {key: record[key] for key in keys}
    print()
    print(f"demo scores, old: {scores['old']}")
    print(f"demo scores, new: {scores['new']}")
    print("demo scores equal to the last digit:", scores["old"] == scores["new"])


if __name__ == "__main__":
    main()
