#!/usr/bin/env bash
# Install the carried MLX-CUDA build and the torch peers' missing packages, then run benchmarks.gpu
# (the one benchmark runner, once per precision, on seeded random whisper-base weights that
# benchmarks.prepare.random_checkpoint writes to /tmp/bench-cache with the carried tokenizer.json).
#
# Runs on the device machine from the repository root: bash benchmarks/gpu_device.sh CARRY OUT [ARGS]
# CARRY holds the mlx-cuda-13 wheel in three pieces (one call's transfer limit is 64 MiB; made with
# `split -n 3 -d -a 1 WHEEL WHEEL.part`), the mlx, openai-whisper, more-itertools, soundfile, cffi
# and pycparser wheels, and the multilingual tokenizer.json. The CUDA 13 libraries mlx-cuda-13
# needs (cublas, cudnn, cufft, cusolver, nvrtc, nccl, cuda-runtime) are the torch install's.
#
# Not run since benchmarks.gpu moved onto the one runner (2026-12-04): untested on a GPU; the
# same path ran on the CPU (--allow-cpu). The parent now also imports parity/ and weights/
# (numpy only) and transformers' save_pretrained (safetensors); jiwer is optional (no WER).
# How it was run (2026-11-27): the pieces in .gpu_a/.gpu_b/.gpu_c (listed in .git/info/exclude),
# one per device call, each call copying its folder to /tmp/carry on the warm machine, the third
# then running `bash benchmarks/gpu_device.sh /tmp/carry $OUT --deadline-s 520`. Every call also
# sends the tracked tree, and golden/ + reports/ (75 MB) exceed the 64 MiB a call may carry: for
# those calls they were taken out of the index (`git rm -r --cached -q golden reports`, both
# listed in .git/info/exclude) and put back right after (`git reset -q golden reports`).
set -euo pipefail
carry=$1
out=$2
shift 2
wheel=mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl
cat "$carry/$wheel.part0" "$carry/$wheel.part1" "$carry/$wheel.part2" > "/tmp/$wheel"
echo "94cb48fba73e5ee39467e51c35c51c691123359ca17bafd1a24cf92ad6732bee  /tmp/$wheel" | sha256sum -c -
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "/tmp/$wheel" "$carry"/*.whl
site_packages=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
# libmlx.so finds its CUDA libraries through RPATH $ORIGIN/../../nvidia/...: point that at torch's.
[ -e /tmp/site/nvidia ] || ln -s "$site_packages/nvidia" /tmp/site/nvidia
export PYTHONPATH=/tmp/site
if [ -z "${CUDA_HOME:-}" ] && [ -f /usr/local/cuda/include/cuda_runtime.h ]; then
    export CUDA_HOME=/usr/local/cuda  # headers for MLX's run-time kernel compilation (NVRTC)
fi
export MLX_PTX_CACHE_DIR=/tmp/mlx_ptx PYTHONUNBUFFERED=1
python3 - <<'PY'
import mlx.core as mx
a = mx.random.normal((512, 512))
print("mlx", mx.__version__, "default device", mx.default_device(), "cuda",
      getattr(getattr(mx, "cuda", None), "is_available", lambda: None)(), "matmul check", float(mx.abs(a @ mx.eye(512) - a).max()))
PY
set -o pipefail
python3 -m benchmarks.gpu --out "$out/gpu.json" --tokenizer-json "$carry/tokenizer.json" \
    --cache-dir /tmp/bench-cache "$@" 2>&1 \
    | tee "$out/log.txt"
