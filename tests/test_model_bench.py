"""The generic per-stage benchmark (benchmarks.model_bench) with a fake spec: the worker's
measurement loop, per-stage summaries, ratios against ours, tables and Markdown, and its errors.
No timed asserts: performance numbers live in reports/, not in tests."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from tests.helpers import assert_close

from benchmarks import model_bench
from parity import registry
from parity.spec import BenchSpec, BenchStage

CALLS: dict[str, list[int]] = {}
SLEEP_S = {"encode": 0.02, "decode": 0.01}  # each fake stage's minimum duration


def fake_build(engine: str, dtype: str, audio: np.ndarray) -> list[BenchStage]:
    """Two stages that record how often they ran and on what input length."""
    if audio.ndim != 1 or audio.dtype != np.float32:
        raise ValueError("expected 1-D float32 audio")
    seconds = audio.size / 16000

    def stage(name):
        def run():
            CALLS.setdefault(f"{engine}.{name}", []).append(audio.size)
            time.sleep(SLEEP_S[name])
            return float(np.sum(audio * audio))
        return BenchStage(name, run, seconds)

    return [stage("encode"), stage("decode")]


@pytest.fixture
def fake_spec(monkeypatch):
    spec = dataclasses.replace(registry.get("whisper-test-tiny"), name="fake-bench",
                               bench=BenchSpec(engines=("mlx", "torch"), build=fake_build,
                                               audio_seconds=0.5))
    monkeypatch.setitem(registry.REGISTRY, "fake-bench", spec)
    CALLS.clear()
    return spec


def test_measure_runs_warmup_and_repeats(tmp_path, fake_spec):
    clip = tmp_path / "clip.npy"
    np.save(clip, np.full(8000, 0.1, dtype=np.float32))
    out = model_bench.measure({"model": "fake-bench", "engine": "torch", "dtype": "float32",
                               "threads": 1, "repeats": 3, "clip": str(clip)})
    assert [s["name"] for s in out["stages"]] == ["encode", "decode"]
    assert [len(s["wall_s"]) for s in out["stages"]] == [3, 3]
    assert CALLS == {"torch.encode": [8000] * 4, "torch.decode": [8000] * 4}  # warm-up + 3
    assert out["mlx_peak_bytes"] is None and out["peak_rss_bytes"] > 0
    ours = model_bench.measure({"model": "fake-bench", "engine": "mlx", "dtype": "float32",
                                "threads": 1, "repeats": 2, "clip": str(clip)})
    assert ours["mlx_peak_bytes"] >= 0 and ours["blas"]["library"]
    for r in (out, ours):  # the numbers are measurements: finite, positive, each stage's own
        assert 0 <= r["load_s"] < 60 and r["peak_rss_bytes"] >= r["rss_at_start_bytes"] > 0
        for st in r["stages"]:
            assert st["audio_seconds"] == 0.5
            assert all(np.isfinite(w) and w >= SLEEP_S[st["name"]] for w in st["wall_s"]), st
    # summaries and ratios are computed from those times
    s = {"torch": model_bench.summarize_stages(out), "mlx": model_bench.summarize_stages(ours)}
    model_bench.add_ratios(s)
    for name, torch_st, mlx_st in zip(("encode", "decode"), out["stages"], ours["stages"]):
        t, m = s["torch"]["stages"][name], s["mlx"]["stages"][name]
        assert_close(f"{name} median", t["wall_s"]["median"], np.median(torch_st["wall_s"]))
        assert_close(f"{name} rtf", t["rtf"]["median"], np.median(torch_st["wall_s"]) / 0.5,
                     rtol=1e-12)
        assert_close(f"{name} ratio", t["time_vs_ours"],
                     np.median(torch_st["wall_s"]) / np.median(mlx_st["wall_s"]), rtol=1e-12)
        assert m["time_vs_ours"] == 1.0


def test_summaries_ratios_and_markdown():
    def result(engine, enc, dec):
        return {"engine": engine, "load_s": 0.5, "peak_rss_bytes": 100 * 2**20,
                "mlx_peak_bytes": None, "mlx_peak_run_bytes": None,
                "stages": [{"name": "encode", "audio_seconds": 10.0, "wall_s": enc},
                           {"name": "decode", "audio_seconds": 10.0, "wall_s": dec}]}
    s = {"mlx": model_bench.summarize_stages(result("mlx", [1.0, 2.0, 3.0], [0.5, 0.5, 0.5])),
         "torch": model_bench.summarize_stages(result("torch", [4.0, 4.0, 4.0], [0.25] * 3))}
    model_bench.add_ratios(s)
    assert_close("ratios", [s["torch"]["stages"]["encode"]["time_vs_ours"],
                            s["torch"]["stages"]["decode"]["time_vs_ours"],
                            s["mlx"]["stages"]["encode"]["rtf"]["median"]],
                 [2.0, 0.5, 0.2], atol=1e-12)
    rep = {"summaries": s, "failed": {"other": "RuntimeError: boom"}}
    rows = model_bench.table_rows(rep)
    assert [r[:2] for r in rows] == [["mlx", "encode"], ["mlx", "decode"], ["torch", "encode"],
                                     ["torch", "decode"], ["other", "FAILED: RuntimeError: boom"]]
    assert model_bench.headline(rep) == ["encode: torch takes 2.00x ours' time (ours 2.00x faster)",
                                         "decode: torch takes 0.50x ours' time (ours 2.00x slower)"]


def test_run_errors(fake_spec):
    with pytest.raises(ValueError, match="no BenchSpec"):
        model_bench.run("whisper-test-tiny")
    with pytest.raises(ValueError, match="unknown engines"):
        model_bench.run("fake-bench", engines=["onnx"])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        model_bench.run("fake-bench", repeats=0)
    with pytest.raises(ValueError, match="bench dtype"):
        model_bench.run("fake-bench", dtype="float16")
