"""`python -m benchmarks.long_form [--model whisper-tiny.en] [--minutes 60]`: memory of a long input.

Transcribes a synthetic long recording (the committed fixture clips tiled with 2-s pauses to the
requested length) greedily and records wall time, process peak RSS (VmHWM) and the MLX allocator
peak, in reports/long-form/<model>-<minutes>min.json. One process, one run: a memory check, not a
speed benchmark.
"""

from __future__ import annotations

import argparse
import json
import time

import mlx_impl  # noqa: F401  (OpenBLAS before mlx)
import mlx.core as mx
import numpy as np

from benchmarks.machine import portable
from benchmarks.runner import atomic_write
from benchmarks.report import REPORTS
from mlx_impl.audio_io import load_audio
from mlx_impl.whisper.transcribe import WhisperSTT
from parity.clips import FIXTURES, manifest


def vm_hwm_bytes() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return -1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="whisper-tiny.en")
    p.add_argument("--minutes", type=float, default=60.0)
    a = p.parse_args()
    pieces = [load_audio(str(m["path"])) for m in manifest(FIXTURES)]
    pause = np.zeros(32000, np.float32)
    unit = np.concatenate([x for c in pieces for x in (c, pause)])
    n = int(a.minutes * 60 * 16000)
    audio = np.tile(unit, n // len(unit) + 1)[:n]
    stt = WhisperSTT.load(a.model)
    rss_loaded = vm_hwm_bytes()
    mx.reset_peak_memory()
    t = time.perf_counter()
    result = stt.transcribe(audio, temperature=0.0, progress=True)
    wall = time.perf_counter() - t
    rep = {"model": a.model, "audio_s": n / 16000, "segments": len(result.segments),
           "words": len(result.text.split()), "wall_s": wall, "rtf": wall / (n / 16000),
           "peak_rss_bytes": vm_hwm_bytes(), "rss_after_load_bytes": rss_loaded,
           "mlx_peak_bytes": mx.get_peak_memory(), "audio_array_bytes": audio.nbytes,
           "blas": mlx_impl.blas_info(), "cpu_kernels": mlx_impl.cpu_kernels_info(),
           "note": "whole-file log-mel (80 x 100 frames/s float32 = 32 KB per second of audio) "
                   "is kept, as openai-whisper does: its max-8 clamp needs the global maximum"}
    out = REPORTS / "long-form" / f"{a.model}-{a.minutes:g}min.json"
    atomic_write(out, json.dumps(portable(rep), indent=2) + "\n")
    print(json.dumps({k: v for k, v in rep.items() if k not in ("blas", "cpu_kernels")}, indent=2))


if __name__ == "__main__":
    main()
