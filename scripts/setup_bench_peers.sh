#!/usr/bin/env bash
# Optional, bench only: mlx-audio 0.6.2, the TTS benchmarks' same-framework peer
# (benchmarks/tts_peers.py), into an isolated folder outside .venv's site-packages:
#   <cache>/peers/mlx-audio-0.6.2   (cache: the first argument, else ~/.cache/mlx-audio-parity,
#   benchmarks.prepare.DEFAULT_CACHE; pass the same folder as `python -m benchmarks run --cache-dir`)
# `pip install --no-deps --target`: its declared requirements would move our pins (it requires
# transformers[chat-template] >= 5.14, mlx == 0.32.4, huggingface_hub >= 1.0, ...); the ones its
# Orpheus path imports are already in .venv at our versions (mlx 0.32.4, transformers,
# huggingface_hub, numpy, scipy, tqdm, jinja2). miniaudio, sentencepiece and sounddevice are
# imported lazily by other models' code only and are not installed. The benchmark worker puts
# the folder first on sys.path and checks the version. `make bench-peers` runs this; make setup
# does not (nothing but `make bench` of a TTS model uses it). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CACHE=${1:-$HOME/.cache/mlx-audio-parity}
TARGET="$CACHE/peers/mlx-audio-0.6.2"
if [ -f "$TARGET/mlx_audio-0.6.2.dist-info/METADATA" ]; then
  echo "setup_bench_peers: mlx-audio 0.6.2 already in $TARGET"
  exit 0
fi
tmp="$TARGET.tmp.$$"
rm -rf "$tmp"
"$PY" -m pip install -q --no-deps --target "$tmp" "mlx-audio==0.6.2"
rm -rf "$TARGET"
mv "$tmp" "$TARGET"
echo "setup_bench_peers: mlx-audio 0.6.2 installed in $TARGET"
