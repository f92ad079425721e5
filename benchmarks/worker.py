"""One measurement in a fresh process: build one engine of a model, warm up, time `repeats` calls.

    python -m benchmarks.worker JOB.json RESULT.json

JOB.json: {"model", "engine", "dtype", "threads", "repeats", "clip": path to a float32 .npy,
"cache": peer weight folder, "options": how a Whisper model runs (device, TF32, weights,
stages), "device": "cpu" (default) or "gpu" for a BenchSpec that lists it}. The model's
BenchSpec (`benchmarks.runner.bench_for`) builds the engine (timed as load) and returns its
stages; each stage gets one untimed warm-up call and `repeats` timed calls
(a dict a call returns is kept: transcript, tokens, encoder time).
RESULT.json (written atomically): per stage the wall times and facts; peak memory: the process's
high-water RSS (VmHWM) over imports, load, warm-up and runs, and, when the engine imported MLX,
`mx.get_peak_memory()` (MLX's allocations, excluding its buffer cache) for loading and for the
calls separately, and the cache MLX holds at the end (`mx.get_cache_memory()`); the process
facts (BLAS, MLX device, thread counts). Progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path


def _log(msg: str) -> None:
    print(f"    {msg}", file=sys.stderr, flush=True)


def _mlx_peak(reset: bool = False) -> int:
    """MLX's allocator peak so far (excludes its buffer cache); optionally reset it after."""
    import mlx.core as mx

    peak = int(mx.get_peak_memory())
    if reset:
        mx.reset_peak_memory()
    return peak


def preload_blas() -> dict:
    """Import mlx_impl, which loads MKL or the system OpenBLAS on Linux, before anything imports
    mlx (a peer's process never imports mlx_impl: it keeps its own BLAS and OpenMP settings).

    A call, not an import line, so that import sorting cannot move it below `import mlx.core`
    (it did once: ruff's isort put `mlx.core` first and MLX silently ran its bundled BLAS)."""
    import mlx_impl

    return mlx_impl.blas_info()


def _time_stage(stage, repeats: int) -> dict:
    t0 = time.perf_counter()
    warm = stage.run()
    _log(f"{stage.name}: warm-up {time.perf_counter() - t0:.3f} s (not timed)")
    walls, facts = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        out = stage.run()
        walls.append(time.perf_counter() - t0)
        facts.append(dict(out) if isinstance(out, Mapping) else None)
        _log(f"{stage.name}: repeat {i + 1}/{repeats} {walls[-1]:.3f} s")
    row = {"name": stage.name, "audio_seconds": float(stage.audio_seconds), "wall_s": walls}
    if isinstance(warm, Mapping):
        row |= {"facts": facts, "warmup_facts": dict(warm)}
    return row


def measure(job: dict) -> dict:
    import numpy as np

    from benchmarks.machine import current_rss_bytes, peak_rss_bytes, ru_maxrss_bytes
    from benchmarks.runner import bench_for

    engine, repeats, threads = job["engine"], int(job["repeats"]), int(job["threads"])
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    bench = bench_for(job["model"], Path(job["cache"]), threads, job.get("options"))
    if engine == bench.engines[0]:
        preload_blas()  # ours: MKL/OpenBLAS before mlx loads
    audio = np.load(job["clip"])
    if audio.dtype != np.float32 or audio.ndim != 1:
        raise ValueError(f"{job['clip']}: expected 1-D float32 samples, got {audio.dtype} "
                         f"{audio.shape}")
    rss_start = current_rss_bytes()
    t0 = time.perf_counter()
    device = job.get("device", "cpu")
    stages = (bench.build(engine, job["dtype"], audio) if device == "cpu"
              else bench.build(engine, job["dtype"], audio, device=device))
    load_s = time.perf_counter() - t0
    if not stages:
        raise ValueError(f"{job['model']}: bench build({engine!r}) returned no stages")
    rss_loaded = current_rss_bytes()
    if "torch" in sys.modules:  # only where the engine imported it: never into ours' process
        sys.modules["torch"].set_num_threads(threads)
    uses_mlx = "mlx.core" in sys.modules
    mlx_load_peak = _mlx_peak(reset=True) if uses_mlx else None  # load and calls apart
    _log(f"{engine}: loaded in {load_s:.2f} s; stages {[s.name for s in stages]}")
    results = [_time_stage(st, repeats) for st in stages]
    peak, how = peak_rss_bytes()
    out = {"engine": engine, "dtype": job["dtype"], "threads": threads, "load_s": load_s,
           "stages": results, "peak_rss_bytes": peak, "peak_rss_method": how,
           "ru_maxrss_bytes": ru_maxrss_bytes(), "rss_at_start_bytes": rss_start,
           "rss_after_load_bytes": rss_loaded,
           "thread_env": {k: os.environ.get(k) for k in
                          ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
           "mlx_peak_bytes": None, "mlx_peak_load_bytes": None, "mlx_peak_run_bytes": None,
           "mlx_device": None, "blas": None, "cpu_kernels": None}
    if uses_mlx:
        import mlx.core as mx

        from mlx_impl import blas_info, cpu_kernels_info

        run_peak = _mlx_peak()
        blas = blas_info()
        if blas.get("path"):  # reports carry no machine paths: relative to the repo, or the name
            lib = Path(blas["path"]).resolve()
            root = Path(__file__).resolve().parents[1]
            blas["path"] = str(lib.relative_to(root)) if lib.is_relative_to(root) else lib.name
        if blas["error"]:
            _log(f"WARNING: MLX uses {blas['library']}: {blas['error']}")
        out |= {"mlx_peak_bytes": max(mlx_load_peak, run_peak),
                "mlx_peak_load_bytes": mlx_load_peak, "mlx_peak_run_bytes": run_peak,
                "mlx_cache_bytes": int(mx.get_cache_memory()),  # held by MLX, not in its peak
                "mlx_device": str(mx.default_device()), "blas": blas,
                "cpu_kernels": cpu_kernels_info()}
    return out


def main(argv: list[str]) -> int:
    from parity.report import atomic_write

    if len(argv) != 2:
        print("usage: python -m benchmarks.worker JOB.json RESULT.json (the runner starts it; "
              "use `python -m benchmarks run MODEL`)", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    try:
        result = measure(job)
    except Exception as e:  # noqa: BLE001  (reported to the runner, which fails the engine)
        traceback.print_exc()
        result = {"engine": job.get("engine"), "error": f"{type(e).__name__}: {e}",
                  "traceback": traceback.format_exc()}
    atomic_write(Path(argv[1]), json.dumps(result, indent=2) + "\n")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
