#!/usr/bin/env bash
# The Spark-TTS reference (`spark-tts-lib` 0.2.1, SparkAudio's BiCodec) into an isolated folder
# outside .venv:
#   <cache>/refs/spark   (cache: the first argument, else ~/.cache/mlx-audio-parity;
#   reference/spark.py looks there, or in $SPARK_REFS)
# `pip install --no-deps --target`: spark-tts-lib's declared requirements (pinned torch,
# transformers, gradio, ...) would move our pins and are not needed. What its BiCodec modules
# import that .venv lacks: einx (residual FSQ's `get_at`, needs frozendict) and omegaconf
# (`utils.file.load_config`, the reader of BiCodec's config.yaml; needs antlr4-python3-runtime
# 4.9.*). torch, torchaudio, transformers, einops, soxr, soundfile, safetensors come from .venv
# at our versions. The package `__init__` imports its downloader (`retrying`) and is not run:
# reference/spark.py registers the package without it. Idempotent; offline-safe when the
# wheels are in pip's index or cache. `make setup` (scripts/setup.sh) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CACHE=${1:-$HOME/.cache/mlx-audio-parity}
TARGET="$CACHE/refs/spark"
if [ -f "$TARGET/spark_tts_lib-0.2.1.dist-info/METADATA" ] && [ -d "$TARGET/einx" ] \
   && [ -d "$TARGET/omegaconf" ] && [ -d "$TARGET/antlr4" ] && [ -d "$TARGET/frozendict" ]; then
  echo "setup_spark_refs: spark-tts-lib 0.2.1 already in $TARGET"
  exit 0
fi
tmp="$TARGET.tmp.$$"
rm -rf "$tmp"
"$PY" -m pip install -q --no-deps --target "$tmp" "spark-tts-lib==0.2.1" "einx==0.4.3" \
  "frozendict==2.5.1" "omegaconf==2.4.0" "antlr4-python3-runtime==4.9.3"
rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
mv "$tmp" "$TARGET"
echo "setup_spark_refs: spark-tts-lib 0.2.1 installed in $TARGET"
