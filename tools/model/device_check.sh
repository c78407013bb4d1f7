#!/usr/bin/env bash
# Runs on the GPU machine (the `device` tool), from the repository root: candle's Inception v3 on
# CUDA (parity with the torchvision fixtures, then forward speed), then torchvision's speed on the
# same GPU. Expects the CUDA build of the example at .device/device_check:
#   eval "$(bash ../shared/tools/cuda-toolchain.sh)"
#   CARGO_TARGET_DIR=/tmp/target-cuda cargo build --release -p caption-model --features cuda --example device_check
#   mkdir -p .device && cp /tmp/target-cuda/release/examples/device_check .device/
set -u
export LD_LIBRARY_PATH="$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib | tr '\n' :)${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== candle (caption-model) on CUDA"
FIXTURES=crates/caption-model/tests/fixtures timeout 300 .device/device_check --device cuda 2>&1
echo "== torchvision on CUDA"
timeout 200 python3 tools/model/bench_inception_torch.py --device cuda 2>&1
timeout 100 python3 tools/model/bench_decoder_torch.py --device cuda 2>&1
