"""One measurement in a fresh process: load one engine, warm up once, time `repeats` runs.

    python -m benchmarks.worker JOB.json RESULT.json

JOB.json: {"engine", "prepared", "dtype", "threads", "repeats", "clip": path to a float32 .npy}.
RESULT.json (written atomically): the per-run timings, the transcript, peak memory (process
high-water RSS over the whole process: imports, load, warm-up and runs; for MLX engines also
`mx.get_peak_memory()`, which excludes MLX's buffer cache, for loading and for transcribing
separately, and their maximum), and the process facts (BLAS, MLX device, thread counts).
Progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def _log(msg: str) -> None:
    print(f"    {msg}", file=sys.stderr, flush=True)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _mlx_peak(reset: bool = False) -> int:
    """MLX's allocator peak so far (excludes its buffer cache); optionally reset it after."""
    import mlx.core as mx

    peak = int((getattr(mx, "get_peak_memory", None) or mx.metal.get_peak_memory)())
    if reset:
        (getattr(mx, "reset_peak_memory", None) or mx.metal.reset_peak_memory)()
    return peak


def _mlx_facts() -> dict:
    import mlx.core as mx

    from mlx_impl import blas_info, cpu_kernels_info

    return {"mlx_device": str(mx.default_device()), "blas": blas_info(),
            "cpu_kernels": cpu_kernels_info()}


def measure(job: dict) -> dict:
    import numpy as np

    from benchmarks.engines import ENGINE_CLASSES, MLX_ENGINES, OPTIONS
    from benchmarks.machine import current_rss_bytes, peak_rss_bytes, ru_maxrss_bytes

    engine, repeats = job["engine"], int(job["repeats"])
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    audio = np.load(job["clip"])
    if audio.dtype != np.float32 or audio.ndim != 1:
        raise ValueError(f"{job['clip']}: expected 1-D float32 samples, got {audio.dtype} "
                         f"{audio.shape}")
    rss_start = current_rss_bytes()
    t0 = time.perf_counter()
    eng = ENGINE_CLASSES[engine](job["prepared"], job["dtype"], int(job["threads"]))
    load_s = time.perf_counter() - t0
    rss_loaded = current_rss_bytes()
    # MLX peaks are split into loading and transcribing (warm-up and timed runs)
    mlx_load_peak = _mlx_peak(reset=True) if engine in MLX_ENGINES else None
    _log(f"loaded in {load_s:.2f} s; warm-up run (not timed)")
    if engine in MLX_ENGINES:
        from mlx_impl import blas_info

        blas = blas_info()
        if blas["error"]:
            _log(f"WARNING: MLX uses {blas['library']}: {blas['error']}")
    t0 = time.perf_counter()
    warm = eng.run(audio)
    _log(f"warm-up {time.perf_counter() - t0:.2f} s: {warm.n_tokens} tokens, "
         f"{warm.text.strip()[:60]!r}...")
    runs = []
    for i in range(repeats):
        t0 = time.perf_counter()
        out = eng.run(audio)
        wall = time.perf_counter() - t0
        runs.append({"wall_s": wall, "encoder_s": out.encoder_s, "n_windows": out.n_windows,
                     "n_tokens": out.n_tokens})
        _log(f"repeat {i + 1}/{repeats}: {wall:.3f} s (encoder {out.encoder_s:.3f} s, "
             f"{out.n_tokens} tokens)")
        if out.text != warm.text:
            _log("note: transcript differs from the warm-up run's")
    peak, how = peak_rss_bytes()
    result = {
        "engine": engine, "dtype": job["dtype"], "threads": int(job["threads"]),
        "options": OPTIONS.to_dict(), "engine_info": eng.info, "load_s": load_s,
        "runs": runs, "text": out.text, "warmup_text": warm.text,
        "peak_rss_bytes": peak, "peak_rss_method": how, "ru_maxrss_bytes": ru_maxrss_bytes(),
        "rss_at_start_bytes": rss_start, "rss_after_load_bytes": rss_loaded,
        "thread_env": {k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }
    if engine in MLX_ENGINES:
        run_peak = _mlx_peak()
        result |= {"mlx_peak_bytes": max(mlx_load_peak, run_peak),
                   "mlx_peak_load_bytes": mlx_load_peak, "mlx_peak_run_bytes": run_peak,
                   **_mlx_facts()}
    else:
        result |= {"mlx_peak_bytes": None, "mlx_peak_load_bytes": None,
                   "mlx_peak_run_bytes": None, "mlx_device": None, "blas": None}
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m benchmarks.worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    try:
        result = measure(job)
    except Exception as e:  # noqa: BLE001  (reported to the runner, which fails the engine)
        _write_json(Path(argv[1]), {"engine": job.get("engine"), "error": f"{type(e).__name__}: {e}",
                                    "traceback": traceback.format_exc()})
        traceback.print_exc()
        return 1
    _write_json(Path(argv[1]), result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
