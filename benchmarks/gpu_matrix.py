"""The GPU matrix: every codec and vocoder benchmark on MLX's GPU against torch CUDA, per precision.

    python3 -m benchmarks.gpu_matrix --out reports/bench/gpu-matrix.json [--models a b] \
        [--precisions fp32 fp16] [--repeats 5] [--deadline-s 500]

For each model and precision it is the one runner (`benchmarks.runner.run(..., device="gpu")`),
each engine in its own fresh process: ours (MLX-CUDA, or Metal) and torch on CUDA, the same seeded
checkpoint and 10-s real-speech clip as the CPU benchmark. Precisions: `fp32` is full float32
(MLX: `MLX_ENABLE_TF32=0`, set by the runner; torch: TF32 off for matmuls and cuDNN convs) and
`fp16` is float16 weights and activations on both sides (torch: `.half()`). Whisper's GPU run
is `benchmarks.gpu` (its stages and peers differ); the report of that run, if given with
`--whisper`, is folded into this one's table.

Written: `--out` (JSON: machine, versions, each run's runner report) and a Markdown table beside
it: model x stage x precision, ours against torch, times in ms, ratio torch / ours (> 1: ours is
faster), peak RSS and MLX peak. Partial results are written after every run, so a deadline or a
lost machine keeps what finished. `python3 -m benchmarks.gpu_matrix --render JSON` writes the
Markdown again from a report (with `--note`). `--device cpu` is a dry run of the same path on a machine
without a GPU (both engines on the CPU, float32 only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import runner
from benchmarks.gpu import machine_info
from benchmarks.machine import portable, portable_path
from parity.report import atomic_write

MODELS = ("encodec-24khz", "encodec-48khz", "dac-44khz", "snac-24khz", "mimi",
          "bigvgan-v2-24khz", "vocos-mel-24khz", "vocos-encodec-24khz")
PRECISIONS = ("fp32", "fp16")
DTYPE = {"fp32": "float32", "fp16": "float16"}
MB = 1024 * 1024


def run_all(args) -> int:
    t_start = time.perf_counter()
    out = Path(args.out)
    report = {"benchmark": "codecs and vocoders: MLX vs torch on the GPU", "argv": sys.argv[1:],
              "device": args.device, "repeats": args.repeats, "note": args.note, **machine_info(), "runs": []}
    for model in args.models:
        for precision in args.precisions:
            left = args.deadline_s - (time.perf_counter() - t_start)
            if left < 30:
                report["runs"].append({"model": model, "precision": precision,
                                       "error": f"not run: {args.deadline_s} s deadline reached"})
                continue
            print(f"== {model} {precision} ({left:.0f} s left)", file=sys.stderr, flush=True)
            try:
                rep = runner.run(model, repeats=args.repeats, dtype=DTYPE[precision],
                                 engines=["mlx", "torch"], cache=args.cache_dir,
                                 timeout_s=min(args.worker_timeout_s, left),
                                 command="python -m benchmarks.gpu_matrix "
                                         + " ".join(sys.argv[1:]), device=args.device)
            except (KeyError, ValueError) as e:  # a model this matrix cannot time: recorded
                report["runs"].append({"model": model, "precision": precision,
                                       "error": f"{type(e).__name__}: {e}"})
                continue
            report["runs"].append({"model": model, "precision": precision, "report": rep})
            for row in rows(report["runs"][-1]):
                print(" | ".join(row), flush=True)
            atomic_write(out, json.dumps(portable(report), indent=1) + "\n")  # partial results
    if args.whisper:
        report["whisper"] = json.loads(Path(args.whisper).read_text())
    report["total_s"] = time.perf_counter() - t_start
    atomic_write(out, json.dumps(portable(report), indent=1) + "\n")
    md = markdown(report)
    atomic_write(out.with_suffix(".md"), portable_path(md))
    print(md)
    failed = [r for r in report["runs"] if "error" in r or r["report"]["failed"]]
    return 1 if failed else 0


def _ms(summary: dict | None) -> str:
    return "-" if not summary else f"{1e3 * summary['median']:.2f}"


def _clip(report: dict) -> str:
    for run in report["runs"]:
        if "report" in run:
            c = run["report"].get("clip")
            if c is None:
                continue
            return f"{c['duration_s']:.0f} s from {c['source']} ({', '.join(c['pieces'])})"
    return "none ran"


def _median(summary_ms: dict | None) -> str:
    return "-" if not summary_ms else f"{summary_ms['median']:.2f}"


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / MB:.0f}"


def rows(run: dict) -> list[list[str]]:
    """One row per stage of a run: model, stage, precision, ours ms, torch ms, torch / ours,
    peak RSS MB ours / torch, MLX peak MB; a failed engine is named in the row."""
    if "error" in run:
        return [[run["model"], "-", run["precision"], "-", "-", "-", "-", "-",
                 f"not run: {run['error']}"]]
    rep = run["report"]
    ours, torch = rep["summaries"].get("mlx"), rep["summaries"].get("torch")
    stages = list((ours or torch or {"stages": {}})["stages"])
    note = "; ".join(f"{e} failed: {msg.splitlines()[0][:160]}"
                     for e, msg in rep["failed"].items())
    if not stages:
        return [[run["model"], "-", run["precision"], "-", "-", "-", "-", "-", note]]
    out = []
    for name in stages:
        o = (ours or {}).get("stages", {}).get(name)
        t = (torch or {}).get("stages", {}).get(name)
        ratio = (f"{t['wall_s']['median'] / o['wall_s']['median']:.2f}x" if o and t else "-")
        out.append([run["model"], name, run["precision"], _ms(o and o["wall_s"]),
                    _ms(t and t["wall_s"]), ratio,
                    f"{_mb((ours or {}).get('peak_rss_bytes'))} / "
                    f"{_mb((torch or {}).get('peak_rss_bytes'))}",
                    _mb((ours or {}).get("mlx_peak_bytes")), note])
    return out


COLUMNS = ("model", "stage", "precision", "ours ms", "torch ms", "torch / ours",
           "peak RSS MB ours / torch", "MLX peak MB", "note")


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# {report['benchmark']}", "",
             f"- device: {report['device']} ({report.get('nvidia_smi')})",
             f"- host: {m.get('cpu_model')}, {m.get('logical_cores')} cores; Python "
             f"{m.get('python')}",
             f"- versions: {json.dumps(report.get('versions'))}",
             f"- each engine in a fresh process; one untimed warm-up and {report['repeats']} "
             "timed calls per stage; times are medians; the clip: "
             f"{_clip(report)}; "
             "seeded random weights at the real dimensions (parity specs' checkpoints)",
             f"- fp32: full float32 on both sides (TF32 off); fp16: float16 weights and "
             f"activations on both sides. Total {report.get('total_s', 0):.0f} s.",
             *([f"- note: {report['note']}"] if report.get("note") else []),
             "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for run in report["runs"]:
        lines += ["| " + " | ".join(r) + " |" for r in rows(run)]
    if report.get("whisper"):
        w = report["whisper"]
        lines += ["", f"Whisper ({w.get('model')}, benchmarks.gpu, same machine):", "",
                  "| engine | precision | encoder ms / 30-s window | whole clip ms |",
                  "|---|---|---|---|"]
        for r in w.get("runs", []):
            enc, tr = r.get("encoder"), r.get("transcribe", {}).get("ms")
            lines.append(f"| {r['engine']} | {r['precision']} | {_median(enc)} | "
                         f"{_median(tr)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.prepare import DEFAULT_CACHE

    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_matrix",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", help="JSON result (a .md table is written beside it)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--repeats", type=int, default=5, help="timed calls per stage (5)")
    p.add_argument("--device", default="gpu", choices=("gpu", "cpu"),
                   help="gpu; cpu is a dry run of this path on a machine without one")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--worker-timeout-s", type=float, default=240)
    p.add_argument("--deadline-s", type=float, default=500,
                   help="start no run after this many seconds")
    p.add_argument("--note", default=None, help="a sentence the report carries")
    p.add_argument("--whisper", type=Path, default=None,
                   help="a benchmarks.gpu JSON report of the same machine to fold in")
    p.add_argument("--render", type=Path, default=None,
                   help="only write the Markdown of this JSON report again (beside it)")
    args = p.parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        if args.note:
            report["note"] = args.note
            atomic_write(args.render, json.dumps(report, indent=1) + "\n")
        atomic_write(args.render.with_suffix(".md"), markdown(report))
        return 0
    if not args.out:
        p.error("--out is required (the JSON report to write)")
    if args.device == "cpu" and args.precisions != ["fp32"]:
        p.error("--device cpu times float32 only (CPU torch has no float16 path here); pass "
                "--precisions fp32")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
