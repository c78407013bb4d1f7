"""Prints the CUDA check's table: each training step's time for caption's CUDA backend, caption's
reference path (candle's autograd, what CUDA ran before the backend), and the PyTorch original in
strict float32 and with torch's TF32 defaults, all from one run on one GPU, with ratios
(PyTorch strict time / ours: above 1 is faster than PyTorch).

    python3 tools/device/cuda_table.py OURS.jsonl REFERENCE.jsonl TORCH.jsonl [INFERENCE.jsonl TORCH_INFERENCE.jsonl]
        [--memory GPU_MEMORY.csv PHASES.csv]

The inference files (crates/caption-model/examples/device_check.rs; bench_inception_torch.py and
bench_decoder_torch.py) add Inception v3's eval forward (images/s), greedy decoding and beam
search (ms).
`--memory` adds each phase's peak GPU memory from nvidia-smi's samples (`timestamp, MiB` lines)
and the phases' start times (`timestamp,name` lines; the last phase marks the end).
"""

import json
import sys


def read(path, key=None):
    rows = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return rows
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        name = row["bench"] if key is None else (row["bench"], row.get(key))
        rows[name] = row["ms"]
    return rows


def lines(path):
    try:
        return [json.loads(line) for line in open(path).read().splitlines() if line.strip().startswith("{")]
    except OSError:
        return []


def inference(ours_path, torch_path):
    ours, torch = lines(ours_path), lines(torch_path)
    print()
    print("| inference | caption | PyTorch strict f32 | PyTorch TF32 | vs strict | vs TF32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in ours:
        if row.get("bench") == "inception_v3 forward eval f32":
            batch, rate = row["batch"], row["images_per_second"]
            theirs = {r.get("mode"): r["images_per_second"] for r in torch
                      if r.get("bench") == "torchvision inception_v3 forward eval f32" and r.get("batch") == batch}
            strict = next((v for m, v in theirs.items() if m and "tf32" not in m), None)
            tf32 = next((v for m, v in theirs.items() if m and "tf32" in m), None)
            cell = lambda v: f"{v:.0f} images/s" if v is not None else "–"
            ratio = lambda v: f"{rate / v:.2f}×" if v else "–"
            label = "cuDNN" if row.get("cudnn") else "im2col"
            print(f"| Inception v3 eval forward ({label}), batch {batch} | {cell(rate)} | {cell(strict)} | {cell(tf32)} | "
                  f"{ratio(strict)} | {ratio(tf32)} |")
        elif str(row.get("bench", "")).startswith("greedy 50 steps, 1 image"):
            theirs = next((r["ms"] for r in torch if r.get("bench") == "torch greedy 50 steps, 1 image"), None)
            ratio = f"{theirs / row['ms']:.2f}×" if theirs else "–"
            mine = f"{row['ms']:.2f} ms"
            print(f"| {row['bench']} | {mine} | {theirs if theirs is not None else '–'} ms | – | {ratio} | – |")
        elif str(row.get("bench", "")) == "beam 3, 20 steps, 1 image":
            # PyTorch's tutorial has no beam search: the ratio is against candle's operations.
            theirs = next((r["ms"] for r in ours if r.get("bench") == row["bench"] + ", tensor operations"), None)
            ratio = f"{theirs / row['ms']:.2f}× candle's operations ({theirs} ms)" if theirs else "–"
            print(f"| {row['bench']} | {row['ms']:.2f} ms | – | – | {ratio} | – |")
        elif "check" in row:
            print(f"| parity: {row['check']} | {row.get('relative_difference', row.get('error'))} | | | | |")


def memory(samples_path, phases_path):
    from datetime import datetime

    def when(text):
        return datetime.strptime(text.strip(), "%Y/%m/%d %H:%M:%S.%f")

    samples = []
    for line in open(samples_path).read().splitlines():
        try:
            stamp, used = line.split(",")
            samples.append((when(stamp), int(used)))
        except ValueError:
            continue
    phases = [(when(line.split(",", 1)[0]), line.split(",", 1)[1]) for line in open(phases_path).read().splitlines() if "," in line]
    print()
    print("| phase | peak GPU memory |")
    print("|---|---:|")
    for (start, name), (end, _) in zip(phases, phases[1:]):
        used = [mib for stamp, mib in samples if start <= stamp < end]
        print(f"| {name} | {max(used) if used else '–'} MiB |")


def main():
    args = sys.argv[1:]
    memory_args = None
    if "--memory" in args:
        at = args.index("--memory")
        memory_args, args = args[at + 1:at + 3], args[:at] + args[at + 3:]
    sys.argv = [sys.argv[0]] + args
    ours, reference, torch = read(sys.argv[1]), read(sys.argv[2]), read(sys.argv[3], "mode")
    print("| step | caption CUDA backend | caption reference path | PyTorch strict f32 | PyTorch TF32 | vs strict | vs TF32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for bench, ms in ours.items():
        strict, tf32 = torch.get((bench, "strict-f32")), torch.get((bench, "torch-default-tf32"))
        cell = lambda v: f"{v:.2f} ms" if v is not None else "–"
        ratio = lambda v: f"{v / ms:.2f}×" if v is not None else "–"
        print(f"| {bench} | {cell(ms)} | {cell(reference.get(bench))} | {cell(strict)} | {cell(tf32)} | "
              f"{ratio(strict)} | {ratio(tf32)} |")


    if len(sys.argv) > 5:
        inference(sys.argv[4], sys.argv[5])
    if memory_args:
        memory(*memory_args)


if __name__ == "__main__":
    main()
