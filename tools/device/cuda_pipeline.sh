#!/usr/bin/env bash
# The commands on a GPU machine (the `device` tool), from the repository root, after
# tools/device/cuda_check.sh (the kernels' parity and speed), in one run of about 3 minutes:
#   1. `xtask train --mode finetune` for $FINETUNE_EPOCHS epochs (default 20) on a shapes dataset
#      (320 images, 139 px): every weight trains on the GPU; the GPU memory in use at the end of
#      each epoch is printed (the goal: flat after the first epoch);
#   2. `xtask demo --device cuda --epochs $DEMO_EPOCHS` (default 60): prepare, train, caption,
#      score and report on the GPU, timed (the goal: 30 s or less).
# Expects .device/pipeline/xtask.xz from tools/device/build.sh (xtask with `cudnn`, the dev profile).
# then: run(command="bash tools/device/cuda_pipeline.sh", carry=[".device/pipeline"], timeout_s=300).
set -u
source tools/device/unpack.sh
nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 100 > $out/gpu_memory.csv 2>&1 &
sampler=$!
# Each output line with the time it was read, to match epochs with memory samples.
stamp() { while IFS= read -r line; do echo "$(date '+%Y/%m/%d %H:%M:%S.%3N')|$line"; done; }

echo "== 1. xtask train --mode finetune on CUDA (shapes, 320 images, 139 px)"
SECONDS=0
$bin/xtask prepare-data --dataset shapes --images 320 --out /tmp/ft-data --quiet > $out/finetune.log 2>&1
timeout 200 $bin/xtask train --data /tmp/ft-data --run /tmp/ft-run --device cuda --mode finetune --encoder random \
  --image-size 139 --epochs ${FINETUNE_EPOCHS:-20} --embed-size 128 --hidden-size 128 --quiet 2>&1 \
  | tr '\r' '\n' | stamp >> $out/finetune.log
echo "finetune exit ${PIPESTATUS[0]} after $SECONDS s"
python3 - "$out/gpu_memory.csv" "$out/finetune.log" <<'PY'
import sys
from datetime import datetime
when = lambda text: datetime.strptime(text.strip(), "%Y/%m/%d %H:%M:%S.%f")
samples = []
for line in open(sys.argv[1]).read().splitlines():
    try:
        stamp, used = line.split(",")
        samples.append((when(stamp), int(used)))
    except ValueError:
        pass
print("| epoch line | GPU memory in use |")
print("|---|---:|")
for line in open(sys.argv[2]).read().splitlines():
    if "|" not in line:
        continue
    stamp, text = line.split("|", 1)
    if text.startswith("epoch ") and "loss" in text:
        before = [mib for at, mib in samples if at <= when(stamp)]
        print(f"| {text[:60]} | {before[-1] if before else '–'} MiB |")
PY

echo "== 2. xtask demo on CUDA"
SECONDS=0
timeout 240 $bin/xtask demo --device cuda --epochs ${DEMO_EPOCHS:-60} --json --data /tmp/demo-data --run /tmp/demo-run > $out/demo.log 2>&1
echo "demo exit $? after $SECONDS s"
tr '\r' '\n' < $out/demo.log | grep -v "^ *epoch [0-9]*/[0-9]*: [0-9]* in" | tail -22
kill $sampler 2>/dev/null
