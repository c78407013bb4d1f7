# Sourced by the GPU machine's scripts (tools/device/cuda_check.sh, tools/device/cuda_pipeline.sh)
# from the repository root: the loader pointed at the CUDA 13 (and cuDNN 9) libraries of the
# machine's PyTorch venv, the binaries carried in .device/*.xz unpacked into $bin, $out set to the
# device tool's output folder, and the GPU named. The binaries come in .device/check/ or
# .device/pipeline/ (tools/device/build.sh), whichever the call carried.
export LD_LIBRARY_PATH="$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' :)${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp}
bin=/tmp/caption-bin && mkdir -p $bin
for f in $(find .device -name '*.xz' 2>/dev/null); do
  xz -dc "$f" > "$bin/$(basename "$f" .xz)" && chmod +x "$bin/$(basename "$f" .xz)"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
