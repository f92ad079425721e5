"""The benchmark runner: every engine of one model in its own fresh process, one report.

Flow: the model's BenchSpec (`bench_for`: the spec's own `bench`, or for a Whisper model with
installed real weights the four peers of benchmarks.engines) -> the real-speech clip
(benchmarks.clips, `bench.audio_seconds` long) -> for each engine (ours first): the untimed
`bench.prepare` in this process (a peer's weight layout), then `python -m benchmarks.worker`
(load, per stage one untimed warm-up and `repeats` timed calls, peak memory) -> median and spread
per stage, real-time factor, ratios against ours of this run -> reports/bench/<model>.{json,md},
written atomically. Two report layouts: "stages" (a row per engine and stage: encode, decode,
vocode, ...) and "transcription" (Whisper's: RTF, encoder time per window, ms per token, WER).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks.clips import english_clip
from benchmarks.prepare import DEFAULT_CACHE
from benchmarks.stats import spread_str, summarize
from parity.report import atomic_write
from parity.spec import BenchSpec

__all__ = ["MB", "REPORTS", "ROOT", "atomic_write", "bench_for", "run", "write"]

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "bench"
MB = 1024 * 1024


def bench_for(model: str, cache: Path = DEFAULT_CACHE, threads: int = 1,
              options: dict | None = None) -> BenchSpec:
    """The BenchSpec that times `model`: its spec's `bench`; a Whisper model with installed
    real weights gets `benchmarks.engines.whisper_bench` (its peers live in benchmarks/, which
    parity/ does not import), run as `options` say (`engines.WhisperRun` fields: device, TF32,
    random weights, stages)."""
    from benchmarks.tts import is_tts, tts_bench
    from parity.registry import get
    from weights.whisper import REGISTERED

    if is_tts(model):  # a TTS model id of mlx_impl.tts.models (benchmarks/tts.py)
        from benchmarks.tts import TTSRun

        return tts_bench(model, cache, TTSRun(**(options or {})))
    spec = get(model)
    if model in REGISTERED and spec.bench is None:
        from benchmarks.engines import WhisperRun, whisper_bench

        return whisper_bench(model, cache, threads, WhisperRun(**(options or {})))
    if options:
        raise ValueError(f"{model}: run options {sorted(options)} apply to the Whisper models "
                         f"with installed weights ({', '.join(sorted(REGISTERED))}) only")
    if spec.bench is None:
        raise ValueError(f"{model} has no BenchSpec (spec.bench); nothing to time")
    return spec.bench


def engine_dtypes(bench: BenchSpec, engines: list[str], dtype: str,
                  device: str = "cpu") -> dict[str, str]:
    """The dtype each engine runs: ours and the peers of `bench.peer_dtypes` (on the GPU
    `bench.gpu_peer_dtypes`) the run's (an error where one cannot), the other peers float32 (a
    torch reference)."""
    unknown = sorted(set(engines) - set(bench.engines))
    if unknown:
        raise ValueError(f"unknown engines {unknown}; this model has {list(bench.engines)}")
    if dtype not in bench.dtypes:
        raise ValueError(f"bench dtype {dtype!r} not supported; choose from {bench.dtypes}")
    if device not in bench.devices:
        raise ValueError(f"this model's benchmark cannot run on {device!r}; it runs on "
                         f"{', '.join(bench.devices)} (BenchSpec.devices)")
    peer_dtypes = bench.gpu_peer_dtypes if device == "gpu" else bench.peer_dtypes
    bad = [e for e in engines if e in peer_dtypes and dtype not in peer_dtypes[e]]
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot run {dtype} on this benchmark (CPU torch and "
                         f"CTranslate2 are timed in float32); pass --engines "
                         f"{','.join(e for e in engines if e not in bad)} or --dtype float32")
    return {e: dtype if e == bench.engines[0] or e in peer_dtypes else "float32"
            for e in engines}


def worker_env(threads: int, tf32: bool = False) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    # full fp32 matmuls where a backend would use TF32 (CUDA), unless TF32 is what is timed
    env["MLX_ENABLE_TF32"] = "1" if tf32 else "0"
    env["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded; fail instead
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(job: dict, workdir: Path, timeout_s: float) -> dict:
    """Run one engine's worker in a fresh interpreter; its result dict (with 'error' on failure)."""
    job_file = workdir / f"job-{job['engine']}.json"
    out_file = workdir / f"result-{job['engine']}.json"
    job_file.write_text(json.dumps(job))
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", str(job_file),
                               str(out_file)], cwd=ROOT,
                              env=worker_env(job["threads"], job["options"].get("tf32", False)),
                              timeout=timeout_s, stdout=sys.stderr, check=False)
    except subprocess.TimeoutExpired:
        return {"engine": job["engine"], "error": f"timed out after {timeout_s:.0f} s "
                                                  "(raise --timeout or lower --repeats)"}
    if not out_file.exists():
        return {"engine": job["engine"],
                "error": f"worker exited with status {proc.returncode} and wrote no result"}
    return json.loads(out_file.read_text())


# ---------------------------------------------------------------------------------------------
# summaries


def word_error_rate(reference: str, hypothesis: str) -> tuple[float | None, str]:
    """(WER, normalizer used): openai-whisper's EnglishTextNormalizer when importable; (None,
    why) without jiwer (the GPU machine's set-up)."""
    try:
        import jiwer
    except ImportError:
        return None, "not computed: jiwer is not installed"

    try:
        from whisper.normalizers import EnglishTextNormalizer

        norm, how = EnglishTextNormalizer(), "whisper EnglishTextNormalizer"
    except ImportError:
        import re

        def norm(s: str) -> str:
            return re.sub(r"[^\w\s']", " ", s.lower())

        how = "lowercase, punctuation removed"
    ref, hyp = norm(reference).split(), norm(hypothesis).split()
    if not ref:
        raise ValueError("the reference transcript is empty; WER is undefined")
    return float(jiwer.wer(" ".join(ref), " ".join(hyp) if hyp else "")), how


def transcription_result(result: dict) -> dict:
    """A worker result with a "transcribe" stage (and its facts) -> the per-run record of the
    transcription report: runs (wall, encoder time, windows, tokens), transcript, engine info."""
    st = next(x for x in result["stages"] if x["name"] == "transcribe")
    runs = [{"wall_s": w, "encoder_s": f["encoder_s"], "n_windows": f["n_windows"],
             "n_tokens": f["n_tokens"]} for w, f in zip(st["wall_s"], st["facts"])]
    return dict(result, runs=runs, text=st["facts"][-1]["text"],
                warmup_text=st["warmup_facts"]["text"],
                engine_info=st["facts"][-1].get("engine_info"))


def summarize_engine(result: dict, duration_s: float, reference_text: str) -> dict:
    """Median and spread of wall time, RTF, encoder time per window and ms/token of one engine."""
    runs = result["runs"]
    wall = [r["wall_s"] for r in runs]
    s = {"wall_s": summarize(wall), "rtf": summarize([w / duration_s for w in wall])}
    if all(r["n_windows"] > 0 for r in runs):
        s["encoder_per_window_s"] = summarize([r["encoder_s"] / r["n_windows"] for r in runs])
    else:
        s["encoder_per_window_s"] = None
    if all(r["n_tokens"] > 0 and r["n_windows"] > 0 for r in runs):
        # decoder side: everything but the encoder (mel, prompt, decoding steps, logit filters)
        s["ms_per_token"] = summarize([1000 * (r["wall_s"] - r["encoder_s"]) / r["n_tokens"]
                                       for r in runs])
    else:
        s["ms_per_token"] = None
    s["n_tokens"] = runs[-1]["n_tokens"]
    s["n_windows"] = runs[-1]["n_windows"]
    s["peak_rss_bytes"] = result["peak_rss_bytes"]
    s["mlx_peak_bytes"] = result.get("mlx_peak_bytes")
    s["mlx_peak_run_bytes"] = result.get("mlx_peak_run_bytes")
    s["wer"], s["wer_normalizer"] = word_error_rate(reference_text, result["text"])
    return s


def summarize_stages(result: dict) -> dict:
    """Per stage: wall-time and RTF summaries; plus load time and memory."""
    stages = {}
    for st in result["stages"]:
        stages[st["name"]] = {"wall_s": summarize(st["wall_s"]),
                              "rtf": summarize([w / st["audio_seconds"] for w in st["wall_s"]]),
                              "audio_seconds": st["audio_seconds"]}
    return {"stages": stages, "load_s": result["load_s"],
            "peak_rss_bytes": result["peak_rss_bytes"], "mlx_peak_bytes": result["mlx_peak_bytes"],
            "mlx_peak_run_bytes": result["mlx_peak_run_bytes"]}


def summarize_speech(result: dict) -> dict:
    """Per stage of a TTS engine: wall time, generated tokens per second, audio seconds per wall
    second ("x real time"), RTF (wall / audio seconds), time to first audio (the stream stage),
    from each timed call's facts; plus load time and memory."""
    stages = {}
    for st in result["stages"]:
        facts = st["facts"]
        walls = st["wall_s"]
        row = {"wall_s": summarize(walls),
               "tokens_per_s": summarize([f["n_tokens"] / w for f, w in zip(facts, walls)]),
               "x_real_time": summarize([f["audio_s"] / w for f, w in zip(facts, walls)]),
               "n_tokens": [f["n_tokens"] for f in facts],
               "audio_s": [f["audio_s"] for f in facts],
               "stop": facts[-1].get("stop"), "ids_sha256": facts[-1].get("ids_sha256")}
        if all(f["audio_s"] > 0 for f in facts):
            row["rtf"] = summarize([w / f["audio_s"] for f, w in zip(facts, walls)])
        if all(f.get("ttfa_s") is not None for f in facts):
            row["ttfa_s"] = summarize([f["ttfa_s"] for f in facts])
        stages[st["name"]] = row
    return {"stages": stages, "load_s": result["load_s"],
            "peak_rss_bytes": result["peak_rss_bytes"], "mlx_peak_bytes": result["mlx_peak_bytes"],
            "mlx_peak_run_bytes": result["mlx_peak_run_bytes"]}


def add_speech_ratios(summaries: dict[str, dict], ours: str) -> None:
    """Per stage: `tokens_per_s_vs_ours` (the engine's median tokens/s over ours'; < 1: slower
    than ours), `time_vs_ours` (median wall time over ours'), `same_ids_as_ours` (the generated
    ids' digest equals ours', None where an engine returns no ids)."""
    base = summaries.get(ours)
    for s in summaries.values():
        for name, st in s["stages"].items():
            b = base["stages"].get(name) if base else None
            st["tokens_per_s_vs_ours"] = (st["tokens_per_s"]["median"]
                                          / b["tokens_per_s"]["median"] if b else None)
            st["time_vs_ours"] = _ratio(st, b)
            st["same_ids_as_ours"] = (None if not b or st["ids_sha256"] is None
                                      or b["ids_sha256"] is None
                                      else st["ids_sha256"] == b["ids_sha256"])


def _ratio(s: dict, base: dict | None) -> float | None:
    return s["wall_s"]["median"] / base["wall_s"]["median"] if base else None


def add_ratios(summaries: dict[str, dict], ours: str) -> None:
    """`time_vs_ours`: an engine's median wall time over ours' (> 1: the engine is slower), per
    stage in a stage summary."""
    base = summaries.get(ours)
    for s in summaries.values():
        if "stages" not in s:
            s["time_vs_ours"] = _ratio(s, base)
            continue
        for name, st in s["stages"].items():
            st["time_vs_ours"] = _ratio(st, base["stages"].get(name) if base else None)


# ---------------------------------------------------------------------------------------------
# tables and reports

COLUMNS = ("engine", "RTF", "wall s", "enc s/window", "ms/token", "tokens", "peak RSS MB",
           "MLX peak MB (run)", "time / ours", "WER")
STAGE_COLUMNS = ("engine", "stage", "RTF", "wall s", "time / ours", "load s", "peak RSS MB",
                 "MLX peak MB (run)")
SPEECH_COLUMNS = ("engine", "stage", "tokens", "tokens/s", "tok/s / ours", "audio s",
                  "audio s / wall s", "first audio s", "wall s", "load s", "peak RSS MB",
                  "MLX peak MB (run)", "ids = ours")


def _mlx_mb(s: dict) -> str:
    if s["mlx_peak_bytes"] is None:
        return "-"
    run = s.get("mlx_peak_run_bytes")
    return f"{s['mlx_peak_bytes'] / MB:.0f}" + ("" if run is None else f" ({run / MB:.0f})")


def _times(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def _failed_rows(failed: dict[str, str], n_columns: int) -> list[list[str]]:
    return [[name, "FAILED: " + err.splitlines()[0][:90]] + [""] * (n_columns - 2)
            for name, err in failed.items()]


def table_rows(summaries: dict[str, dict], failed: dict[str, str]) -> list[list[str]]:
    """Rows of the transcription table (`COLUMNS`)."""
    rows = []
    for name, s in summaries.items():
        enc, mpt = s["encoder_per_window_s"], s["ms_per_token"]
        rows.append([
            name, spread_str(s["rtf"], fmt="{:.3f}"), spread_str(s["wall_s"], fmt="{:.2f}"),
            "n/a" if enc is None else spread_str(enc, fmt="{:.3f}"),
            "n/a" if mpt is None else spread_str(mpt, fmt="{:.1f}"),
            str(s["n_tokens"]), f"{s['peak_rss_bytes'] / MB:.0f}", _mlx_mb(s),
            _times(s["time_vs_ours"]), "n/a" if s["wer"] is None else f"{s['wer']:.3f}"])
    return rows + _failed_rows(failed, len(COLUMNS))


def stage_rows(summaries: dict[str, dict], failed: dict[str, str]) -> list[list[str]]:
    """Rows of the per-stage table (`STAGE_COLUMNS`)."""
    rows = []
    for name, s in summaries.items():
        for stage, st in s["stages"].items():
            rows.append([name, stage, spread_str(st["rtf"], fmt="{:.4f}"),
                         spread_str(st["wall_s"], fmt="{:.3f}"), _times(st["time_vs_ours"]),
                         f"{s['load_s']:.2f}", f"{s['peak_rss_bytes'] / MB:.0f}", _mlx_mb(s)])
    return rows + _failed_rows(failed, len(STAGE_COLUMNS))


def _same(v: bool | None) -> str:
    return "n/a" if v is None else ("yes" if v else "no")


def speech_rows(summaries: dict[str, dict], failed: dict[str, str]) -> list[list[str]]:
    """Rows of the TTS table (`SPEECH_COLUMNS`)."""
    rows = []
    for name, s in summaries.items():
        for stage, st in s["stages"].items():
            toks = sorted(set(st["n_tokens"]))
            secs = sorted(set(round(a, 3) for a in st["audio_s"]))
            rows.append([
                name, stage, "/".join(str(t) for t in toks) + f" ({st['stop']})",
                spread_str(st["tokens_per_s"], fmt="{:.1f}"),
                "-" if st["tokens_per_s_vs_ours"] is None else f"{st['tokens_per_s_vs_ours']:.2f}x",
                "/".join(f"{a:.2f}" for a in secs), spread_str(st["x_real_time"], fmt="{:.3f}"),
                spread_str(st["ttfa_s"], fmt="{:.3f}") if "ttfa_s" in st else "-",
                spread_str(st["wall_s"], fmt="{:.3f}"), f"{s['load_s']:.2f}",
                f"{s['peak_rss_bytes'] / MB:.0f}", _mlx_mb(s), _same(st["same_ids_as_ours"])])
    return rows + _failed_rows(failed, len(SPEECH_COLUMNS))


def report_table(rep: dict) -> tuple[list[list[str]], tuple[str, ...]]:
    """(rows, columns) of a report, in its layout."""
    if rep["kind"] == "speech":
        return speech_rows(rep["summaries"], rep["failed"]), SPEECH_COLUMNS
    if rep["kind"] == "stages":
        return stage_rows(rep["summaries"], rep["failed"]), STAGE_COLUMNS
    return table_rows(rep["summaries"], rep["failed"]), COLUMNS


def format_table(rows: list[list[str]], columns=COLUMNS) -> str:
    """Aligned plain-text table; a failure row (only its first two cells set) is not aligned."""
    full = [r for r in rows if any(r[2:])]
    widths = [max([len(str(c))] + [len(r[i]) for r in full]) for i, c in enumerate(columns)]

    def line(cells):
        if not any(cells[2:]):
            return f"{cells[0].ljust(widths[0])}  {cells[1]}"
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(list(columns)), line(["-" * w for w in widths])]
                     + [line(r) for r in rows])


def markdown_table(rows: list[list[str]], columns=COLUMNS) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def headline(summaries: dict[str, dict], ours: str = "ours") -> list[str]:
    """One line per peer (and stage): its time over ours'."""
    if ours not in summaries:
        return [f"{ours} did not run: no ratios"]
    lines = []
    if any("tokens_per_s" in st for s in summaries.values() for st in s.get("stages", {}).values()):
        for name, s in summaries.items():
            for stage, st in s["stages"].items():
                r = st["tokens_per_s_vs_ours"]
                if name == ours or r is None:
                    continue
                lines.append(f"{stage}: {name} generates {st['tokens_per_s']['median']:.1f} "
                             f"tokens/s, {r:.2f}x ours' "
                             + (f"(ours is {1 / r:.2f}x faster)" if r <= 1
                                else f"(ours is {r:.2f}x slower)"))
        return lines
    for name, s in summaries.items():
        if name == ours:
            continue
        items = ([(f"{k}: ", st["time_vs_ours"]) for k, st in s["stages"].items()]
                 if "stages" in s else [("", s["time_vs_ours"])])
        for prefix, r in items:
            if r is not None:
                lines.append(f"{prefix}{name} takes {r:.2f}x ours' time ("
                             + (f"ours is {r:.2f}x faster" if r >= 1
                                else f"ours is {1 / r:.2f}x slower") + ")")
    return lines


def _first(rep: dict, key: str):
    return next((r[key] for r in rep["engines"].values() if r.get(key)), None)


SPEED_NOTE = ("Machine speed: this shared VM's speed drifts 15-25 % between runs (other jobs on its "
              "2 cores); the engines of one report ran back to back, so compare their ratios, "
              "not absolute numbers across reports.")


def _header(rep: dict) -> list[str]:
    m = rep["machine"]
    return [
        f"# Benchmark: {rep['model']} ({rep['dtype']})", "",
        f"- Run: {rep['started']} — `{rep['command']}`",
        (f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
         f"({m['usable_cores']} usable), {(m['memory_total_bytes'] or 0) / 2**30:.1f} GiB, "
         f"{m['platform']}"),
        (f"- Load average (1/5/15 min) before / after: {m['loadavg_1_5_15']} / "
         f"{rep['loadavg_after']}"),
        f"- MLX device: {_first(rep, 'mlx_device')}; MLX BLAS: {_first(rep, 'blas')}",
        f"- MLX CPU softmax/GELU kernels: {_first(rep, 'cpu_kernels')}",
        (f"- Threads: {rep['threads']} for every engine (torch.set_num_threads, "
         "OMP/MKL/OPENBLAS_NUM_THREADS)"),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in rep["versions"].items())]


def speech_markdown(rep: dict) -> str:
    """The TTS report (`kind` "speech", benchmarks/tts.py)."""
    p = rep["plan"]
    if "error" in p:
        plan_lines = [f"- Plan: not prepared ({p['error']})"]
    else:
        plan_lines = [
            f"- Weights: {p['folder_note']}",
            f"- Text ({len(p['text'])} characters, {p['n_prompt']} prompt ids, sha256 "
            f"{p['prompt_sha256']}): \"{p['text']}\"; voice {p['voice']}; seed {p['seed']}",
            "- Sampling (every engine): " + ", ".join(f"{k}={v}" for k, v in
                                                      p["options"].items())] + (
            [f"- Generated tokens counted as: {p['counting']}"] if p.get("counting") else [])
    lines = _header(rep) + plan_lines + [
        (f"- Timing: one fresh process per engine; load, then per stage one untimed warm-up and "
         f"{rep['repeats']} timed calls; median [min-max]"),
        f"- {SPEED_NOTE}"] + ([f"- Note: {rep['note']}"] if rep.get("note") else []) + [""]
    rows, columns = report_table(rep)
    tokens = ("generated tokens per call, counted as the line above says" if p.get("counting")
              else "LM tokens generated per call")
    streaming = p.get("streaming") or ("ours: `stream`, 8 frames + 4 of look-ahead; mlx-audio: "
                                       "`generate(stream=True)` at the same 84 tokens")
    lines += [markdown_table(rows, columns), "",
              f"Columns: tokens = {tokens} (stop reason); tokens/s = tokens / "
              "wall time of the whole call (prompt, generation, codec decode); tok/s / ours = "
              "the engine's median tokens/s over ours' (< 1: slower than ours); audio s / wall s "
              "= seconds of audio produced per second of wall time (> 1: faster than real "
              "time; RTF = its inverse); first audio s = time to the first audio chunk of the "
              f"stream stage ({streaming}; the torch reference has no streaming API); "
              "peak RSS = the worker's VmHWM over imports, load and runs; MLX peak = "
              "`mx.get_peak_memory()` over load and runs (in brackets: runs only); ids = ours: "
              "the generated ids' sha256 equals ours' (n/a: the engine returns no ids).", ""]
    hl = headline(rep["summaries"], rep["ours"])
    if hl:
        lines += ["## Headline", ""] + [f"- {h}" for h in hl] + [""]
    notes = rep.get("engine_notes", {})
    if notes:
        lines += ["## Engines", ""] + [f"- **{k}**: {v}" for k, v in notes.items()] + [""]
    failed = [f"- **{name}** FAILED: {r['error']}" for name, r in rep["engines"].items()
              if "error" in r]
    if failed:
        lines += ["## Failures", ""] + failed + [""]
    return "\n".join(lines)


def to_markdown(rep: dict) -> str:
    if rep["kind"] == "speech":
        return speech_markdown(rep)
    m, c = rep["machine"], rep["clip"]
    stages = rep["kind"] == "stages"
    lines = [
        f"# Benchmark: {rep['model']} ({rep['dtype']})", "",
        f"- Run: {rep['started']} — `{rep['command']}`",
        (f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
         f"({m['usable_cores']} usable), {(m['memory_total_bytes'] or 0) / 2**30:.1f} GiB, "
         f"{m['platform']}"),
        (f"- Load average (1/5/15 min) before / after: {m['loadavg_1_5_15']} / "
         f"{rep['loadavg_after']}"),
        f"- MLX device: {_first(rep, 'mlx_device')}; MLX BLAS: {_first(rep, 'blas')}",
        f"- MLX CPU softmax/GELU kernels: {_first(rep, 'cpu_kernels')}",
        (f"- Threads: {rep['threads']} for every engine (torch.set_num_threads, CTranslate2 "
         "cpu_threads, OMP/MKL/OPENBLAS_NUM_THREADS)"),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in rep["versions"].items())]
    if stages:
        lines.append(f"- Input: {c['duration_s']:.1f} s of speech from {c['source']} "
                     f"({', '.join(c['pieces'])}), sha256(float32) {c['sha256_float32'][:16]}…, "
                     "resampled by each engine's build to the model's rate outside the timed "
                     "calls")
    else:
        lines += [(f"- Clip: {c['duration_s']:.1f} s from {c['source']} "
                   f"({', '.join(c['pieces'])}; {c['speech_s']:.2f} s of speech then silence; "
                   f"cut: {c['cut']}), sha256(float32) {c['sha256_float32'][:16]}…"),
                  "- Options (every engine): "
                  + ", ".join(f"{k}={v}" for k, v in rep["options"].items())]
    rows, columns = report_table(rep)
    lines += [
        (f"- Timing: one fresh process per engine; load, then per stage one untimed warm-up and "
         f"{rep['repeats']} timed calls; median [min-max]"),
        "", markdown_table(rows, columns), "",
        ("Columns: RTF = wall time of one call / seconds of audio it covers; "
         + ("" if stages else "enc s/window = time inside the encoder per 30-s window; "
            "ms/token = (wall − encoder) / text tokens generated (mel, prompt, decoding and "
            "logit filters); ")
         + "time / ours = the engine's median over ours' (> 1: slower than ours); peak RSS = "
         "the worker's high-water resident set (VmHWM on Linux) over imports, load and runs; "
         "MLX peak = `mx.get_peak_memory()` (MLX allocations, excluding its buffer cache) over "
         "load and runs, in brackets over the runs only (warm-up and timed)"
         + ("." if stages else "; WER against the clip's reference transcript.")), ""]
    hl = headline(rep["summaries"], rep["ours"])
    if hl:
        lines += ["## Headline", ""] + [f"- {h}" for h in hl] + [""]
    if stages:
        lines += [f"- **{name}** FAILED: {r['error']}" for name, r in rep["engines"].items()
                  if "error" in r]
        return "\n".join(lines) + "\n"
    lines += ["## Transcripts", ""]
    for name, r in rep["engines"].items():
        lines.append(f"- **{name}**: " + (f"FAILED — {r['error']}" if "error" in r
                                          else r["text"].strip()))
    lines += ["", f"Reference: {c['reference_text']}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the run


def run(model: str, repeats: int = 3, dtype: str = "float32", threads: int | None = None,
        engines: list[str] | None = None, cache: Path = DEFAULT_CACHE,
        timeout_s: float = 1800.0, command: str = "", options: dict | None = None,
        device: str = "cpu") -> dict:
    """Time every engine (or `engines`) of `model`; the report dict (`write` saves it).
    `options`: how a Whisper model runs (`bench_for`); `device`: "cpu", or "gpu" where the
    model's BenchSpec lists it (`BenchSpec.devices`; Whisper takes `options["device"]`)."""
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    threads = threads or os.cpu_count() or 1
    options = dict(options or {})
    bench = bench_for(model, cache, threads, options)
    engines = list(engines or bench.engines)
    dtypes = engine_dtypes(bench, engines, dtype, device)
    ours = bench.engines[0]
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    facts = machine.machine_facts()
    clip = english_clip(bench.audio_seconds)
    print(f"bench {model} ({dtype}): {clip.duration_s:.1f} s clip from {clip.source}, engines "
          f"{engines}, warm-up + {repeats} repeats per stage, {threads} threads",
          file=sys.stderr, flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        clip_file = workdir / "clip.npy"
        np.save(clip_file, clip.audio)
        for i, engine in enumerate(engines, 1):
            t0, tag = time.perf_counter(), f"[{i}/{len(engines)}] {engine}"
            try:
                if bench.prepare is not None:
                    print(f"{tag}: preparing", file=sys.stderr, flush=True)
                    bench.prepare(engine, dtypes[engine])
            except Exception as e:  # noqa: BLE001  (recorded as this engine's failure)
                results[engine] = {"engine": engine, "error": f"{type(e).__name__}: {e}"}
                print(f"{tag}: FAILED preparing: {e}", file=sys.stderr)
                continue
            print(f"{tag}: fresh process", file=sys.stderr, flush=True)
            job = {"model": model, "engine": engine, "dtype": dtypes[engine], "threads": threads,
                   "repeats": repeats, "clip": str(clip_file), "cache": str(cache),
                   "options": options, "device": device}
            results[engine] = run_worker(job, workdir, timeout_s)
            status = "FAILED" if "error" in results[engine] else "done"
            print(f"{tag}: {status} in {time.perf_counter() - t0:.1f} s", file=sys.stderr,
                  flush=True)
    summaries, failed = {}, {}
    for name, r in results.items():
        if "error" in r:
            failed[name] = r["error"]
        elif bench.report == "speech":
            summaries[name] = summarize_speech(r)
        elif bench.report == "stages":
            summaries[name] = summarize_stages(r)
        else:
            results[name] = r = transcription_result(r)
            summaries[name] = summarize_engine(r, clip.duration_s, clip.text)
    if bench.report == "speech":
        add_speech_ratios(summaries, ours)
    else:
        add_ratios(summaries, ours)
    rep = {"model": model, "kind": bench.report, "ours": ours, "dtype": dtype,
           "started": started, "command": command, "machine": facts,
           "loadavg_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
           "versions": machine.versions(), "clip": clip.describe(), "threads": threads,
           "repeats": repeats, "run_options": options, "device": device, "summaries": summaries, "failed": failed,
           "engines": results}
    if bench.report == "speech":
        from benchmarks.tts import engine_notes, plan_for_report

        try:
            rep["plan"] = plan_for_report(model, cache)
        except FileNotFoundError as e:  # every engine failed before the plan was written
            rep["plan"] = {"error": str(e)}
        rep["engine_notes"] = engine_notes(model, engines)
        if "mlx-audio" in engines:
            from benchmarks.tts_peers import installed_version

            rep["versions"]["mlx-audio (bench peer folder)"] = installed_version(cache) or \
                "not installed"
    if bench.report == "transcription":
        from benchmarks.engines import OPTIONS

        rep["options"] = OPTIONS.to_dict()
    return rep


def write(rep: dict, out_dir: Path = REPORTS) -> tuple[Path, Path]:
    rep = machine.portable(rep)  # paths relative to the repository, never this machine's
    stem = rep["model"] if rep["dtype"] == "float32" else f"{rep['model']}-{rep['dtype']}"
    js, md = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write(js, json.dumps(rep, indent=2) + "\n")
    atomic_write(md, to_markdown(rep))
    return js, md
