#!/usr/bin/env bash
# Builds what tools/device/cuda_check.sh and cuda_pipeline.sh run on a GPU machine, on this
# (GPU-less) machine, into .device/ (git-ignored), stripped and xz-compressed: in .device/check/
# the CUDA backend's test binary, train_bench and device_check, each with `cuda` (candle's
# convolution) and with `cudnn` (cuDNN's), about 39 MB; in .device/pipeline/ xtask with `cudnn`,
# about 17 MB. Each folder travels alone (the device tool carries 64 MiB with the working tree).
# The dev profile, as `cargo xtask` runs. First run: ~25 minutes on 2 cores (candle's kernels).
#
#   bash tools/device/build.sh                 # then, with the device tool:
#   run(command="bash tools/device/cuda_check.sh", carry=[".device/check"], timeout_s=560)
#   run(command="bash tools/device/cuda_pipeline.sh", carry=[".device/pipeline"], timeout_s=300)
#
# CARGO_TARGET_DIR (default target/cuda) keeps these builds apart from the CPU ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(bash ../shared/tools/cuda-toolchain.sh --cudnn)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
built=$CARGO_TARGET_DIR/debug
rm -rf .device && mkdir -p .device/check .device/pipeline
for feature in cuda cudnn; do
  suffix=$([ $feature = cudnn ] && echo _cudnn || true)
  tests=$(cargo test -p caption-model --features $feature --test cuda_backend --no-run 2>&1 \
    | grep -o "$CARGO_TARGET_DIR/debug/deps/cuda_backend-[0-9a-f]*" | tail -1)
  cargo build -q -p caption-train --features $feature --example train_bench
  cargo build -q -p caption-model --features $feature --example device_check
  strip -o .device/check/cuda_backend$suffix "$tests"
  strip -o .device/check/train_bench$suffix $built/examples/train_bench
  strip -o .device/check/device_check$suffix $built/examples/device_check
done
cargo build -q -p xtask --features cudnn
strip -o .device/pipeline/xtask $built/xtask
xz -f -T0 .device/check/* .device/pipeline/*
du -sh .device/* && ls -la .device/*
