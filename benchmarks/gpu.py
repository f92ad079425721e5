"""GPU benchmark: our Whisper on MLX-CUDA against openai-whisper and transformers on torch CUDA.

Run on a CUDA machine: `python3 -m benchmarks.gpu --out reports/bench/gpu.json` (see
benchmarks/gpu_device.sh). It is the one runner (`benchmarks.runner.run`) once per precision,
each engine in its own fresh process, in this order, so no engine warms another's caches:

    ours, openai-whisper, transformers in fp16, then in fp32, then in tf32.

Precisions: `fp16` is float16 (ours: float16 weights and activations; openai-whisper: float32
parameters and float16 activations, `transcribe(fp16=True)`; transformers: `model.half()`).
`fp32` is full float32 matmuls everywhere (MLX: `MLX_ENABLE_TF32=0`; torch: `allow_tf32 = False`
for matmuls and cuDNN convs). `tf32` is float32 storage with TF32 matmuls and convs (MLX's
default on CUDA; torch with both TF32 flags on).
`q8` and `q4` are ours only (issue 23): the fp16 model with its Linear layers quantized to 8 or 4
bits by `mlx_impl.whisper`'s policy (MLX affine, group size 64, as `--quantize` does), float16
activations; its rows sit next to ours fp16. The torch peers have no such path here.

Weights: seeded random weights of the model's dimensions (whisper-base by default): the parity
spec's `random_state`, saved once as a transformers folder (`benchmarks.prepare.random_checkpoint`)
that every engine loads the way it loads real weights (ours through mlx_impl.whisper's loader).
The real base checkpoint does not fit the transfer to the device machine next to the MLX-CUDA
wheel. Timings do not depend on the weight values, except through how many tokens a transcription
decodes; those counts are recorded per engine (decoder calls, text tokens, windows).

Stages (`benchmarks.engines`; one untimed warm-up, then `--repeats` timed calls each):
- encode: the clip's first 30-s window through the encoder, synchronised before the clock stops.
- decode: `--tokens` greedy steps on that window's encoder output through the engine's KV cache
  from the <|startoftranscript|> sequence; each step reads its argmax back to the host, as a real
  decoder must to test for end-of-text. per-token time = call time / tokens.
- transcribe: the 30-s English clip of `benchmarks.clips.english_clip` through each engine's
  whole transcription (temperature 0 only, language "en", the options of `engines.OPTIONS`).

Written: `--out` (JSON: one entry per engine and precision, the format benchmarks.report reads)
and a Markdown table beside it, plus each precision's runner report (`<out>-<precision>.json`).
Not measured any more (the runner has no per-engine extras): ours' async decoding loop, the
host time to build one decoding step's graph, and transformers' `generate` loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import runner
from benchmarks.engines import GPU_ENGINES
from benchmarks.machine import portable, portable_path
from benchmarks.stats import spread_str, summarize
from parity.report import atomic_write

PRECISIONS = ("fp16", "fp32", "tf32", "q8", "q4")
DTYPE = {"fp16": "float16", "fp32": "float32", "tf32": "float32", "q8": "float16",
         "q4": "float16"}
QUANT_BITS = {"q8": 8, "q4": 4}  # ours only: float16 activations, MLX affine, group size 64


def _write_json(path: Path, data) -> None:
    # paths relative to the repository, never this machine's
    atomic_write(path, json.dumps(portable(data), indent=1) + "\n")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, portable_path(text))


def _ms(walls: list[float], per: float = 1.0) -> dict:
    return summarize([1e3 * w / per for w in walls])


def gpu_entry(engine: str, precision: str, result: dict) -> dict:
    """One engine's runner result -> the GPU report's entry (times in ms)."""
    if "error" in result:
        return {"engine": engine, "precision": precision, "errors": {"worker": result["error"]}}
    st = {s["name"]: s for s in result["stages"]}
    info = dict(result.get("engine_info") or {})
    info |= {k: result[k] for k in ("mlx_device", "blas") if result.get(k)}
    entry = {"engine": engine, "precision": precision, "device": info,
             "load_s": result["load_s"], "peak_rss_bytes": result["peak_rss_bytes"],
             "mlx_peak_bytes": result["mlx_peak_bytes"]}
    if "encode" in st:
        entry["encoder"] = _ms(st["encode"]["wall_s"])
    if "decode" in st:
        f = st["decode"]["facts"][-1]
        entry["decode"] = {"loop_ms": _ms(st["decode"]["wall_s"]),
                           "per_token_ms": _ms(st["decode"]["wall_s"], f["tokens"]),
                           "tokens": f["tokens"], "tokens_head": f["tokens_head"]}
    if "transcribe" in st:
        f = st["transcribe"]["facts"][-1]
        entry["transcribe"] = {"ms": _ms(st["transcribe"]["wall_s"]),
                               "decoder_calls": f["decoder_calls"], "segment_tokens": f["n_tokens"],
                               "windows": f["n_windows"], "text": f["text"][:200]}
    return entry


def machine_info() -> dict:
    from benchmarks.machine import machine_facts, versions

    info = {"machine": machine_facts(),
            "versions": versions(("mlx", "mlx-cuda-13", "numpy", "torch", "transformers",
                                  "openai-whisper", "tiktoken", "nvidia-cublas",
                                  "nvidia-cudnn-cu13", "nvidia-cuda-runtime"))}
    try:
        query = "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit"
        q = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30, check=True)
        info["nvidia_smi"] = q.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        info["nvidia_smi"] = f"unavailable: {e}"
    import os

    info["env"] = {k: os.environ.get(k) for k in ("CUDA_HOME", "MLX_PTX_CACHE_DIR",
                                                  "MLX_USE_CUDA_GRAPHS")}
    return info


def run_all(args) -> int:
    t_start = time.perf_counter()
    out = Path(args.out)
    report = {"benchmark": f"{args.model} GPU: MLX-CUDA vs torch CUDA", "argv": sys.argv[1:],
              "model": args.model, "tokens": args.tokens, "seed": args.seed,
              "repeats": args.repeats, **machine_info(), "runs": []}
    for precision in args.precisions:
        engines = [e for e in args.engines if precision not in QUANT_BITS or e == "ours"]
        if not engines:
            continue
        left = args.deadline_s - (time.perf_counter() - t_start)
        if left < 30:
            report["runs"] += [{"engine": e, "precision": precision, "errors": {
                "worker": f"not run: {args.deadline_s} s deadline reached"}} for e in engines]
            continue
        options = {"device": "cpu" if args.allow_cpu else "gpu", "tf32": precision == "tf32",
                   "random_weights": True, "seed": args.seed,
                   "tokenizer_json": None if args.tokenizer_json is None
                   else str(args.tokenizer_json),
                   "stages": ("encode", "decode", "transcribe"), "decode_tokens": args.tokens,
                   "quantize": QUANT_BITS.get(precision)}
        rep = runner.run(args.model, repeats=args.repeats, dtype=DTYPE[precision], threads=None,
                         engines=engines, cache=args.cache_dir,
                         timeout_s=min(args.worker_timeout_s, left),
                         command="python -m benchmarks.gpu " + " ".join(sys.argv[1:]),
                         options=options)
        stem = out.with_name(f"{out.stem}-{precision}")
        _write_json(stem.with_suffix(".json"), rep)
        _write_text(stem.with_suffix(".md"), runner.to_markdown(rep))
        for engine in engines:
            entry = gpu_entry(engine, precision, rep["engines"][engine])
            report["runs"].append(entry)
            print(_line(entry), flush=True)
        _write_json(out, report)  # partial results survive
    report["total_s"] = time.perf_counter() - t_start
    report["token_agreement"] = _agreement(report["runs"])
    _write_json(out, report)
    md = markdown(report)
    _write_text(out.with_suffix(".md"), md)
    print(md)
    return 1 if any(r.get("errors") for r in report["runs"]) else 0


def _agreement(runs: list[dict]) -> dict:
    """First index where each engine's greedy decode tokens differ from ours (same precision)."""
    out = {}
    for r in runs:
        if r["engine"] == "ours" or "decode" not in r:
            continue
        ours = next((o for o in runs if o["engine"] == "ours" and o["precision"] == r["precision"]
                     and "decode" in o), None)
        if ours is None:
            continue
        a, b = ours["decode"]["tokens_head"], r["decode"]["tokens_head"]
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        out[f"{r['engine']} {r['precision']}"] = (f"same first {min(len(a), len(b))} tokens"
                                                  if first is None else f"first differs at {first}")
    return out


def _fmt(d: dict | None) -> str:
    return "-" if d is None else spread_str(d, fmt="{:.2f}")


def _per_call(tr: dict) -> str:
    if not tr.get("ms") or not tr.get("decoder_calls"):
        return "-"
    return f"{tr['ms']['median'] / tr['decoder_calls']:.2f}"


def _line(r: dict) -> str:
    err = "" if not r.get("errors") else " ERRORS: " + ", ".join(r["errors"])
    return (f"{r['engine']:15s} {r['precision']:5s} encoder {_fmt(r.get('encoder'))} ms | decode "
            f"{_fmt(r.get('decode', {}).get('per_token_ms'))} ms/token | transcribe "
            f"{_fmt(r.get('transcribe', {}).get('ms'))} ms{err}")


def markdown(report: dict) -> str:
    lines = [f"# {report['benchmark']}", "",
             f"- device: {report.get('nvidia_smi')}",
             f"- versions: {json.dumps(report.get('versions'))}",
             (f"- CPU: {report['machine'].get('cpu_model')}, "
              f"{report['machine'].get('logical_cores')} cores; "
              f"Python {report['machine'].get('python')}"),
             (f"- weights: seeded random {report['model']} dims (parity random_state, seed "
              f"{report['seed']}); decode loop {report['tokens']} greedy tokens; one warm-up "
              f"and {report['repeats']} timed calls per stage, each engine in a fresh process"),
             "", "Times in ms, median [min-max] of the repeats.", "",
             ("| engine | precision | encoder / 30-s window | decode per token (sync) | "
              "other decode | whole 30-s clip | decoder calls (clip) | clip ms / decoder call |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        tr = r.get("transcribe", {})
        lines.append(f"| {r['engine']} | {r['precision']} | {_fmt(r.get('encoder'))} | "
                     f"{_fmt(r.get('decode', {}).get('per_token_ms'))} | - | "
                     f"{_fmt(tr.get('ms'))} | {tr.get('decoder_calls', '-')} | "
                     f"{_per_call(tr)} |")
    devices = sorted({json.dumps(r["device"], sort_keys=True) for r in report["runs"]
                      if r.get("device")})
    lines += ["", "other decode: not measured by the one runner (see benchmarks/gpu.py).", "",
              "Per-worker device facts:", ""] + [f"- `{d}`" for d in devices]
    errs = [(r["engine"], r["precision"], k, v) for r in report["runs"]
            for k, v in (r.get("errors") or {}).items()]
    if errs:
        lines += ["", "## Errors", ""]
        for engine, precision, k, v in errs:
            lines += [f"- {engine} {precision} {k}:", "", "```", v.strip()[-1500:], "```"]
    lines += ["", "Greedy-token agreement with ours: "
              + json.dumps(report.get("token_agreement")), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.prepare import DEFAULT_CACHE

    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON result (a .md table is written beside it)")
    p.add_argument("--model", default="whisper-base",
                   help="a Whisper model whose dimensions the random weights take (whisper-base)")
    p.add_argument("--engines", nargs="+", default=list(GPU_ENGINES), choices=GPU_ENGINES)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokens", type=int, default=100, help="greedy steps of the decode stage")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per stage (5)")
    p.add_argument("--tokenizer-json", type=Path, default=None,
                   help="the Whisper tokenizer.json of the model's vocabulary; default: the "
                        "installed weight package's")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help="where the random checkpoint is written (~/.cache/mlx-audio-parity)")
    p.add_argument("--worker-timeout-s", type=float, default=180)
    p.add_argument("--deadline-s", type=float, default=500,
                   help="start no precision after this many seconds")
    p.add_argument("--allow-cpu", action="store_true",
                   help="run every engine on the CPU (a dry run of this path without a GPU)")
    args = p.parse_args(argv)
    if args.tokens < 1:
        p.error("--tokens must be >= 1")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
