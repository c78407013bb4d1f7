#!/usr/bin/env bash
# Runs on the GPU machine (the `device` tool), from the repository root: caption-train's training
# steps on CUDA (frozen, seed and finetune; crates/caption-train/examples/train_bench.rs), then the
# PyTorch original's on the same GPU (tools/train/bench_train_torch.py). Expects the CUDA build of
# the example at .device/train_bench, made on the CPU machine (about 15-20 minutes there):
#   eval "$(bash ../shared/tools/cuda-toolchain.sh)"
#   CARGO_TARGET_DIR=/tmp/target-cuda cargo build --release -p caption-train --features cuda --example train_bench
#   mkdir -p .device && cp /tmp/target-cuda/release/examples/train_bench .device/
# and then, with the device tool: run(command="bash tools/train/device_train_bench.sh", carry=[".device"]).
set -u
export LD_LIBRARY_PATH="$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' :)${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== caption-train on CUDA"
timeout 240 .device/train_bench --device cuda --seed-steps 10 --finetune 2>&1
echo "== the PyTorch original on CUDA"
timeout 200 python3 tools/train/bench_train_torch.py --device cuda --seed-steps 10 --finetune 2>&1
