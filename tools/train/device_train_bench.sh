#!/usr/bin/env bash
# Runs on the GPU machine (the `device` tool), from the repository root:
#   1. caption-train's training steps on CUDA (frozen, seed and finetune at 32 images, and at 16
#      when 32 does not fit; crates/caption-train/examples/train_bench.rs), then the PyTorch
#      original's on the same GPU
#      (tools/train/bench_train_torch.py, strict float32 and torch's TF32 defaults). The GPU's
#      memory in use is sampled every 100 ms into $OUT/gpu_memory.csv, each phase's start into
#      $OUT/phases.txt, so each step's peak can be read off;
#   2. when .device/device_check.xz is there: Inception v3 parity and forward speed
#      (crates/caption-model/examples/device_check.rs), next to torchvision;
#   3. `xtask train --mode finetune` for $FINETUNE_EPOCHS epochs (default 3) on a small shapes
#      dataset: the trainer with every weight training, on the GPU;
#   4. unless SKIP_DEMO is set, `xtask demo --device cuda --epochs $DEMO_EPOCHS` (default 60): the
#      whole pipeline (prepare, train, caption, score, report) on the GPU.
# Expects the CUDA builds, made on the CPU machine with the dev profile (what `cargo xtask` runs),
# stripped and compressed in .device/ (the device tool carries 64 MiB at most):
#   eval "$(bash ../shared/tools/cuda-toolchain.sh)"
#   cargo build -p xtask --features cuda && cargo build -p caption-train --features cuda --example train_bench
#   (and, for step 2, CARGO_TARGET_DIR=/tmp/target-cuda cargo build --release -p caption-model
#   --features cuda --example device_check)
#   each: strip -o .device/NAME BINARY && xz -f .device/NAME
# then, with the device tool: run(command="bash tools/train/device_train_bench.sh", carry=[".device"]).
set -u
source tools/device/unpack.sh
nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 100 > $out/gpu_memory.csv 2>&1 &
sampler=$!
phase() { echo "== $*"; echo "$(date '+%Y/%m/%d %H:%M:%S.%3N') $*" >> $out/phases.txt; }

phase "1. caption-train on CUDA, 32 images"
timeout 90 $bin/train_bench --device cuda --seed-steps 10 --finetune 2>&1 | tee $out/train_bench.jsonl
if ! grep -q finetune $out/train_bench.jsonl; then
  phase "1. caption-train on CUDA, finetune at 16 images"
  timeout 60 $bin/train_bench --device cuda --seed-steps 5 --finetune --image-batch 16 2>&1 | grep finetune | tee -a $out/train_bench.jsonl
fi
phase "1. the PyTorch original on CUDA"
timeout 90 python3 tools/train/bench_train_torch.py --device cuda --seed-steps 10 --finetune 2>&1 | tee $out/torch_train.jsonl

if [ -x $bin/device_check ]; then
  phase "2. Inception v3 (candle), then torchvision"
  FIXTURES=crates/caption-model/tests/fixtures timeout 120 $bin/device_check --device cuda 2>&1 | tee $out/device_check.jsonl
  timeout 90 python3 tools/model/bench_inception_torch.py --device cuda 2>&1 | tee $out/torch_inception.jsonl
fi

phase "3. xtask train --mode finetune on CUDA (shapes, 320 images)"
SECONDS=0
$bin/xtask prepare-data --dataset shapes --images 320 --out /tmp/ft-data --quiet > $out/finetune.log 2>&1
timeout 150 $bin/xtask train --data /tmp/ft-data --run /tmp/ft-run --device cuda --mode finetune --encoder random \
  --image-size 139 --epochs ${FINETUNE_EPOCHS:-3} --embed-size 128 --hidden-size 128 >> $out/finetune.log 2>&1
echo "finetune exit $? after $SECONDS s"
tr '\r' '\n' < $out/finetune.log | grep -v "^ *epoch [0-9]*/[0-9]*: [0-9]* in" | tail -8

if [ -z "${SKIP_DEMO:-}" ]; then
  phase "4. xtask demo on CUDA"
  SECONDS=0
  timeout 240 $bin/xtask demo --device cuda --epochs ${DEMO_EPOCHS:-60} --json --data /tmp/demo-data --run /tmp/demo-run > $out/demo.log 2>&1
  echo "demo exit $? after $SECONDS s"
  tr '\r' '\n' < $out/demo.log | grep -v "^ *epoch [0-9]*/[0-9]*: [0-9]* in" | tail -22
fi
phase "end"
kill $sampler
