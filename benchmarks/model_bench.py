"""Benchmarks of every model with a `BenchSpec` (codecs, vocoders, tokenizers, non-Whisper STT).

    python -m benchmarks run MODEL [--repeats N] [--dtype float32] [--threads T]

Flow: the real-speech clip (benchmarks.clips.english_clip, 16 kHz mono, `bench.audio_seconds`
long) -> for each engine of the spec's `BenchSpec` (ours, "mlx", first), a fresh interpreter runs
`python -m benchmarks.model_bench worker JOB RESULT`: `build(engine, dtype, audio)` loads the model
(timed as load), then every stage gets one untimed warm-up call and `repeats` timed calls ->
median and spread per stage, real-time factor (time / audio seconds), peak memory (process VmHWM
over the whole worker; for MLX also `mx.get_peak_memory()`, which excludes MLX's buffer cache) ->
ratios against ours -> reports/bench/<model>.{json,md}, written atomically.

Whisper models keep their own runner (benchmarks.runner): their peers need weight conversion and
transcription options that this generic path does not have.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks.clips import english_clip
from benchmarks.runner import worker_env
from benchmarks.stats import spread_str, summarize
from parity.report import atomic_write

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "bench"
MB = 1024 * 1024
OURS = "mlx"


def _log(msg: str) -> None:
    print(f"    {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# worker (fresh process)


def _mlx_peak(reset: bool = False) -> int:
    import mlx.core as mx

    peak = int(mx.get_peak_memory())
    if reset:
        mx.reset_peak_memory()
    return peak


def measure(job: dict) -> dict:
    from benchmarks.machine import current_rss_bytes, peak_rss_bytes
    from parity.registry import get

    engine, repeats = job["engine"], int(job["repeats"])
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if engine == OURS:
        import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx loads)
    try:
        import torch

        torch.set_num_threads(int(job["threads"]))
    except ImportError:
        pass
    spec = get(job["model"])
    audio = np.load(job["clip"])
    rss_start = current_rss_bytes()
    t0 = time.perf_counter()
    stages = spec.bench.build(engine, job["dtype"], audio)
    load_s = time.perf_counter() - t0
    if not stages:
        raise ValueError(f"{job['model']}: bench build({engine!r}) returned no stages")
    mlx_load_peak = _mlx_peak(reset=True) if engine == OURS else None
    _log(f"{engine}: loaded in {load_s:.2f} s; stages {[s.name for s in stages]}")
    results = []
    for st in stages:
        t0 = time.perf_counter()
        st.run()
        _log(f"{st.name}: warm-up {time.perf_counter() - t0:.3f} s (not timed)")
        walls = []
        for i in range(repeats):
            t0 = time.perf_counter()
            st.run()
            walls.append(time.perf_counter() - t0)
            _log(f"{st.name}: repeat {i + 1}/{repeats} {walls[-1]:.3f} s")
        results.append({"name": st.name, "audio_seconds": float(st.audio_seconds),
                        "wall_s": walls})
    peak, how = peak_rss_bytes()
    out = {"engine": engine, "dtype": job["dtype"], "threads": int(job["threads"]),
           "load_s": load_s, "stages": results, "peak_rss_bytes": peak,
           "peak_rss_method": how, "rss_at_start_bytes": rss_start,
           "mlx_peak_bytes": None, "mlx_peak_run_bytes": None, "mlx_device": None, "blas": None}
    if engine == OURS:
        import mlx.core as mx

        from mlx_impl import blas_info

        run_peak = _mlx_peak()
        out |= {"mlx_peak_bytes": max(mlx_load_peak, run_peak), "mlx_peak_run_bytes": run_peak,
                "mlx_device": str(mx.default_device()), "blas": blas_info()}
    return out


def worker_main(job_file: str, result_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    try:
        result = measure(job)
    except Exception as e:  # noqa: BLE001  (reported to the runner, which fails the engine)
        traceback.print_exc()
        result = {"engine": job.get("engine"), "error": f"{type(e).__name__}: {e}",
                  "traceback": traceback.format_exc()}
    atomic_write(Path(result_file), json.dumps(result, indent=2) + "\n")
    return 1 if "error" in result else 0


# ---------------------------------------------------------------------------------------------
# runner


def _run_engine(job: dict, workdir: Path, threads: int, timeout_s: float) -> dict:
    job_file, out_file = workdir / f"job-{job['engine']}.json", workdir / f"result-{job['engine']}.json"
    job_file.write_text(json.dumps(job))
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.model_bench", "worker",
                               str(job_file), str(out_file)], cwd=ROOT, env=worker_env(threads),
                              timeout=timeout_s, stdout=sys.stderr, check=False)
    except subprocess.TimeoutExpired:
        return {"engine": job["engine"], "error": f"timed out after {timeout_s:.0f} s"}
    if not out_file.exists():
        return {"engine": job["engine"],
                "error": f"worker exited with status {proc.returncode} and wrote no result"}
    return json.loads(out_file.read_text())


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


def add_ratios(summaries: dict[str, dict]) -> None:
    """`time_vs_ours` per stage: the engine's median over ours (> 1: the engine is slower)."""
    ours = summaries.get(OURS)
    for s in summaries.values():
        for name, st in s["stages"].items():
            base = ours["stages"].get(name) if ours else None
            st["time_vs_ours"] = (st["wall_s"]["median"] / base["wall_s"]["median"]) if base else None


def run(model: str, repeats: int = 3, dtype: str = "float32", threads: int | None = None,
        timeout_s: float = 1800.0, command: str = "", engines: list[str] | None = None) -> dict:
    from parity.registry import get

    spec = get(model)
    bench = spec.bench
    if bench is None:
        raise ValueError(f"{model} has no BenchSpec (spec.bench); nothing to time")
    if dtype not in bench.dtypes:
        raise ValueError(f"{model}: bench dtype {dtype!r} not supported; choose from {bench.dtypes}")
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    engines = list(engines or bench.engines)
    unknown = sorted(set(engines) - set(bench.engines))
    if unknown:
        raise ValueError(f"{model}: unknown engines {unknown}; this model has {bench.engines}")
    threads = threads or os.cpu_count() or 1
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    facts = machine.machine_facts()
    clip = english_clip(bench.audio_seconds)
    print(f"bench {model} ({dtype}): {clip.duration_s:.1f} s clip from {clip.source}, engines "
          f"{engines}, warm-up + {repeats} repeats per stage, {threads} threads",
          file=sys.stderr, flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        clip_file = workdir / "clip.npy"
        np.save(clip_file, clip.audio)
        for i, engine in enumerate(engines, 1):
            t0 = time.perf_counter()
            print(f"[{i}/{len(engines)}] {engine}: fresh process", file=sys.stderr, flush=True)
            job = {"model": model, "engine": engine, "dtype": dtype if engine == OURS else "float32",
                   "threads": threads, "repeats": repeats, "clip": str(clip_file)}
            results[engine] = _run_engine(job, workdir, threads, timeout_s)
            status = "FAILED" if "error" in results[engine] else "done"
            print(f"[{i}/{len(engines)}] {engine}: {status} in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    summaries, failed = {}, {}
    for name, r in results.items():
        if "error" in r:
            failed[name] = r["error"]
        else:
            summaries[name] = summarize_stages(r)
    add_ratios(summaries)
    return {"model": model, "kind": "stages", "dtype": dtype, "started": started,
            "command": command, "machine": facts,
            "loadavg_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "versions": machine.versions(), "clip": clip.describe(), "threads": threads,
            "repeats": repeats, "summaries": summaries, "failed": failed, "engines": results}


COLUMNS = ("engine", "stage", "RTF", "wall s", "time / ours", "load s", "peak RSS MB",
           "MLX peak MB (run)")


def table_rows(rep: dict) -> list[list[str]]:
    rows = []
    for name, s in rep["summaries"].items():
        for stage, st in s["stages"].items():
            mlx = "-" if s["mlx_peak_bytes"] is None else (
                f"{s['mlx_peak_bytes'] / MB:.0f} ({s['mlx_peak_run_bytes'] / MB:.0f})")
            rows.append([name, stage, spread_str(st["rtf"], fmt="{:.4f}"),
                         spread_str(st["wall_s"], fmt="{:.3f}"),
                         "-" if st["time_vs_ours"] is None else f"{st['time_vs_ours']:.2f}x",
                         f"{s['load_s']:.2f}", f"{s['peak_rss_bytes'] / MB:.0f}", mlx])
    for name, err in rep["failed"].items():
        rows.append([name, "FAILED: " + err.splitlines()[0][:90]] + [""] * (len(COLUMNS) - 2))
    return rows


def headline(rep: dict) -> list[str]:
    lines = []
    for name, s in rep["summaries"].items():
        if name == OURS:
            continue
        for stage, st in s["stages"].items():
            r = st["time_vs_ours"]
            if r is not None:
                lines.append(f"{stage}: {name} takes {r:.2f}x ours' time ("
                             + (f"ours {r:.2f}x faster" if r >= 1 else f"ours {1 / r:.2f}x slower")
                             + ")")
    return lines


def to_markdown(rep: dict) -> str:
    from benchmarks.runner import markdown_table

    m, c = rep["machine"], rep["clip"]
    ours = rep["engines"].get(OURS, {})
    lines = [
        f"# Benchmark: {rep['model']} ({rep['dtype']})", "",
        f"- Run: {rep['started']} — `{rep['command']}`",
        (f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
         f"({m['usable_cores']} usable), {(m['memory_total_bytes'] or 0) / 2**30:.1f} GiB, "
         f"{m['platform']}"),
        (f"- Load average (1/5/15 min) before / after: {m['loadavg_1_5_15']} / "
         f"{rep['loadavg_after']}"),
        f"- MLX device: {ours.get('mlx_device')}; MLX BLAS: {ours.get('blas')}",
        f"- Threads: {rep['threads']} for every engine (torch.set_num_threads, OMP/OPENBLAS)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in rep["versions"].items()),
        (f"- Input: {c['duration_s']:.1f} s of speech from {c['source']} "
         f"({', '.join(c['pieces'])}), sha256(float32) {c['sha256_float32'][:16]}…, "
         "resampled by each engine's build to the model's rate outside the timed calls"),
        (f"- Timing: one fresh process per engine; load, then per stage one untimed warm-up and "
         f"{rep['repeats']} timed calls; median [min-max]"),
        "", markdown_table(table_rows(rep), COLUMNS), "",
        ("Columns: RTF = wall time of one call / seconds of audio it covers; time / ours = the "
         "engine's median over ours' (> 1: slower than ours); peak RSS = the worker's high-water "
         "resident set (VmHWM) over imports, load and runs; MLX peak = `mx.get_peak_memory()` "
         "(excludes MLX's buffer cache) over load and runs, in brackets over the runs only."), "",
    ]
    hl = headline(rep)
    if hl:
        lines += ["## Headline", ""] + [f"- {h}" for h in hl] + [""]
    for name, r in rep["engines"].items():
        if "error" in r:
            lines += [f"- **{name}** FAILED: {r['error']}"]
    return "\n".join(lines) + "\n"


def write(rep: dict, out_dir: Path = REPORTS) -> tuple[Path, Path]:
    rep = machine.portable(rep)  # paths relative to the repository, never this machine's
    stem = rep["model"] if rep["dtype"] == "float32" else f"{rep['model']}-{rep['dtype']}"
    js, md = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write(js, json.dumps(rep, indent=2) + "\n")
    atomic_write(md, to_markdown(rep))
    return js, md


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3]))
    print("usage: python -m benchmarks.model_bench worker JOB.json RESULT.json "
          "(the runner starts it; use `python -m benchmarks run MODEL`)", file=sys.stderr)
    sys.exit(2)
