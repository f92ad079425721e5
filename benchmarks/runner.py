"""Run every engine on one model in its own fresh process and write reports/bench/<model>.{json,md}.

Flow: build the 30-s clip -> for each engine, put the weights in its layout (benchmarks.prepare)
and run `python -m benchmarks.worker` (load, one untimed warm-up, `repeats` timed runs) -> summarize
(median and spread) -> print the table -> write the JSON and Markdown atomically.
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
from benchmarks.engines import OPTIONS, check_engines
from benchmarks.prepare import DEFAULT_CACHE, prepare
from benchmarks.stats import spread_str, summarize
from parity.report import atomic_write

ROOT = Path(__file__).resolve().parent.parent

REPORTS = ROOT / "reports" / "bench"
MB = 1024 * 1024


def worker_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["MLX_ENABLE_TF32"] = "0"  # full fp32 matmuls where a backend would use TF32 (CUDA)
    env["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded; fail instead
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(job: dict, workdir: Path, threads: int, timeout_s: float) -> dict:
    """Run one engine's worker in a fresh interpreter; its result dict (with 'error' on failure)."""
    job_file = workdir / f"job-{job['engine']}.json"
    out_file = workdir / f"result-{job['engine']}.json"
    job_file.write_text(json.dumps(job))
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", str(job_file),
                               str(out_file)], cwd=ROOT, env=worker_env(threads),
                              timeout=timeout_s, stdout=sys.stderr, check=False)
    except subprocess.TimeoutExpired:
        return {"engine": job["engine"], "error": f"timed out after {timeout_s:.0f} s "
                                                  "(raise --timeout or lower --repeats)"}
    if not out_file.exists():
        return {"engine": job["engine"],
                "error": f"worker exited with status {proc.returncode} and wrote no result"}
    return json.loads(out_file.read_text())


# ---------------------------------------------------------------------------------------------
# statistics


def word_error_rate(reference: str, hypothesis: str) -> tuple[float, str]:
    """(WER, normalizer used): openai-whisper's EnglishTextNormalizer when importable."""
    import jiwer

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


def add_ratios(summaries: dict[str, dict], baseline: str = "ours") -> None:
    """`time_vs_ours`: engine median wall time / ours (> 1: the engine is slower than ours)."""
    base = summaries.get(baseline)
    for s in summaries.values():
        s["time_vs_ours"] = (s["wall_s"]["median"] / base["wall_s"]["median"]) if base else None


# ---------------------------------------------------------------------------------------------
# table and reports

COLUMNS = ("engine", "RTF", "wall s", "enc s/window", "ms/token", "tokens", "peak RSS MB",
           "MLX peak MB (run)", "time / ours", "WER")


def table_rows(summaries: dict[str, dict], failed: dict[str, str]) -> list[list[str]]:
    rows = []
    for name, s in summaries.items():
        enc, mpt = s["encoder_per_window_s"], s["ms_per_token"]
        rows.append([
            name, spread_str(s["rtf"], fmt="{:.3f}"), spread_str(s["wall_s"], fmt="{:.2f}"),
            "n/a" if enc is None else spread_str(enc, fmt="{:.3f}"),
            "n/a" if mpt is None else spread_str(mpt, fmt="{:.1f}"),
            str(s["n_tokens"]), f"{s['peak_rss_bytes'] / MB:.0f}",
            "-" if s["mlx_peak_bytes"] is None else f"{s['mlx_peak_bytes'] / MB:.0f}"
            + ("" if s.get("mlx_peak_run_bytes") is None
               else f" ({s['mlx_peak_run_bytes'] / MB:.0f})"),
            "-" if s["time_vs_ours"] is None else f"{s['time_vs_ours']:.2f}x",
            f"{s['wer']:.3f}"])
    for name, err in failed.items():
        rows.append([name, "FAILED: " + err.splitlines()[0][:90]] + [""] * (len(COLUMNS) - 2))
    return rows


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


def headline(summaries: dict[str, dict]) -> list[str]:
    lines = []
    if "ours" not in summaries:
        return ["ours did not run: no ratios"]
    for name, s in summaries.items():
        if name == "ours":
            continue
        r = s["time_vs_ours"]
        lines.append(f"{name} takes {r:.2f}x ours' time ("
                     + (f"ours is {r:.2f}x faster" if r >= 1 else f"ours is {1 / r:.2f}x slower")
                     + ")")
    return lines


def to_markdown(rep: dict) -> str:
    m, c = rep["machine"], rep["clip"]
    blas = next((r["blas"] for r in rep["engines"].values() if r.get("blas")), None)
    dev = next((r["mlx_device"] for r in rep["engines"].values() if r.get("mlx_device")), None)
    kernels = next((r["cpu_kernels"] for r in rep["engines"].values() if r.get("cpu_kernels")),
                   None)
    lines = [
        f"# Benchmark: {rep['model']} ({rep['dtype']})", "",
        f"- Run: {rep['started']} — `{rep['command']}`",
        (f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
         f"({m['usable_cores']} usable), {(m['memory_total_bytes'] or 0) / 2**30:.1f} GiB, "
         f"{m['platform']}"),
        (f"- Load average (1/5/15 min) before / after: {m['loadavg_1_5_15']} / "
         f"{rep['loadavg_after']}"),
        f"- MLX device: {dev}; MLX BLAS: {blas}",
        f"- MLX CPU softmax/GELU kernels: {kernels}",
        (f"- Threads: {rep['threads']} for every engine (torch.set_num_threads, CTranslate2 "
         "cpu_threads, OMP/MKL/OPENBLAS_NUM_THREADS)"),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in rep["versions"].items()),
        (f"- Clip: {c['duration_s']:.1f} s from {c['source']} ({', '.join(c['pieces'])}; "
         f"{c['speech_s']:.2f} s of speech then silence; cut: {c['cut']}), "
         f"sha256(float32) {c['sha256_float32'][:16]}…"),
        "- Options (every engine): " + ", ".join(f"{k}={v}" for k, v in rep["options"].items()),
        (f"- Timing: one fresh process per engine; load, one untimed warm-up, {rep['repeats']} "
         "timed runs; median [min-max]"),
        "", markdown_table(table_rows(rep["summaries"], rep["failed"])), "",
        ("Columns: RTF = wall time / audio duration; enc s/window = time inside the encoder per "
         "30-s window; ms/token = (wall − encoder) / text tokens generated (mel, prompt, decoding "
         "and logit filters); peak RSS = the worker process's high-water resident set "
         "(VmHWM on Linux) over imports, load and runs; MLX peak = `mx.get_peak_memory()` (MLX "
         "allocations, excluding its buffer cache) over load and runs, in brackets over the "
         "runs only (warm-up and timed); time / ours = median wall time over ours' "
         "(> 1: slower than ours); WER against the clip's reference transcript."), "",
    ]
    hl = headline(rep["summaries"])
    if hl:
        lines += ["## Headline", ""] + [f"- {h}" for h in hl] + [""]
    lines += ["## Transcripts", ""]
    for name, r in rep["engines"].items():
        if "error" in r:
            lines += [f"- **{name}**: FAILED — {r['error']}"]
        else:
            lines += [f"- **{name}**: {r['text'].strip()}"]
    lines += ["", f"Reference: {c['reference_text']}", ""]
    return "\n".join(lines)


def run(model: str, engines: list[str], repeats: int = 3, dtype: str = "float32",
        threads: int | None = None, cache: Path = DEFAULT_CACHE, out_dir: Path = REPORTS,
        timeout_s: float = 1800.0, command: str = "") -> dict:
    check_engines(engines, dtype)
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    threads = threads or os.cpu_count() or 1
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    facts = machine.machine_facts()
    clip = english_clip()
    print(f"bench {model} ({dtype}): {clip.duration_s:.1f} s clip from {clip.source}, "
          f"{len(engines)} engines, warm-up + {repeats} repeats each, {threads} threads",
          file=sys.stderr, flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        clip_file = workdir / "clip.npy"
        np.save(clip_file, clip.audio)
        for i, engine in enumerate(engines, 1):
            t0 = time.perf_counter()
            print(f"[{i}/{len(engines)}] {engine}: preparing weights", file=sys.stderr, flush=True)
            try:
                prepared = prepare(engine, model, dtype, cache)
            except Exception as e:  # noqa: BLE001  (recorded as this engine's failure; others run)
                results[engine] = {"engine": engine, "error": f"{type(e).__name__}: {e}"}
                print(f"[{i}/{len(engines)}] {engine}: FAILED preparing: {e}", file=sys.stderr)
                continue
            print(f"[{i}/{len(engines)}] {engine}: fresh process", file=sys.stderr, flush=True)
            job = {"engine": engine, "prepared": prepared, "dtype": dtype, "threads": threads,
                   "repeats": repeats, "clip": str(clip_file)}
            results[engine] = run_worker(job, workdir, threads, timeout_s)
            status = "FAILED" if "error" in results[engine] else "done"
            print(f"[{i}/{len(engines)}] {engine}: {status} in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    summaries, failed = {}, {}
    for name, r in results.items():
        if "error" in r:
            failed[name] = r["error"]
        else:
            summaries[name] = summarize_engine(r, clip.duration_s, clip.text)
    add_ratios(summaries)
    rep = {
        "model": model, "dtype": dtype, "started": started, "command": command,
        "machine": facts, "loadavg_after": list(os.getloadavg()) if hasattr(os, "getloadavg")
        else None, "versions": machine.versions(), "clip": clip.describe(),
        "options": OPTIONS.to_dict(), "threads": threads, "repeats": repeats,
        "summaries": summaries, "failed": failed, "engines": results,
    }
    return rep


def write(rep: dict, out_dir: Path = REPORTS) -> tuple[Path, Path]:
    rep = machine.portable(rep)  # paths relative to the repository, never this machine's
    stem = rep["model"] if rep["dtype"] == "float32" else f"{rep['model']}-{rep['dtype']}"
    js, md = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write(js, json.dumps(rep, indent=2) + "\n")
    atomic_write(md, to_markdown(rep))
    return js, md
