"""Benchmark plumbing on tiny inputs: statistics, clip building, weight layouts, the worker's
measurement loop (with a fake engine), summaries, tables and the success-metric report.
No timed asserts: performance numbers live in reports/, not in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tests.helpers import assert_close

from benchmarks import clips, engines, machine, report, runner, worker
from benchmarks.prepare import mlx_whisper_layout
from benchmarks.stats import spread_str, summarize

# --- statistics ------------------------------------------------------------------------------


def test_summarize_values():
    s = summarize([4.0, 1.0, 3.0, 2.0, 10.0])
    got = [s["median"], s["min"], s["max"], s["q1"], s["q3"], s["iqr"], s["mean"]]
    assert_close("summary", got, [3.0, 1.0, 10.0, 2.0, 4.0, 2.0, 4.0], atol=1e-12)
    assert s["n"] == 5


def test_summarize_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="at least one timed repeat"):
        summarize([])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, float("nan")])


def test_spread_str():
    assert spread_str(summarize([0.5]), fmt="{:.2f}") == "0.50"
    assert spread_str(summarize([1, 2, 3]), scale=1000, fmt="{:.0f}") == "2000 [1000-3000]"


# --- clip ------------------------------------------------------------------------------------


def _write_clips(folder, specs):
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for cid, seconds, value in specs:
        sf.write(folder / f"{cid}.wav", np.full(int(seconds * 16000), value, np.float32), 16000,
                 subtype="FLOAT")
        lines.append(json.dumps({"id": cid, "file": f"{cid}.wav", "language": "en",
                                 "text": f"text {cid}"}))
    lines.append(json.dumps({"id": "de1", "file": "de1.wav", "language": "de", "text": "x"}))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def test_clip_whole_pieces_then_silence(tmp_path):
    _write_clips(tmp_path / "shared", [("a", 1.0, 0.1), ("b", 0.75, 0.2)])
    c = clips.english_clip(2.0, shared=tmp_path / "shared", fixtures=tmp_path / "none")
    # a (1 s) + b (0.75 s) fit; a again would pass 2 s, so 0.25 s of silence follows
    assert c.pieces == ["a", "b"] and c.cut is None
    assert c.audio.dtype == np.float32 and c.audio.size == 32000
    assert_close("speech_s", c.speech_s, 1.75, atol=1e-9)
    assert_close("pieces", c.audio[[0, 15999, 16000, 27999]], [0.1, 0.1, 0.2, 0.2], atol=1e-7)
    assert_close("padding", c.audio[28000:], np.zeros(4000), atol=0)
    assert c.text == "text a text b"


def test_clip_falls_back_to_fixtures_and_repeats(tmp_path):
    _write_clips(tmp_path / "fixtures", [("f", 0.5, 0.3)])
    c = clips.english_clip(1.6, shared=tmp_path / "absent", fixtures=tmp_path / "fixtures")
    assert c.source == str(tmp_path / "fixtures")
    assert c.pieces == ["f", "f", "f"]
    assert_close("speech_s", c.speech_s, 1.5, atol=1e-9)


def test_clip_resamples_other_rates_and_mixes_channels(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    t = np.arange(4000) / 8000
    left = 0.5 * np.sin(2 * np.pi * 200 * t)
    sf.write(folder / "a.wav", np.stack([left, 0.5 * left], axis=1).astype(np.float32), 8000,
             subtype="FLOAT")
    (folder / "manifest.jsonl").write_text(json.dumps({"id": "a", "file": "a.wav",
                                                       "language": "en", "text": "t"}) + "\n")
    c = clips.english_clip(0.6, shared=folder)
    assert c.pieces == ["a"] and c.audio.dtype == np.float32 and c.audio.size == 9600
    assert_close("speech_s", c.speech_s, 0.5, atol=1e-9)
    # the mean of both channels (0.75 x the left one), a 200 Hz sine at 16 kHz; the ends carry
    # the polyphase filter's edge transients, so the middle is compared
    want = 0.375 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000)
    assert_close("resampled", c.audio[1000:7000], want[1000:7000], atol=2e-3)


def test_manifest_missing_names_the_path(tmp_path):
    from parity.clips import manifest

    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/manifest.jsonl is missing"):
        manifest(tmp_path)
    assert manifest(tmp_path, missing_ok=True) == []


# --- mlx-whisper layout ----------------------------------------------------------------------


def test_mlx_whisper_layout_renames_and_transposes():
    rng = np.random.default_rng(0)
    state = {"encoder.conv1.weight": rng.standard_normal((4, 3, 3)).astype(np.float16),
             "encoder.positional_embedding": np.zeros((5, 4), np.float16),
             "encoder.blocks.0.mlp.0.weight": rng.standard_normal((16, 4)).astype(np.float16),
             "decoder.blocks.1.mlp.2.bias": rng.standard_normal(4).astype(np.float16),
             "decoder.positional_embedding": rng.standard_normal((6, 4)).astype(np.float16)}
    out = mlx_whisper_layout(state, "float32")
    assert sorted(out) == ["decoder.blocks.1.mlp2.bias", "decoder.positional_embedding",
                           "encoder.blocks.0.mlp1.weight", "encoder.conv1.weight"]
    assert all(v.dtype == np.float32 for v in out.values())
    assert_close("conv1 (out,k,in)", out["encoder.conv1.weight"],
                 state["encoder.conv1.weight"].transpose(0, 2, 1), atol=0)
    assert_close("mlp1", out["encoder.blocks.0.mlp1.weight"],
                 state["encoder.blocks.0.mlp.0.weight"], atol=0)


# --- worker loop with a fake Whisper engine ---------------------------------------------------


class _FakeEngine:
    name = "fake"

    def __init__(self, prepared, dtype, threads, run):
        assert run == engines.WhisperRun()  # the CPU defaults: transcribe on real weights
        self.calls = 0
        self.info = {"api": "fake", "threads": threads, "prepared": prepared}

    def run(self, audio):
        self.calls += 1
        return engines.RunOutput(text=f" {audio.size} samples, call {self.calls}", n_tokens=7,
                                 encoder_s=0.25, n_windows=1)


@pytest.fixture
def fake_engine(monkeypatch):
    monkeypatch.setitem(engines.ENGINE_CLASSES, "fake", _FakeEngine)
    monkeypatch.setattr(engines, "prepare", lambda engine, model, dtype, cache: {"model": model})


def _job(tmp_path, audio, **kw):
    clip = tmp_path / "clip.npy"
    np.save(clip, audio)
    return {"model": "whisper-tiny.en", "engine": "fake", "dtype": "float32", "threads": 2,
            "repeats": 3, "clip": str(clip), "cache": str(tmp_path)} | kw


def test_worker_measure_with_fake_engine(tmp_path, fake_engine):
    r = worker.measure(_job(tmp_path, np.zeros(16000, np.float32)))
    (st,) = r["stages"]
    assert st["name"] == "transcribe" and len(st["wall_s"]) == 3  # the warm-up is not among them
    assert_close("audio_seconds", st["audio_seconds"], 1.0, atol=0)
    assert st["warmup_facts"]["text"] == " 16000 samples, call 1"
    assert r["peak_rss_bytes"] > 0 and r["threads"] == 2  # (MLX peak: see test_model_bench)
    t = runner.transcription_result(r)
    assert [x["n_tokens"] for x in t["runs"]] == [7, 7, 7]
    assert_close("encoder_s", [x["encoder_s"] for x in t["runs"]], [0.25] * 3, atol=0)
    assert_close("wall_s", [x["wall_s"] for x in t["runs"]], st["wall_s"], atol=0)
    assert t["text"] == " 16000 samples, call 4"
    assert t["engine_info"] == {"api": "fake", "threads": 2,
                                "prepared": {"model": "whisper-tiny.en"}}
    s = runner.summarize_engine(t, 1.0, "sixteen thousand samples call four")
    assert_close("rtf", s["rtf"]["median"], s["wall_s"]["median"], atol=0)
    assert s["n_tokens"] == 7 and s["n_windows"] == 1


def test_worker_rejects_bad_clip(tmp_path, fake_engine):
    with pytest.raises(ValueError, match="expected 1-D float32 samples"):
        worker.measure(_job(tmp_path, np.zeros((2, 10), np.float64), repeats=1))


def test_engine_dtypes_and_errors():
    bench = engines.whisper_bench("whisper-tiny.en")
    assert bench.engines[0] == "ours" and bench.report == "transcription"
    with pytest.raises(ValueError, match="unknown engines"):
        runner.engine_dtypes(bench, ["ours", "whisper.cpp"], "float32")
    with pytest.raises(ValueError, match="openai-whisper cannot run float16"):
        runner.engine_dtypes(bench, ["ours", "openai-whisper"], "float16")
    assert runner.engine_dtypes(bench, ["ours", "mlx-whisper"], "float16") == {
        "ours": "float16", "mlx-whisper": "float16"}
    codec = runner.bench_for("dac-test-tiny")  # a torch reference runs float32
    assert runner.engine_dtypes(codec, ["mlx", "torch"], "float32") == {
        "mlx": "float32", "torch": "float32"}


# --- summaries, tables ------------------------------------------------------------------------


def _result(walls, encoder=1.0, tokens=50, text="and so my fellow americans"):
    return {"runs": [{"wall_s": w, "encoder_s": encoder, "n_windows": 1, "n_tokens": tokens}
                     for w in walls], "peak_rss_bytes": 300 * runner.MB,
            "mlx_peak_bytes": None, "text": text}


def test_summaries_ratios_and_table():
    ref = "And so, my fellow Americans"
    s = {"ours": runner.summarize_engine(_result([3.0, 2.0, 4.0]), 30.0, ref),
         "peer": runner.summarize_engine(_result([6.0, 6.0], text="and so my fellow"), 30.0, ref)}
    runner.add_ratios(s, "ours")
    assert_close("rtf", s["ours"]["rtf"]["median"], 0.1, atol=1e-12)
    assert_close("ms/token", s["ours"]["ms_per_token"]["median"], 1000 * (3.0 - 1.0) / 50,
                 atol=1e-9)
    assert_close("ratio", s["peer"]["time_vs_ours"], 2.0, atol=1e-12)
    # 5 reference words, one deleted
    assert_close("wer", [s["ours"]["wer"], s["peer"]["wer"]], [0.0, 0.2], atol=1e-12)
    rows = runner.table_rows(s, {"broken": "ImportError: no module\ntraceback"})
    assert rows[0][:3] == ["ours", "0.100 [0.067-0.133]", "3.00 [2.00-4.00]"]
    assert rows[1][8] == "2.00x"
    assert rows[2][:2] == ["broken", "FAILED: ImportError: no module"]
    text = runner.format_table(rows)
    assert text.splitlines()[0].startswith("engine") and "FAILED: ImportError" in text
    md = runner.markdown_table(rows)
    assert md.count("\n") == 4 and md.splitlines()[3].startswith("| peer | 0.200")
    assert runner.headline(s) == ["peer takes 2.00x ours' time (ours is 2.00x faster)"]


def test_summary_without_tokens_has_no_ms_per_token():
    s = runner.summarize_engine(_result([1.0], tokens=0, text=""), 30.0, "a b")
    assert s["ms_per_token"] is None
    assert_close("wer of empty", s["wer"], 1.0, atol=0)


# --- machine facts ----------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_child_peak_rss_is_its_own(tmp_path):
    # A vforked child's ru_maxrss starts at the parent's peak; VmHWM must not.
    ballast = np.ones(256 * 1024 * 1024 // 8)  # 256 MB touched in this process
    code = "from benchmarks.machine import peak_rss_bytes; print(peak_rss_bytes()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(runner.ROOT))
    child = int(out.stdout.strip())
    assert 1 * runner.MB < child < 128 * runner.MB, f"child peak {child / runner.MB:.0f} MB"
    assert machine.peak_rss_bytes()[0] >= ballast.nbytes


def test_reports_name_paths_relative_to_the_repository(tmp_path, monkeypatch):
    root, home = machine.ROOT, Path.home()
    assert machine.portable_path(f"{root}/tests/fixtures/speech/a.wav") == (
        "tests/fixtures/speech/a.wav")
    assert machine.portable_path(f"cwd {root}") == "cwd ."
    assert machine.portable_path(f"from {root.parent}/shared/speech (a)") == (
        "from ../shared/speech (a)")
    assert machine.portable_path(f"{root}2/x") == f"{root}2/x"  # another folder: left alone
    assert machine.portable_path("/usr/lib/libopenblas.so.0") == "/usr/lib/libopenblas.so.0"
    if len(home.parts) > 1 and not root.is_relative_to(home):
        assert machine.portable_path(f"{home}/.cache/m") == "~/.cache/m"
    got = machine.portable({"blas": {"path": f"{root}/.venv/lib/libmkl_rt.so.3"}, "n": 3,
                            "argv": (f"{root}/benchmarks/gpu.py", None)})
    assert got == {"blas": {"path": ".venv/lib/libmkl_rt.so.3"}, "n": 3,
                   "argv": ["benchmarks/gpu.py", None]}
    # a writer: what lands on disk carries no absolute path of this machine
    from benchmarks import gpu

    gpu._write_json(tmp_path / "r.json", {"clip": {"source": f"{root}/tests/fixtures/speech"}})
    gpu._write_text(tmp_path / "r.md", f'  File "{root}/benchmarks/gpu.py", line 1\n')
    assert json.loads((tmp_path / "r.json").read_text()) == {
        "clip": {"source": "tests/fixtures/speech"}}
    assert (tmp_path / "r.md").read_text() == '  File "benchmarks/gpu.py", line 1\n'


# --- success-metric report ---------------------------------------------------------------------


def _bench(rtf_median, rss_mb, peers=None):
    s = {"ours": {"rtf": {"median": rtf_median, "min": rtf_median, "max": rtf_median, "n": 1},
                  "wall_s": {"median": 30 * rtf_median}, "peak_rss_bytes": rss_mb * runner.MB,
                  "mlx_peak_bytes": 100 * runner.MB}}
    for name, wall in (peers or {}).items():
        s[name] = {"wall_s": {"median": wall}}
    return {"summaries": s, "machine": {"cpu_model": "Test CPU"}, "repeats": 1}


def _parity(model, passed, cases=()):
    return {"model": model, "dtype": "float32", "passed": passed, "cases": list(cases)}


def _status(metrics, name):
    return next(m for m in metrics if m.name == name).status


def test_report_nothing_measured_is_never_pass(tmp_path):
    rep = report.build(tmp_path, plots=False)
    assert {m["status"] for m in rep["metrics"]} == {"NOT MEASURED"}
    assert rep["ratios"] == []
    assert "NOT MEASURED" in report.to_markdown(rep)


def test_report_metrics_thresholds(tmp_path):
    bench = {"whisper-base": _bench(0.4, 900, {"openai-whisper": 24.0, "mlx-whisper": 6.0})}
    assert report.metric_rtf(bench, tmp_path).status == "PASS"
    assert report.metric_rtf({"whisper-base": _bench(0.6, 900)}, tmp_path).status == "FAIL"
    assert report.metric_memory({"whisper-base": _bench(0.4, 2100)}).status == "FAIL"
    assert report.metric_memory(bench).status == "PASS"
    r = {x["peer"]: x["peer_time_over_ours"] for x in report.ratios(bench)}
    assert_close("ratios", [r["openai-whisper"], r["mlx-whisper"]], [2.0, 0.5], atol=1e-12)
    sizes = report.metric_sizes({"a": _parity("whisper-tiny.en", True),
                                 "b": _parity("whisper-base", False)})
    assert [m.status for m in sizes] == ["PASS", "FAIL", "NOT MEASURED"]
    assert report.metric_all_models({"a": _parity("whisper-tiny.en", True),
                                     "b": _parity("whisper-base", False)}).status == "FAIL"
    def with_check(max_ms, passed=True):
        summary = {"words_compared": 10, "word_mean_abs_ms": 1.0, "word_max_abs_ms": max_ms,
                   "tokens_identical": "2/2"}
        return {"whisper-base": {"dtype": "float32", "checks": [
            {"name": "transcription", "passed": passed, "summary": summary}]}}

    ts = report.metric_word_timestamps(with_check(21.0, passed=False))
    assert ts.status == "FAIL" and "21.0 ms" in ts.value
    assert report.metric_word_timestamps(with_check(0.0)).status == "PASS"
    assert report.metric_word_timestamps({}).status == "NOT MEASURED"


def test_report_gpu_metric():
    def gpu(times):
        runs = [{"engine": e, "precision": p, "transcribe": {"ms": {"median": v}}}
                for (e, p), v in times.items()]
        return {"gpu-h100": {"runs": runs, "nvidia_smi": "Test GPU, 1 MiB",
                             "machine": {"cpu_model": "host"}}}

    faster = gpu({("ours", "fp16"): 10.0, ("openai-whisper", "fp16"): 12.0,
                  ("transformers", "fp16"): 11.0, ("ours", "fp32"): 20.0,
                  ("transformers", "fp32"): 25.0})
    m = report.metric_gpu(faster)
    assert m.status == "PASS" and "fp16: ours 10 ms" in m.value and "Test GPU" in m.value
    slower = gpu({("ours", "fp16"): 10.0, ("openai-whisper", "fp16"): 12.0,
                  ("transformers", "fp16"): 9.0})
    assert report.metric_gpu(slower).status == "FAIL"
    assert report.metric_gpu(gpu({("openai-whisper", "fp16"): 12.0})).status == "FAIL"
    assert report.metric_gpu({}).status == "NOT MEASURED"
    # a GPU report is not read as a CPU Whisper benchmark
    assert report.ratios(faster) == [] and report.metric_memory(faster).status == "NOT MEASURED"


def test_report_names_each_machine_once():
    cpu = {"machine": {"cpu_model": "Test CPU", "logical_cores": 2}}
    gpu_rep = {"runs": [], "nvidia_smi": "Test GPU, 80 GiB"}
    bench = {"a": cpu, "b": cpu, "c": cpu, "gpu-1": gpu_rep, "gpu-2": gpu_rep}
    rep = {"generated": "T", "bench_machines": {m: report.bench_machine(r)
                                                for m, r in bench.items()}}
    line = report.to_markdown(dict(rep, metrics=[], ratios=[], parity_reports={}, plots=[]))
    line = line.splitlines()[2]
    assert line == ("Generated T from the reports below. Benchmarks ran on Test CPU, 2 cores "
                    "(3 reports) and Test GPU (gpu-1, gpu-2)."), line
    assert report._machines_line({"bench_machines": {}}) == "No benchmark reports."


def test_report_encodec_needs_round_trip_evidence():
    no_codes = _parity("encodec-24khz", True, [{"case": "c", "passed": True, "metrics": {},
                                                "taps": []}])
    assert report.metric_encodec({"e": no_codes}).status == "NOT MEASURED"
    good = _parity("encodec-24khz", True, [{
        "case": "c", "passed": True, "metrics": {"codes_equal_fraction": 1.0},
        "taps": [{"name": "audio_values", "max_abs": 1e-7, "passed": True}]}])
    assert report.metric_encodec({"e": good}).status == "PASS"
    untrained = dict(good, weights="seeded random weights, not trained")
    assert report.metric_encodec({"e": untrained}).status == "NOT MEASURED"
    bad = json.loads(json.dumps(good))
    bad["cases"][0]["metrics"]["codes_equal_fraction"] = 0.99
    assert report.metric_encodec({"e": bad}).status == "FAIL"
    assert report.metric_encodec({}).status == "NOT MEASURED"


def test_report_writes_plots(tmp_path):
    (tmp_path / "parity").mkdir()
    (tmp_path / "bench").mkdir()
    taps = [{"name": f"t{i}", "max_abs": 10.0 ** -(7 - i), "needed_atol": 0.0, "atol": 1e-4,
             "passed": i < 3} for i in range(5)]
    (tmp_path / "parity" / "m.json").write_text(json.dumps(_parity("whisper-base", False, [
        {"case": "c", "against": "ref", "passed": False, "taps": taps}])))
    b = _bench(0.3, 500)
    b["summaries"]["ours"]["rtf"] = summarize([0.3])
    b["threads"] = 2
    (tmp_path / "bench" / "whisper-base.json").write_text(json.dumps(b))
    rep = report.build(tmp_path, plots=True)
    assert sorted(rep["plots"]) == ["plots/bench-whisper-base.png", "plots/parity-m-c-ref.png"]
    for p in rep["plots"]:
        assert (tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _status([report.Metric(**m) for m in rep["metrics"]],
                   "Whisper base real-time factor") == "PASS"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OpenBLAS preload is Linux-only")
def test_mlx_engines_load_blas_first():
    # the MLX engines must import mlx_impl (BLAS preload) before mlx; a fresh process mirrors a
    # worker. MKL where pip's `mkl` is installed, else OpenBLAS, else the bundled BLAS.
    from mlx_impl._blas import OPENBLAS_PATH, find_mkl

    code = ("from benchmarks.worker import preload_blas; preload_blas(); "
            "import mlx.core as mx; mx.eval(mx.ones((4, 4)) @ mx.ones((4, 4))); "
            "from mlx_impl import blas_info; print(blas_info()['library'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(runner.ROOT))
    import os

    want = ("mkl" if find_mkl() else "openblas" if os.path.exists(OPENBLAS_PATH)
            else "bundled reference BLAS")
    assert out.stdout.strip() == want, out.stdout + out.stderr


def test_report_speech_rows_and_whisper_metrics_apart(tmp_path):
    """A TTS report (kind "speech") lands in the TTS table, never in the Whisper metrics."""
    def stage(tps, vs):
        return {"tokens_per_s": {"median": tps}, "x_real_time": {"median": 0.5},
                "tokens_per_s_vs_ours": vs, "wall_s": {"median": 1.0}}
    speech = {"kind": "speech", "repeats": 3, "machine": {"cpu_model": "Test CPU"},
              "summaries": {"mlx": {"stages": {"synthesize": stage(30.0, 1.0)},
                                    "peak_rss_bytes": 200 * runner.MB},
                            "torch": {"stages": {"synthesize": stage(10.0, 1 / 3)},
                                      "peak_rss_bytes": 500 * runner.MB}},
              "failed": {"mlx-audio": "FileNotFoundError: not installed"}}
    bench = {"orpheus-test-tiny": speech, "whisper-base": _bench(0.4, 900)}
    assert report.metric_memory(bench).status == "PASS"  # the speech report is not read there
    assert [r["peer"] for r in report.ratios(bench)] == []
    rows = report.speech_rows(bench)
    assert [(r["engine"], r.get("failed")) for r in rows] == [
        ("mlx", None), ("torch", None), ("mlx-audio", "FileNotFoundError: not installed")]
    assert_close("torch vs ours", rows[1]["tokens_per_s_vs_ours"], 1 / 3, rtol=1e-12)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "orpheus-test-tiny.json").write_text(json.dumps(speech))
    md = report.to_markdown(report.build(tmp_path, plots=False))
    assert "| orpheus-test-tiny | synthesize | torch | 10.0 | 0.33x | 0.500 | - | 500 |" in md
    assert "| orpheus-test-tiny | - | mlx-audio | FAILED: FileNotFoundError" in md
    speech |= {"ours": "mlx", "threads": 2}
    png = report.plot_bench("orpheus-test-tiny", speech, tmp_path / "plots")
    assert png.name == "bench-orpheus-test-tiny.png" and png.stat().st_size > 1000
