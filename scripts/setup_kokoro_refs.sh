#!/usr/bin/env bash
# The Kokoro reference (`kokoro` 0.9.4, hexgrad) into an isolated folder outside .venv:
#   <cache>/refs/kokoro   (cache: the first argument, else ~/.cache/mlx-audio-parity;
#   reference/kokoro.py looks there, or in $KOKORO_REFS)
# `pip install --no-deps --target`: kokoro's declared requirements (misaki[en] with spacy and a
# spaCy model download, huggingface_hub, ...) would move our pins and are not needed: the
# reference adapter imports only kokoro.model / modules / istftnet (torch and transformers from
# .venv, at our versions) and feeds phoneme ids, so misaki's G2P is not used. loguru is the one
# extra import those modules need. Idempotent; offline-safe when the wheels are in pip's index
# or cache. `make kokoro-refs` runs it, and `make setup` (scripts/setup.sh) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CACHE=${1:-$HOME/.cache/mlx-audio-parity}
TARGET="$CACHE/refs/kokoro"
if [ -f "$TARGET/kokoro-0.9.4.dist-info/METADATA" ] && [ -d "$TARGET/loguru" ]; then
  echo "setup_kokoro_refs: kokoro 0.9.4 already in $TARGET"
  exit 0
fi
tmp="$TARGET.tmp.$$"
rm -rf "$tmp"
"$PY" -m pip install -q --no-deps --target "$tmp" "kokoro==0.9.4" "loguru==0.7.3"
rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
mv "$tmp" "$TARGET"
echo "setup_kokoro_refs: kokoro 0.9.4 installed in $TARGET"
