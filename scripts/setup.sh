#!/usr/bin/env bash
# One-shot set-up of a fresh machine: system packages (Debian), .venv, project, openai-whisper.
# Idempotent; `make setup` runs it when pyproject.toml or this script changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# System packages: OpenBLAS (MLX's Linux CPU wheel bundles a ~65x slower reference BLAS; mlx_impl
# loads OpenBLAS when MKL is absent), libgomp1 (MKL's GNU threading layer), espeak-ng (regenerates
# fixtures), ffmpeg (non-wav/flac/ogg input).
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for pkg in libopenblas0-pthread libgomp1 espeak-ng ffmpeg cmake g++; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned exactly in pyproject.toml (torch==2.13.0, a CPU build); a range would pull CUDA.
.venv/bin/python -m pip install -q -e ".[dev,bench,refs]"
# openai-whisper's metadata pulls triton (~1 GB, useless on CPU): install it without deps; its
# real runtime deps (numba, tqdm, more-itertools, tiktoken, torch, numpy) are in pyproject.toml.
.venv/bin/python -m pip install -q --no-deps "openai-whisper==20250625"
# Upstream codec/vocoder references whose metadata would pull a CUDA torchaudio/torch or training
# tools (pre-commit, tensorboard, pesq): installed without deps; their real runtime deps (einops,
# librosa, onnx, pyyaml, huggingface-hub) are in pyproject.toml's `refs` extra.
.venv/bin/python -m pip install -q --no-deps "vocos==0.1.0" "encodec==0.1.1" "snac==1.2.1" \
  "s3tokenizer==0.3.0" "bigvgan==2.4.1"
# torchaudio: PyPI only has CUDA builds, whose C++ extension fails to load against the CPU torch
# 2.13.0. vocos/encodec/s3tokenizer use only its pure-Python parts (transforms.MelSpectrogram,
# functional), which run without the extension: torchaudio itself skips the extension when its
# lib/*.so files are absent (the path it uses for pex deployments). So install the wheel without
# deps and delete those three .so files; any call that really needs the extension raises.
.venv/bin/python -m pip install -q --no-deps "torchaudio==2.11.0"
rm -f "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"/torchaudio/lib/*.so
# Intel MKL for MLX's CPU matmuls on x86-64 Linux (mlx_impl/_blas.py loads it before mlx; ~20%
# faster products than OpenBLAS here). --no-deps: its metadata pulls intel-openmp and tbb, but
# mlx_impl runs it on the GNU OpenMP runtime (libgomp, which g++ brings). MLX_IMPL_BLAS=openblas
# runs without it.
if [ "$(uname)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
  .venv/bin/python -m pip install -q --no-deps "mkl==2026.2.0"
fi
# Vectorised CPU kernels for softmax/GELU (MLX's CPU transcendentals are scalar libm); Linux only,
# the Metal/CUDA paths use MLX's native ops. Needs cmake >= 3.24 and g++ with C++20.
if [ "$(uname)" = Linux ]; then .venv/bin/python mlx_impl/_cpu_ext/build.py; fi
touch .venv/.setup-done
echo "setup: done ($(.venv/bin/python -c 'import mlx.core, torch; print("mlx", mlx.core.__version__, "torch", torch.__version__)'))"
