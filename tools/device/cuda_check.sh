#!/usr/bin/env bash
# The CUDA backend's check on a GPU machine (the `device` tool), from the repository root, in
# one run that fits in 10 minutes:
#   1. parity: caption-model's tests/cuda_backend.rs (ignored without a GPU): the CUDA training
#      pass (encoder head + decoder, dropout, PAD, two layers, and the original's sizes at batch 32),
#      greedy decoding, beam search, Adam's kernel, Inception in eval mode, with batch statistics and its
#      fine-tuning gradients, against the CPU backend (float32 within 1e-5; Inception 1e-4, its
#      gradients 1e-3), with candle's convolution and again with cuDNN's;
#   2. training speed: crates/caption-train/examples/train_bench.rs on CUDA with the backend
#      (frozen, seed, decoder and finetune steps), the frozen steps again with CAPTION_REFERENCE_PATH=1
#      (candle's autograd: the numbers before the backend), then the PyTorch original
#      (tools/train/bench_train_torch.py, strict float32 and TF32) on the same GPU;
#   3. inference: crates/caption-model/examples/device_check.rs (Inception v3 parity with the
#      torchvision fixtures, eval forward at batch 1 and 32, greedy decoding of 50 steps and beam
#      search (beam 3, 20 steps) on the backend and on candle's tensor operations), built with `cuda` (candle's im2col convolution)
#      and with `cudnn` (the backend's cuDNN convolutions), then torchvision and the PyTorch decoder;
#   4. the table (tools/device/cuda_table.py), also in $OUT/table.md.
#      Each phase's peak GPU memory comes with it.
# Expects the binaries tools/device/build.sh makes on a CPU machine, in .device/check/.
# then: run(command="bash tools/device/cuda_check.sh", carry=[".device/check"], timeout_s=560).
set -u
source tools/device/unpack.sh
SECONDS=0
# GPU memory in use every 100 ms, and when each phase starts: the table reads each phase's peak.
nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 100 > $out/gpu_memory.csv 2>&1 &
sampler=$!
phase() { echo "$(date '+%Y/%m/%d %H:%M:%S.%3N'),$*" >> $out/phases.csv; }

echo "== 1. parity: the CUDA backend against the CPU backend"
# What each test printed that matters: its name, its differences, and a failure with its message.
summary() { awk '/^test |largest difference|test result/ { print } /panicked/ { print; getline; print }'; }
timeout 150 $bin/cuda_backend --ignored --test-threads 1 --nocapture 2>&1 | tee $out/parity.log | summary
if [ -x $bin/cuda_backend_cudnn ]; then
  echo "-- with cuDNN's convolutions"
  timeout 60 $bin/cuda_backend_cudnn --ignored --test-threads 1 --nocapture inception 2>&1 | tee $out/parity_cudnn.log | summary
fi
echo "parity after $SECONDS s"

echo "== 2. speed: caption on CUDA (backend, then reference path), then the PyTorch original"
# train_bench_cudnn (cuDNN's convolutions in the seed step) when it starts, else train_bench.
train_bench=$bin/train_bench_cudnn
$train_bench --device none > /dev/null 2>&1; [ $? -eq 127 ] && train_bench=$bin/train_bench  # 127: not loadable
echo "-- $train_bench"
phase "caption train_bench (frozen, decoder, seed, finetune)"
timeout 150 $train_bench --device cuda --seed-steps 10 --finetune 2>&1 | tee $out/ours.jsonl
phase "caption reference path (frozen, decoder)"
CAPTION_REFERENCE_PATH=1 timeout 120 $train_bench --device cuda --seed-steps 0 2>&1 | tee $out/reference.jsonl
phase "PyTorch bench_train_torch (frozen, seed, finetune; strict and TF32)"
timeout 180 python3 tools/train/bench_train_torch.py --device cuda --seed-steps 10 --finetune 2>&1 | tee $out/torch.jsonl
phase "end"
echo "speed after $SECONDS s"

echo "== 3. inference: Inception v3 and greedy decoding, then torchvision and the PyTorch decoder"
FIXTURES=crates/caption-model/tests/fixtures timeout 120 $bin/device_check --device cuda 2>&1 | tee $out/inference.jsonl
if [ -x $bin/device_check_cudnn ]; then
  echo "-- with cuDNN's convolutions"
  FIXTURES=crates/caption-model/tests/fixtures timeout 120 $bin/device_check_cudnn --device cuda 2>&1 \
    | sed 's/"bench": "inception_v3 forward eval f32"/"bench": "inception_v3 forward eval f32", "cudnn": true/' \
    | tee $out/inference_cudnn.jsonl
fi
timeout 90 python3 tools/model/bench_inception_torch.py --device cuda 2>&1 | tee $out/torch_inference.jsonl
timeout 60 python3 tools/model/bench_decoder_torch.py --device cuda 2>&1 | tee -a $out/torch_inference.jsonl
echo "inference after $SECONDS s"

echo "== 4. table"
kill $sampler 2>/dev/null
cat $out/inference_cudnn.jsonl >> $out/inference.jsonl 2>/dev/null
python3 tools/device/cuda_table.py $out/ours.jsonl $out/reference.jsonl $out/torch.jsonl \
  $out/inference.jsonl $out/torch_inference.jsonl --memory $out/gpu_memory.csv $out/phases.csv | tee $out/table.md
