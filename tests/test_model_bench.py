"""The benchmark runner's per-stage path (benchmarks.runner, benchmarks.worker) with a fake spec:
the worker's measurement loop, per-stage summaries, ratios against ours, tables, Markdown and
errors, and one real run of a test-tiny spec in fresh processes.
No timed asserts: performance numbers live in reports/, not in tests."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from tests.helpers import assert_close

from benchmarks import runner, worker
from parity import registry
from parity.spec import BenchSpec, BenchStage

CALLS: dict[str, list[int]] = {}


def fake_build(engine: str, dtype: str, audio: np.ndarray) -> list[BenchStage]:
    """Two stages that record how often they ran and on what input length; the "mlx" engine
    computes with MLX (so its process has an MLX peak), the other with numpy."""
    if audio.ndim != 1 or audio.dtype != np.float32:
        raise ValueError("expected 1-D float32 audio")
    seconds = audio.size / 16000
    if engine == "mlx":  # imported while building, as a real MLX engine does
        import mlx.core as mx

    def stage(name):
        def run():
            CALLS.setdefault(f"{engine}.{name}", []).append(audio.size)
            if engine == "mlx":
                return mx.sum(mx.square(mx.array(audio))).item()
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
    job = {"model": "fake-bench", "threads": 1, "clip": str(clip), "cache": str(tmp_path)}
    out = worker.measure(dict(job, engine="torch", dtype="float32", repeats=3))
    assert [s["name"] for s in out["stages"]] == ["encode", "decode"]
    assert [len(s["wall_s"]) for s in out["stages"]] == [3, 3]
    assert CALLS == {"torch.encode": [8000] * 4, "torch.decode": [8000] * 4}  # warm-up + 3
    assert out["peak_rss_bytes"] > 0 and out["load_s"] >= 0
    assert "facts" not in out["stages"][0]  # the stages return floats, not facts
    ours = worker.measure(dict(job, engine="mlx", dtype="float32", repeats=1))
    assert ours["mlx_peak_run_bytes"] >= 8000 * 4 and ours["blas"]["library"]
    assert ours["mlx_peak_bytes"] == max(ours["mlx_peak_load_bytes"], ours["mlx_peak_run_bytes"])
    assert CALLS["mlx.encode"] == [8000] * 2


def test_summaries_ratios_and_markdown():
    def result(engine, enc, dec):
        return {"engine": engine, "load_s": 0.5, "peak_rss_bytes": 100 * 2**20,
                "mlx_peak_bytes": None, "mlx_peak_run_bytes": None,
                "stages": [{"name": "encode", "audio_seconds": 10.0, "wall_s": enc},
                           {"name": "decode", "audio_seconds": 10.0, "wall_s": dec}]}
    s = {"mlx": runner.summarize_stages(result("mlx", [1.0, 2.0, 3.0], [0.5, 0.5, 0.5])),
         "torch": runner.summarize_stages(result("torch", [4.0, 4.0, 4.0], [0.25] * 3))}
    runner.add_ratios(s, "mlx")
    assert_close("ratios", [s["torch"]["stages"]["encode"]["time_vs_ours"],
                            s["torch"]["stages"]["decode"]["time_vs_ours"],
                            s["mlx"]["stages"]["encode"]["rtf"]["median"]],
                 [2.0, 0.5, 0.2], atol=1e-12)
    rep = {"kind": "stages", "summaries": s, "failed": {"other": "RuntimeError: boom"}}
    rows, columns = runner.report_table(rep)
    assert columns == runner.STAGE_COLUMNS
    assert [r[:2] for r in rows] == [["mlx", "encode"], ["mlx", "decode"], ["torch", "encode"],
                                     ["torch", "decode"], ["other", "FAILED: RuntimeError: boom"]]
    assert rows[2] == ["torch", "encode", "0.4000 [0.4000-0.4000]", "4.000 [4.000-4.000]", "2.00x",
                       "0.50", "100", "-"]
    assert rows[0][2:5] == ["0.2000 [0.1000-0.3000]", "2.000 [1.000-3.000]", "1.00x"]
    assert runner.headline(s, "mlx") == [
        "encode: torch takes 2.00x ours' time (ours is 2.00x faster)",
        "decode: torch takes 0.50x ours' time (ours is 2.00x slower)"]


def test_run_errors(fake_spec):
    with pytest.raises(ValueError, match="no BenchSpec"):
        runner.run("whisper-test-tiny")
    with pytest.raises(ValueError, match="unknown engines"):
        runner.run("fake-bench", engines=["onnx"])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        runner.run("fake-bench", repeats=0)
    with pytest.raises(ValueError, match="bench dtype"):
        runner.run("fake-bench", dtype="float16")


def test_run_tiny_spec_in_fresh_processes(tmp_path):
    """One real run: both engines of a test-tiny vocoder, each in its own process, one repeat."""
    rep = runner.run("vocos-mel-test-tiny", repeats=1, threads=1, command="test")
    assert rep["failed"] == {} and rep["kind"] == "stages" and rep["ours"] == "mlx"
    s = rep["summaries"]
    assert list(s) == ["mlx", "torch"] and all(list(x["stages"]) == ["vocode"] for x in s.values())
    mlx, torch = s["mlx"]["stages"]["vocode"], s["torch"]["stages"]["vocode"]
    assert mlx["wall_s"]["n"] == 1 and mlx["wall_s"]["median"] > 0
    assert_close("audio seconds", mlx["audio_seconds"], 10.0, atol=1e-9)
    assert_close("rtf", mlx["rtf"]["median"], mlx["wall_s"]["median"] / 10.0, atol=1e-12)
    assert_close("ratios", [mlx["time_vs_ours"], torch["time_vs_ours"]],
                 [1.0, torch["wall_s"]["median"] / mlx["wall_s"]["median"]], atol=1e-12)
    # MLX's own peak only where MLX ran; both processes' VmHWM
    assert s["mlx"]["mlx_peak_bytes"] >= s["mlx"]["mlx_peak_run_bytes"] > 0
    assert s["torch"]["mlx_peak_bytes"] is None and s["torch"]["peak_rss_bytes"] > 0
    js, md = runner.write(rep, tmp_path)
    text = md.read_text()
    assert "| engine | stage | RTF | wall s | time / ours |" in text and "| mlx | vocode |" in text
    assert json.loads(js.read_text())["summaries"]["torch"]["stages"]["vocode"][
        "time_vs_ours"] == torch["time_vs_ours"]
