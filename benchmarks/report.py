"""`python -m benchmarks.report` (`make report`): reports/success-metrics.{md,json} and plots.

Every roadmap success metric is mapped to a measured value and PASS / FAIL / NOT MEASURED. Only
files that the tools wrote are read: reports/bench/<model>.json (`make bench`),
reports/parity/<model>[-<dtype>].json (`make parity`; word timestamps come from the Whisper
specs' `transcription` check in those files: our word times against openai-whisper's on the same
weights). A metric whose input is missing is NOT MEASURED, never PASS.

Plots (matplotlib, Agg) go to reports/plots/: per-layer error curves of each parity case (max abs
error, needed atol and the table's atol per tap, in execution order) and, per benchmarked model,
RTF and peak memory by engine. They are not tracked by git (reports/plots/ is in .gitignore:
18.6 MB of PNGs kept the tracked tree from fitting one device call next to the MLX-CUDA wheel);
`make report` makes them again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import machine
from benchmarks.runner import MB, atomic_write

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
RTF_TARGET = 0.5  # Whisper base, ours
MEMORY_TARGET_BYTES = 2 * 1024**3  # "memory < 2 GB", read as 2 GiB of peak process RSS, ours
WORD_TS_TARGET_S = 0.020  # word timestamps within 20 ms of openai-whisper
# tiny/base/small working: the parity report names that count for each size
SIZES = {"tiny": ("whisper-tiny.en", "whisper-tiny"), "base": ("whisper-base",),
         "small": ("whisper-small", "whisper-small.en")}


@dataclass
class Metric:
    name: str
    target: str
    value: str
    status: str  # PASS, FAIL or NOT MEASURED
    evidence: str  # where the value comes from (relative to reports/)


def _load_dir(folder: Path) -> dict[str, dict]:
    """{file stem: parsed JSON} of folder/*.json; a corrupt file is an error naming it."""
    out = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        try:
            out[f.stem] = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{f} is not valid JSON ({e}); re-run the tool that writes it") from e
    return out


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def metric_rtf(bench: dict[str, dict], root: Path) -> Metric:
    target = f"Whisper base RTF < {RTF_TARGET} (ours, median)"
    rep = bench.get("whisper-base")
    if rep is None or "ours" not in rep.get("summaries", {}):
        why = "no reports/bench/whisper-base.json" if rep is None else "ours failed in the run"
        return Metric("Whisper base real-time factor", target, why, "NOT MEASURED",
                      "make bench MODEL=whisper-base")
    s = rep["summaries"]["ours"]["rtf"]
    return Metric("Whisper base real-time factor", target,
                  f"{s['median']:.3f} (min {s['min']:.3f}, max {s['max']:.3f}, n={s['n']}) on "
                  f"{rep['machine']['cpu_model']}",
                  "PASS" if s["median"] < RTF_TARGET else "FAIL", "bench/whisper-base.md")


def metric_memory(bench: dict[str, dict]) -> Metric:
    # The roadmap's metric is Whisper base's ("Whisper base RTF < 0.5 and memory < 2 GB"); the
    # other benchmarked models' peaks are listed in the per-model speed table, not judged here.
    target = "Whisper base peak memory < 2 GB (ours, process peak RSS)"
    peaks = {m: r["summaries"][_ours(r)] for m, r in _whisper_bench(bench).items()
             if _ours(r) in r.get("summaries", {})}
    if "whisper-base" not in peaks:
        return Metric("Memory", target, "no benchmark of ours on whisper-base", "NOT MEASURED",
                      "make bench MODEL=whisper-base")
    parts = [f"{m}: RSS {s['peak_rss_bytes'] / MB:.0f} MB"
             + (f", MLX {s['mlx_peak_bytes'] / MB:.0f} MB" if s.get("mlx_peak_bytes") else "")
             for m, s in peaks.items()]
    ok = peaks["whisper-base"]["peak_rss_bytes"] < MEMORY_TARGET_BYTES
    return Metric("Memory", target, "; ".join(parts), "PASS" if ok else "FAIL",
                  ", ".join(f"bench/{m}.md" for m in peaks))


GPU_REPORT = "gpu-h100"  # reports/bench/gpu-h100.json, written by benchmarks.gpu on the H100


def _is_gpu(rep: dict) -> bool:
    return "runs" in rep and "nvidia_smi" in rep


def metric_gpu(bench: dict[str, dict]) -> Metric:
    """Issue 4's GPU target: our whole 30-s clip transcription faster than every torch CUDA peer
    of the same run, in each precision that ran (fp16, fp32, tf32)."""
    target = "GPU: ours' whole-clip transcription faster than every torch CUDA peer, per precision"
    rep = bench.get(GPU_REPORT)
    if rep is None:
        return Metric("Whisper base on the GPU", target, f"no reports/bench/{GPU_REPORT}.json",
                      "NOT MEASURED", "python -m benchmarks.gpu (see benchmarks/gpu_device.sh)")
    ms: dict[str, dict[str, float]] = {}
    for run in rep["runs"]:
        if "transcribe" in run:
            ms.setdefault(run["precision"], {})[run["engine"]] = run["transcribe"]["ms"]["median"]
    parts, ok = [], bool(ms)
    for precision, engines in ms.items():
        peers = {e: v for e, v in engines.items() if e != "ours"}
        if "ours" not in engines or not peers:
            ok = False
            parts.append(f"{precision}: " + ("ours missing" if "ours" not in engines
                                             else "no peer"))
            continue
        ok = ok and engines["ours"] < min(peers.values())
        parts.append(f"{precision}: ours {engines['ours']:.0f} ms, "
                     + ", ".join(f"{e} {v:.0f}" for e, v in peers.items()))
    device = rep["nvidia_smi"].split(",")[0]
    return Metric("Whisper base on the GPU", target,
                  "; ".join(parts) + f" (median whole-clip ms, {device})",
                  "PASS" if ok else "FAIL", f"bench/{GPU_REPORT}.md")


MATRIX_REPORT = "gpu-matrix"  # reports/bench/gpu-matrix.json, benchmarks.gpu_matrix


def device_matrix(bench: dict[str, dict]) -> dict:
    """Model x device x precision, ours against the best peer per stage: the CPU stage reports
    (float32, this machine) and the GPU matrix; each machine named once."""
    rows, machines = [], {}
    for model, rep in sorted(bench.items()):
        if rep.get("kind") != "stages" or rep.get("device", "cpu") != "cpu":
            continue
        machines["cpu"] = bench_machine(rep)
        rows += _matrix_rows(model, "cpu", "fp32" if rep["dtype"] == "float32" else rep["dtype"],
                             rep)
    gpu = bench.get(MATRIX_REPORT)
    if gpu is not None:
        machines["gpu"] = gpu["nvidia_smi"].split(",")[0]
        for run in gpu["runs"]:
            if "report" in run:
                rows += _matrix_rows(run["model"], "gpu", run["precision"], run["report"])
    return {"machines": machines, "rows": rows}


def _matrix_rows(model: str, device: str, precision: str, rep: dict) -> list[dict]:
    ours = rep["summaries"].get(rep.get("ours", "mlx"))
    peers = {e: s for e, s in rep["summaries"].items() if e != rep.get("ours", "mlx")}
    out = []
    for stage, st in (ours or {}).get("stages", {}).items():
        times = {e: s["stages"][stage]["wall_s"]["median"] for e, s in peers.items()
                 if stage in s.get("stages", {})}
        if not times:
            continue
        best = min(times, key=times.get)
        out.append({"model": model, "device": device, "precision": precision, "stage": stage,
                    "ours_ms": 1e3 * st["wall_s"]["median"], "peer": best,
                    "peer_ms": 1e3 * times[best],
                    "peer_over_ours": times[best] / st["wall_s"]["median"]})
    return out


def _ours(rep: dict) -> str:
    """Our engine's name in a bench report: "ours" (Whisper runner) or "mlx" (per-stage runner)."""
    return "mlx" if rep.get("kind") == "stages" else "ours"


def _whisper_bench(bench: dict[str, dict]) -> dict[str, dict]:
    return {m: r for m, r in bench.items()
            if r.get("kind") not in ("stages", "speech") and not _is_gpu(r)}


def speech_rows(bench: dict[str, dict]) -> list[dict]:
    """One row per (TTS model, stage, engine): median tokens/s, audio seconds per wall second,
    time to first audio, tokens/s over ours' and peak RSS (reports/bench/<id>.json, kind
    "speech", benchmarks/tts.py)."""
    rows = []
    for model, rep in bench.items():
        if rep.get("kind") != "speech":
            continue
        for engine, s in rep.get("summaries", {}).items():
            for stage, st in s["stages"].items():
                rows.append({"model": model, "stage": stage, "engine": engine,
                             "tokens_per_s": st["tokens_per_s"]["median"],
                             "x_real_time": st["x_real_time"]["median"],
                             "ttfa_s": st["ttfa_s"]["median"] if "ttfa_s" in st else None,
                             "tokens_per_s_vs_ours": st["tokens_per_s_vs_ours"],
                             "peak_rss_mb": s["peak_rss_bytes"] / MB,
                             "repeats": rep["repeats"], "cpu": rep["machine"]["cpu_model"]})
        for engine, err in rep.get("failed", {}).items():
            rows.append({"model": model, "stage": "-", "engine": engine, "failed": err})
    return rows


def _stage_bench(bench: dict[str, dict]) -> dict[str, dict]:
    return {m: r for m, r in bench.items() if r.get("kind") == "stages"}


def stage_rows(bench: dict[str, dict]) -> list[dict]:
    """One row per (model, stage, peer): ours' and the peer's median RTF and the time ratio."""
    rows = []
    for model, rep in _stage_bench(bench).items():
        s = rep.get("summaries", {})
        if "mlx" not in s:
            continue
        for peer, ps in s.items():
            if peer == "mlx":
                continue
            for stage, st in ps["stages"].items():
                ours = s["mlx"]["stages"].get(stage)
                if ours is None:
                    continue
                rows.append({"model": model, "stage": stage, "peer": peer,
                             "ours_rtf": ours["rtf"]["median"], "peer_rtf": st["rtf"]["median"],
                             "peer_time_over_ours": st["wall_s"]["median"] / ours["wall_s"]["median"],
                             "ours_peak_rss_mb": s["mlx"]["peak_rss_bytes"] / MB,
                             "peer_peak_rss_mb": ps["peak_rss_bytes"] / MB,
                             "repeats": rep["repeats"], "cpu": rep["machine"]["cpu_model"]})
    return rows


def roadmap_rows(parity: dict[str, dict], bench: dict[str, dict], root: Path) -> list[dict]:
    """Every registered model: its float32 parity status, goldens on disk, benchmark presence."""
    from parity.registry import SPECS

    rows = []
    for spec in SPECS:
        rep = parity.get(spec.name)
        golden = (ROOT / "golden" / spec.name / "manifest.json").is_file()
        rows.append({"model": spec.name, "parity": "not run" if rep is None else
                     ("PASS" if rep.get("passed") else "FAIL"),
                     "golden": golden, "bench": spec.name in bench,
                     "weights": spec.weights})
    return rows


def _parity_for(parity: dict[str, dict], names: tuple[str, ...]) -> list[tuple[str, dict]]:
    """float32 parity reports of the named models (fp16 ones count under "every model")."""
    return [(stem, r) for stem, r in parity.items()
            if r.get("model") in names and r.get("dtype") == "float32"]


def metric_sizes(parity: dict[str, dict]) -> list[Metric]:
    out = []
    for size, names in SIZES.items():
        found = _parity_for(parity, names)
        name = f"Whisper {size} working"
        target = f"float32 parity report of {' or '.join(names)} passes"
        if not found:
            out.append(Metric(name, target, "no parity report", "NOT MEASURED",
                              f"make parity MODEL={names[0]}"))
            continue
        ok = all(r.get("passed") is True for _, r in found)
        value = "; ".join(f"{stem}: {'pass' if r.get('passed') else 'FAIL'}" for stem, r in found)
        out.append(Metric(name, target, value, "PASS" if ok else "FAIL",
                          ", ".join(f"parity/{stem}.md" for stem, _ in found)))
    return out


def word_timestamp_results(parity: dict[str, dict]) -> dict[str, dict]:
    """model -> the `transcription` check of its float32 parity report (word-time differences)."""
    out = {}
    for stem, rep in parity.items():
        for check in rep.get("checks", []):
            if check.get("name") == "transcription" and rep.get("dtype") == "float32":
                out[stem] = check
    return out


def metric_word_timestamps(parity: dict[str, dict]) -> Metric:
    target = f"word timestamps within {WORD_TS_TARGET_S * 1000:.0f} ms of openai-whisper"
    usable = {m: c for m, c in word_timestamp_results(parity).items()
              if "word_max_abs_ms" in c.get("summary", {})}
    if not usable:
        return Metric("Word timestamps", target, "no parity report with a transcription check",
                      "NOT MEASURED", "make parity MODEL=whisper-base")
    worst = max(c["summary"]["word_max_abs_ms"] for c in usable.values()) / 1000
    value = "; ".join(
        f"{m}: {c['summary']['words_compared']} words, mean |Δ| "
        f"{c['summary']['word_mean_abs_ms']:.1f} ms, max |Δ| {c['summary']['word_max_abs_ms']:.1f} ms"
        f" (tokens identical {c['summary']['tokens_identical']})" for m, c in usable.items())
    ok = worst <= WORD_TS_TARGET_S and all(c.get("passed") for c in usable.values())
    return Metric("Word timestamps", target, value, "PASS" if ok else "FAIL",
                  ", ".join(f"parity/{m}.md" for m in usable))


def metric_encodec(parity: dict[str, dict]) -> Metric:
    """PASS only when every float32 Encodec parity case shows the round trip itself:
    `codes_equal_fraction` == 1 (codes exact) and a passing decoded-audio tap (`audio_values`).
    Reduced-precision reports are judged by their own tolerance tables under "every model"."""
    found = [(s, r) for s, r in parity.items()
             if str(r.get("model", "")).startswith("encodec") and r.get("dtype") == "float32"]
    target = "Encodec encode -> codes -> decode matches the reference in float32 (codes exact, " \
             "decoded audio within tolerance)"
    if not found:
        return Metric("Encodec round trip", target, "no float32 Encodec parity report",
                      "NOT MEASURED", "-")
    parts, ok, measured = [], True, True
    for stem, r in found:
        codes, audio, snr = [], [], []
        for c in r.get("cases", []):
            frac = c.get("metrics", {}).get("codes_equal_fraction")
            tap = next((t for t in c.get("taps", []) if t.get("name") == "audio_values"), None)
            if frac is None or tap is None:
                measured = False
                continue
            ok &= frac == 1.0 and bool(tap.get("passed")) and c.get("passed") is True
            codes.append(frac)
            audio.append(float(tap["max_abs"]))
            if c["metrics"].get("roundtrip_snr_ref_db") is not None:
                snr.append(c["metrics"]["roundtrip_snr_ref_db"])
        if not codes:
            parts.append(f"{stem}: no codes/audio comparison")
            continue
        parts.append(f"{stem} ({len(codes)} cases): codes equal fraction min {min(codes):.3f}, "
                     f"decoded audio max_abs {max(audio):.2g}"
                     + (f", round-trip SNR vs input {min(snr):.1f}..{max(snr):.1f} dB on the "
                        "reference too (weights as in the parity report)" if snr else ""))
    status = "NOT MEASURED" if not measured else ("PASS" if ok else "FAIL")
    # A round trip through untrained weights proves the port equals the reference, not that
    # Encodec round-trips audio: with only such reports the metric stays NOT MEASURED (a failure
    # to match the reference is still a FAIL).
    untrained = [s for s, r in found if "random" in str(r.get("weights", "")).lower()]
    if status == "PASS" and len(untrained) == len(found):
        status = "NOT MEASURED"
        parts.append("all on untrained (random) weights: the port matches the reference round "
                     "trip, but no trained Encodec was round-tripped")
    return Metric("Encodec round trip", target, "; ".join(parts), status,
                  ", ".join(f"parity/{s}.md" for s, _ in found))


def metric_all_models(parity: dict[str, dict]) -> Metric:
    target = "every model's parity report passes against its reference"
    if not parity:
        return Metric("Every model matches its reference", target, "no parity reports",
                      "NOT MEASURED", "make parity MODEL=...")
    failing = [s for s, r in parity.items() if r.get("passed") is not True]
    value = (f"{len(parity) - len(failing)}/{len(parity)} pass"
             + (f"; failing: {', '.join(failing)}" if failing else ""))
    return Metric("Every model matches its reference", target, value,
                  "FAIL" if failing else "PASS", ", ".join(f"parity/{s}.md" for s in parity))


def ratios(bench: dict[str, dict]) -> list[dict]:
    """Per model: peer median wall time / ours (> 1: the peer is slower than ours)."""
    out = []
    for model, rep in _whisper_bench(bench).items():
        s = rep.get("summaries", {})
        for peer in ("openai-whisper", "mlx-whisper", "faster-whisper", "transformers"):
            if "ours" in s and peer in s:
                out.append({"model": model, "peer": peer, "peer_time_over_ours":
                            s[peer]["wall_s"]["median"] / s["ours"]["wall_s"]["median"],
                            "repeats": rep["repeats"], "cpu": rep["machine"]["cpu_model"]})
    return out


# ---------------------------------------------------------------------------------------------
# plots


def plot_parity(stem: str, rep: dict, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    paths = []
    for case in rep.get("cases", []):
        taps = [t for t in case.get("taps", []) if "max_abs" in t]
        if not taps:
            continue
        x = range(len(taps))
        fig, ax = plt.subplots(figsize=(max(8, len(taps) * 0.18), 4.5))
        floor = 1e-12  # log axis: an exact match is drawn at this floor
        ax.semilogy(x, [max(float(t["max_abs"]), floor) for t in taps], "o-", ms=3,
                    label="max |mlx − ref|")
        ax.semilogy(x, [max(float(t["needed_atol"]), floor) for t in taps], "s--", ms=3,
                    label="needed floor (at the tap's rtol)")
        ax.semilogy(x, [max(float(t.get("floor", t["atol"])), floor) for t in taps], ":",
                    color="k", label="allowed floor max(atol, k_rms·rms)")
        fails = [i for i, t in enumerate(taps) if not t.get("passed")]
        if fails:
            ax.semilogy(fails, [max(float(taps[i]["max_abs"]), floor) for i in fails], "rx",
                        ms=8, label="FAIL")
        ax.set_ylabel(f"abs error (exact match drawn at {floor:g})")
        step = max(1, len(taps) // 40)
        ax.set_xticks(list(x)[::step])
        ax.set_xticklabels([t["name"] for t in taps][::step], rotation=90, fontsize=6)
        ax.set_title(f"{rep.get('model')} ({rep.get('dtype')}) {case.get('case')} vs "
                     f"{case.get('against')}: {'PASS' if case.get('passed') else 'FAIL'}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"parity-{stem}-{case.get('case')}-{case.get('against')}.png"
        _save(fig, path)
        paths.append(path)
    return paths


def plot_bench(model: str, rep: dict, out_dir: Path) -> Path | None:
    plt = _pyplot()
    s = rep.get("summaries", {})
    if not s:
        return None
    if rep.get("kind") == "stages":
        return plot_stage_bench(model, rep, out_dir)
    if rep.get("kind") == "speech":
        return plot_speech_bench(model, rep, out_dir)
    names = list(s)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    med = [s[n]["rtf"]["median"] for n in names]
    lo = [s[n]["rtf"]["median"] - s[n]["rtf"]["min"] for n in names]
    hi = [s[n]["rtf"]["max"] - s[n]["rtf"]["median"] for n in names]
    a1.bar(names, med, yerr=[lo, hi], capsize=4,
           color=["tab:orange" if n == "ours" else "tab:blue" for n in names])
    if model == "whisper-base":
        a1.axhline(RTF_TARGET, color="r", ls="--", label=f"target {RTF_TARGET}")
        a1.legend()
    a1.set_ylabel("real-time factor (median, min-max)")
    a1.set_title(f"{model}: RTF by engine ({rep['threads']} threads)")
    a1.tick_params(axis="x", rotation=30)
    width = 0.4
    xs = range(len(names))
    a2.bar([x - width / 2 for x in xs], [s[n]["peak_rss_bytes"] / MB for n in names], width,
           label="peak RSS")
    a2.bar([x + width / 2 for x in xs], [(s[n]["mlx_peak_bytes"] or 0) / MB for n in names],
           width, label="MLX peak (MLX engines)")
    a2.axhline(MEMORY_TARGET_BYTES / MB, color="r", ls="--", label="2 GiB target")
    a2.set_xticks(list(xs))
    a2.set_xticklabels(names, rotation=30)
    a2.set_ylabel("MB")
    a2.set_title(f"{model}: peak memory by engine")
    a2.legend(fontsize=7)
    return _save_bench(fig, model, rep, out_dir)


def plot_stage_bench(model: str, rep: dict, out_dir: Path) -> Path:
    plt = _pyplot()
    s = rep["summaries"]
    engines = list(s)
    stages = list(next(iter(s.values()))["stages"])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(engines)
    for i, e in enumerate(engines):
        xs = [j + (i - (len(engines) - 1) / 2) * width for j in range(len(stages))]
        med = [s[e]["stages"][st]["rtf"]["median"] if st in s[e]["stages"] else 0 for st in stages]
        a1.bar(xs, med, width, label=e, color="tab:orange" if e == "mlx" else None)
    a1.set_xticks(range(len(stages)))
    a1.set_xticklabels(stages)
    a1.set_ylabel("real-time factor (median)")
    a1.set_title(f"{model}: RTF by stage and engine ({rep['threads']} threads)")
    a1.legend(fontsize=7)
    a2.bar(engines, [s[e]["peak_rss_bytes"] / MB for e in engines], 0.4, label="peak RSS")
    a2.set_ylabel("MB")
    a2.set_title(f"{model}: peak RSS by engine")
    return _save_bench(fig, model, rep, out_dir)


def plot_speech_bench(model: str, rep: dict, out_dir: Path) -> Path:
    """TTS: median tokens/s by engine and stage, and peak RSS by engine."""
    plt = _pyplot()
    s = rep["summaries"]
    engines = list(s)
    stages = sorted({st for e in engines for st in s[e]["stages"]})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(engines)
    for i, e in enumerate(engines):
        xs = [j + (i - (len(engines) - 1) / 2) * width for j in range(len(stages))]
        med = [s[e]["stages"][st]["tokens_per_s"]["median"] if st in s[e]["stages"] else 0
               for st in stages]
        a1.bar(xs, med, width, label=e, color="tab:orange" if e == rep["ours"] else None)
    a1.set_xticks(range(len(stages)))
    a1.set_xticklabels(stages)
    a1.set_ylabel("generated tokens / s (median)")
    a1.set_title(f"{model}: tokens/s by engine ({rep['threads']} threads)")
    a1.legend(fontsize=7)
    a2.bar(engines, [s[e]["peak_rss_bytes"] / MB for e in engines], 0.4, label="peak RSS")
    a2.set_ylabel("MB")
    a2.set_title(f"{model}: peak RSS by engine")
    return _save_bench(fig, model, rep, out_dir)


def _pyplot():
    """matplotlib.pyplot on the Agg backend: plots are only written to files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_bench(fig, model: str, rep: dict, out_dir: Path) -> Path:
    """Title a benchmark figure with the machine's CPU, write it to bench-<model>.png, close it."""
    fig.suptitle(rep["machine"]["cpu_model"], fontsize=8)
    fig.tight_layout()
    path = out_dir / f"bench-{model}.png"
    _save(fig, path)
    return path


def _save(fig, path: Path) -> None:
    """Write `fig` to `path` atomically and close it."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        _pyplot().close(fig)


# ---------------------------------------------------------------------------------------------


def build(root: Path = REPORTS, plots: bool = True) -> dict:
    bench = _load_dir(root / "bench")
    parity = _load_dir(root / "parity")
    metrics = [metric_rtf(bench, root), metric_memory(bench), *metric_sizes(parity),
               metric_word_timestamps(parity), metric_encodec(parity), metric_all_models(parity),
               metric_gpu(bench)]
    plot_files = []
    if plots:
        for stem, rep in parity.items():
            print(f"plot parity {stem}", file=sys.stderr, flush=True)
            plot_files += plot_parity(stem, rep, root / "plots")
        for model, rep in bench.items():
            print(f"plot bench {model}", file=sys.stderr, flush=True)
            p = plot_bench(model, rep, root / "plots")
            if p:
                plot_files.append(p)
    return {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine.machine_facts(),
        "bench_machines": {m: bench_machine(r) for m, r in bench.items()},
        "metrics": [asdict(m) for m in metrics],
        "ratios": ratios(bench),
        "stage_ratios": stage_rows(bench),
        "device_matrix": device_matrix(bench),
        "speech": speech_rows(bench),
        "models": roadmap_rows(parity, bench, root),
        "parity_reports": {s: {"model": r.get("model"), "dtype": r.get("dtype"),
                               "passed": r.get("passed")} for s, r in parity.items()},
        "bench_reports": {m: {"started": r.get("started"), "repeats": r.get("repeats"),
                              "failed": sorted(r.get("failed", {}))} for m, r in bench.items()},
        "plots": [_rel(p, root) for p in plot_files],
    }


def bench_machine(rep: dict) -> str:
    """The machine a benchmark report ran on: the GPU's name, or the CPU model and its cores."""
    if _is_gpu(rep):
        return rep["nvidia_smi"].split(",")[0]
    m = rep["machine"]
    return f"{m['cpu_model']}, {m['logical_cores']} cores" if m.get("logical_cores") \
        else m["cpu_model"]


def _machines_line(rep: dict) -> str:
    """Each machine named once: 'Benchmarks ran on A (17 reports) and B (gpu-h100, …).' The
    machine with the most reports gets a count, the others their report names."""
    by_machine: dict[str, list[str]] = {}
    for stem, name in rep["bench_machines"].items():
        by_machine.setdefault(name, []).append(stem)
    if not by_machine:
        return "No benchmark reports."
    ranked = sorted(by_machine.items(), key=lambda kv: -len(kv[1]))
    parts = [f"{ranked[0][0]} ({len(ranked[0][1])} report{'s' * (len(ranked[0][1]) > 1)})"]
    parts += [f"{name} ({', '.join(stems)})" for name, stems in ranked[1:]]
    return "Benchmarks ran on " + (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") \
        + parts[-1] + "."


def to_markdown(rep: dict) -> str:
    lines = ["# Success metrics", "",
             f"Generated {rep['generated']} from the reports below. {_machines_line(rep)}",
             "", "| metric | target | measured | status | evidence |", "|---|---|---|---|---|"]
    for x in rep["metrics"]:
        ev = ", ".join(f"[{e.strip()}]({e.strip()})" if e.strip().endswith((".md", ".json"))
                       else e for e in x["evidence"].split(","))
        lines.append(f"| {x['name']} | {x['target']} | {x['value']} | **{x['status']}** | {ev} |")
    lines += ["", "## CPU time against the peers", ""]
    if rep["ratios"]:
        for r in rep["ratios"]:
            f = r["peer_time_over_ours"]
            verdict = f"ours is {f:.2f}x faster" if f >= 1 else f"ours is {1 / f:.2f}x slower"
            lines.append(f"- {r['model']}: {r['peer']} takes {f:.2f}x ours' time ({verdict}; "
                         f"median of {r['repeats']}, {r['cpu']})")
    else:
        lines.append("- NOT MEASURED: no benchmark report has both ours and a peer "
                     "(`make bench MODEL=whisper-base`)")
    lines += ["", "## Other models: time against their torch reference (per stage)", ""]
    if rep.get("stage_ratios"):
        lines += ["| model | stage | ours RTF | peer | peer RTF | peer time / ours | "
                  "ours peak RSS MB | peer peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
        for r in rep["stage_ratios"]:
            lines.append(f"| {r['model']} | {r['stage']} | {r['ours_rtf']:.4f} | {r['peer']} | "
                         f"{r['peer_rtf']:.4f} | {r['peer_time_over_ours']:.2f}x | "
                         f"{r['ours_peak_rss_mb']:.0f} | {r['peer_peak_rss_mb']:.0f} |")
        lines += ["", "(peer time / ours > 1: ours is faster; see reports/bench/<model>.md)"]
    else:
        lines.append("- none measured (`make bench MODEL=<id>`)")
    lines += ["", "## Model x device x precision: ours against the best peer", ""]
    dm = rep.get("device_matrix") or {"rows": []}
    if dm["rows"]:
        lines += [f"Machines: {', '.join(f'{d}: {m}' for d, m in dm['machines'].items())}.", "",
                  "| model | device | precision | stage | ours ms | best peer | peer ms | "
                  "peer time / ours |", "|---|---|---|---|---|---|---|---|"]
        for r in dm["rows"]:
            lines.append(f"| {r['model']} | {r['device']} | {r['precision']} | {r['stage']} | "
                         f"{r['ours_ms']:.1f} | {r['peer']} | {r['peer_ms']:.1f} | "
                         f"{r['peer_over_ours']:.2f}x |")
    else:
        lines.append("- none measured")
    lines += ["", "## Text to speech: ours against the torch reference and mlx-audio", ""]
    if rep.get("speech"):
        lines += ["| model | stage | engine | tokens/s | tokens/s / ours | audio s / wall s | "
                  "first audio s | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
        for r in rep["speech"]:
            if "failed" in r:
                lines.append(f"| {r['model']} | - | {r['engine']} | FAILED: "
                             f"{r['failed'].splitlines()[0][:120]} | | | | |")
                continue
            vs, ttfa = r["tokens_per_s_vs_ours"], r["ttfa_s"]
            lines.append(f"| {r['model']} | {r['stage']} | {r['engine']} | "
                         f"{r['tokens_per_s']:.1f} | {'-' if vs is None else f'{vs:.2f}x'} | "
                         f"{r['x_real_time']:.3f} | "
                         f"{'-' if ttfa is None else f'{ttfa:.2f}'} | "
                         f"{r['peak_rss_mb']:.0f} |")
        lines += ["", "(tokens/s / ours < 1: slower than ours; see reports/bench/<model>.md)"]
    else:
        lines.append("- none measured (`make bench MODEL=orpheus-test-tiny`)")
    lines += ["", "## Models", "",
              "| model | float32 parity | goldens | benchmark | weights |", "|---|---|---|---|---|"]
    for r in rep.get("models", []):
        par = (f"[{r['parity']}](parity/{r['model']}.md)" if r["parity"] != "not run"
               else "not run")
        lines.append(f"| {r['model']} | {par} | {'yes' if r['golden'] else 'no'} | "
                     + (f"[yes](bench/{r['model']}.md)" if r["bench"] else "no")
                     + f" | {r['weights']} |")
    lines += ["", "## Parity reports", ""]
    lines += [f"- [{s}](parity/{s}.md): {'PASS' if r['passed'] else 'FAIL'}"
              for s, r in rep["parity_reports"].items()] or ["- none (`make parity MODEL=...`)"]
    lines += ["", "## Plots", "", "Written by `make report` into reports/plots/ (not tracked by git).", ""]
    lines += [f"![{p}]({p})" for p in rep["plots"]] or ["- none"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    p.add_argument("--reports", type=Path, default=REPORTS, help="reports folder (reports/)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    a = p.parse_args(argv)
    rep = machine.portable(build(a.reports, plots=not a.no_plots))
    md, js = a.reports / "success-metrics.md", a.reports / "success-metrics.json"
    atomic_write(js, json.dumps(rep, indent=2) + "\n")
    atomic_write(md, to_markdown(rep))
    for x in rep["metrics"]:
        print(f"{x['status']:>12}  {x['name']}: {x['value']}")
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
