#!/usr/bin/env bash
# On the lent GPU machine: join the carried wheels, install them beside the machine's torch, then
# run a benchmark command with MLX-CUDA.
#
#   bash benchmarks/gpu_device.sh PARTS -- python3 -m benchmarks.gpu_matrix --out $OUT/m.json ...
#
# PARTS is the folder the device calls copied their pieces into (scripts/device_carry.py; its
# docstring has the whole procedure). The carried wheels: mlx-cuda-13 0.32.4 (86 MiB, the pieces
# of two calls), mlx 0.32.4 for the machine's Python 3.12, and the reference packages its image
# lacks (snac, vocos, encodec, bigvgan with librosa and librosa's own: audioread, soxr, soundfile,
# pooch, decorator, platformdirs); torch, transformers, scipy, numba and the CUDA 13 libraries
# MLX needs (cublas, cudnn, cufft, cusolver, nvrtc, nccl, cuda-runtime) are the image's. How the
# wheels were fetched: `pip download --no-deps --only-binary=:all: --python-version 3.12
# --platform manylinux_2_35_x86_64 ...` on this side (encodec has no wheel: `pip wheel` of its
# sdist).
#
# Ran on 2026-12-06 (reports/bench/gpu-matrix.md). Before that (2026-11-27) the same install ran
# by hand steps with whisper's benchmarks.gpu (reports/bench/gpu-h100*.md).
set -euo pipefail
parts=$1
shift
[ "${1:-}" = "--" ] && shift
python3 scripts/device_carry.py unpack "$parts" --to /tmp/carry
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site /tmp/carry/*.whl
site_packages=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
# libmlx.so finds its CUDA libraries through RPATH $ORIGIN/../../nvidia/...: point that at torch's.
[ -e /tmp/site/nvidia ] || ln -s "$site_packages/nvidia" /tmp/site/nvidia
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if [ -z "${CUDA_HOME:-}" ] && [ -f /usr/local/cuda/include/cuda_runtime.h ]; then
    export CUDA_HOME=/usr/local/cuda  # headers for MLX's run-time kernel compilation (NVRTC)
fi
export MLX_PTX_CACHE_DIR=/tmp/mlx_ptx PYTHONUNBUFFERED=1
python3 - <<'PY'
import mlx.core as mx
a = mx.random.normal((512, 512))
print("mlx", mx.__version__, "default device", mx.default_device(), "gpu",
      mx.is_available(mx.gpu), "matmul check", float(mx.abs(a @ mx.eye(512) - a).max()))
PY
exec "$@"
