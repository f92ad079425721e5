"""benchmarks.gpu through the one runner: the spec's random weights every engine loads, the GPU
entries made from runner results, the report's token agreement, and the CPU refusal."""

from __future__ import annotations

import pytest

from benchmarks import engines, gpu
from benchmarks.prepare import random_checkpoint
from parity.models.whisper import TINY_EN_DIMS, random_state
from tests.helpers import assert_close


def test_random_checkpoint_is_the_specs_random_state(tmp_path):
    from weights.whisper import load

    path = random_checkpoint("whisper-tiny.en", seed=3, cache=tmp_path)
    w = load(path)  # what every engine reads (ours through mlx_impl.whisper's loader)
    assert w.dims == TINY_EN_DIMS and (path / "tokenizer.json").is_file()
    want = random_state(TINY_EN_DIMS, 3)
    assert sorted(w.state) == sorted(want)
    for name in ("encoder.conv1.weight", "decoder.blocks.3.mlp.2.weight",
                 "decoder.token_embedding.weight", "encoder.positional_embedding"):
        assert_close(name, w.state[name], want[name], atol=0.0)
    stamp = (path / "source.json").stat().st_mtime_ns
    assert random_checkpoint("whisper-tiny.en", seed=3, cache=tmp_path) == path
    assert (path / "source.json").stat().st_mtime_ns == stamp  # cached, not rebuilt


def _result(stages, **extra):
    return {"load_s": 1.5, "peak_rss_bytes": 2**30, "mlx_peak_bytes": None, "stages": stages,
            "engine_info": {"api": "x"}} | extra


def test_gpu_entry_in_ms_per_token_and_call():
    facts = {"text": "hello", "n_tokens": 30, "n_windows": 1, "decoder_calls": 40,
             "encoder_s": 0.01}
    r = _result([{"name": "encode", "wall_s": [0.010, 0.012, 0.011]},
                 {"name": "decode", "wall_s": [0.5, 0.4],
                  "facts": [{"tokens": 100, "tokens_head": [1, 2]}] * 2},
                 {"name": "transcribe", "wall_s": [0.8], "facts": [facts]}])
    e = gpu.gpu_entry("ours", "fp16", r)
    assert_close("encoder ms", [e["encoder"]["median"], e["encoder"]["max"]], [11.0, 12.0],
                 atol=1e-9)
    assert_close("per token ms", e["decode"]["per_token_ms"]["median"], 4.5, atol=1e-9)
    assert e["decode"]["tokens_head"] == [1, 2] and e["transcribe"]["decoder_calls"] == 40
    assert gpu._per_call(e["transcribe"]) == "20.00"  # 800 ms / 40 calls
    failed = gpu.gpu_entry("transformers", "fp16", {"engine": "transformers", "error": "boom"})
    assert failed["errors"] == {"worker": "boom"}
    md = gpu.markdown({"benchmark": "b", "machine": {}, "model": "whisper-base", "seed": 0,
                       "tokens": 100, "repeats": 1, "runs": [e, failed]})
    row = "| ours | fp16 | 11.00 [10.00-12.00] | 4.50 [4.00-5.00] | - | 800.00 | 40 | 20.00 |"
    assert row in md


def _run(engine, precision, tokens):
    return {"engine": engine, "precision": precision, "decode": {"tokens_head": tokens}}


def test_agreement_reports_first_mismatch():
    runs = [_run("ours", "fp32", [1, 2, 3, 4]), _run("openai-whisper", "fp32", [1, 2, 9, 4]),
            _run("transformers", "fp32", [1, 2, 3, 4])]
    got = gpu._agreement(runs)
    assert got == {"openai-whisper fp32": "first differs at 2",
                   "transformers fp32": "same first 4 tokens"}, got


def test_ours_refuses_cpu_for_a_gpu_run():
    mx = pytest.importorskip("mlx.core")
    if mx.default_device() != mx.cpu:
        pytest.skip("MLX runs on a GPU here; the refusal is for CPU-only MLX")
    with pytest.raises(RuntimeError, match="not a GPU"):
        engines.Ours({"model": "unused"}, "float32", 1, engines.WhisperRun(device="gpu"))
    with pytest.raises(ValueError, match="runs here on the CPU"):
        engines.FasterWhisper({"path": "unused"}, "float32", 1, engines.WhisperRun(device="gpu"))


def test_ours_stages_and_quantized_run_on_the_specs_random_weights(tmp_path):
    """The encode/decode stages of ours (the GPU bench's; run here on the CPU), float32 and q8:
    the quantized engine reports its layers and decodes from the same window."""
    pytest.importorskip("mlx.core")
    import mlx.nn as nn
    import numpy as np

    prepared = {"model": str(random_checkpoint("whisper-tiny.en", seed=3, cache=tmp_path))}
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    heads = {}
    for bits in (None, 8):
        eng = engines.Ours(prepared, "float32", 1, engines.WhisperRun(quantize=bits))
        window = eng.window(audio)
        assert tuple(window.shape) == (1, 3000, 80)
        heads[bits] = eng.greedy(eng.encode(window), 4)
        quantized = [m for _, m in eng.model.named_modules() if isinstance(m, nn.QuantizedLinear)]
        assert bool(quantized) == (bits is not None)
        assert ("quantized" in eng.info) == (bits is not None)
    assert len(heads[None]) == len(heads[8]) == 4
    assert "quantized" in engines.Ours(prepared, "float32", 1, engines.WhisperRun(
        quantize=4, group_size=32)).info["quantized"]


def test_quantize_is_ours_only_and_checked():
    with pytest.raises(ValueError, match="--quantize 3"):
        engines.WhisperRun(quantize=3)
    bench = engines.whisper_bench("whisper-tiny.en", run=engines.WhisperRun(quantize=8))
    with pytest.raises(ValueError, match="ours' MLX quantization"):
        bench.build("openai-whisper", "float32", None)
