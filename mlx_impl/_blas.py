"""Use the system OpenBLAS for MLX's CPU matmuls where one is installed (Linux only).

The Linux `mlx[cpu]` wheel links a bundled *reference* BLAS (`mlx_cpu.libs/libblas-*.so`), about
30x slower than OpenBLAS for Whisper-sized matmuls (1500x512 @ 512x2048: 677 ms vs 22 ms on a
2-core AVX-512 machine). Loading Debian's `libopenblas0-pthread` with RTLD_GLOBAL *before*
`import mlx` puts its `cblas_*` and LAPACK symbols first in the global lookup scope, so libmlx.so
binds to them instead of the bundled ones. On macOS (Accelerate) and where OpenBLAS is absent
nothing happens.

This is a speed-only change: the operations and their fp32 semantics are the same, but OpenBLAS
blocks sums in a different order than the reference BLAS, so matmul results differ at fp32
rounding level (measured on the matmul above: max abs error vs float64 6.9e-5 with OpenBLAS,
1.1e-4 with the reference BLAS, outputs of magnitude ~100). `blas_info()` says which library ran,
so reports and parity runs can state it.

`OPENBLAS_CORETYPE` is only set when the user has not set it; it picks the kernel family from
/proc/cpuinfo (avx512f -> SKYLAKEX, avx2 -> HASWELL) and does not change results beyond the same
rounding-level reordering.

`OPENBLAS_THREAD_TIMEOUT` is set to 4 (its minimum) when the user has not set it. OpenBLAS's
worker threads otherwise spin for 2**28 cycles (~0.1 s) after each threaded product, waiting for
the next one; our own multithreaded kernels (mlx_impl._cpu_ext: attention, GELU, softmax,
layer norm) then share the cores with a spinning thread. Measured on whisper-base's encoder, 2
cores: 1.04-1.10 s per 30-s window with the default, 0.71-0.74 s with 4, the matmuls themselves
no slower (a 1500x512 @ 512x512 product 5.3 vs 6.4 ms), a decoding step unchanged (16.5 ms).
"""

from __future__ import annotations

import ctypes
import os
import sys

OPENBLAS_PATH = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"

THREAD_TIMEOUT = "4"  # OPENBLAS_THREAD_TIMEOUT: workers sleep at once instead of spinning ~0.1 s

_info: dict = {"library": "not checked", "path": None, "coretype": None, "thread_timeout": None,
               "error": None}


def _coretype_from_cpuinfo() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    if "avx512f" in flags:
                        return "SKYLAKEX"
                    if "avx2" in flags:
                        return "HASWELL"
                    return None
    except OSError:
        return None
    return None


def preload_openblas(path: str = OPENBLAS_PATH) -> dict:
    """Load OpenBLAS globally if on Linux, the file exists and mlx is not yet imported.

    Returns `blas_info()`. Calling it again is harmless.
    """
    if _info["library"] == "openblas":
        return blas_info()
    if not sys.platform.startswith("linux"):
        _info.update(library="platform BLAS (not Linux; nothing preloaded)")
        return blas_info()
    if not os.path.exists(path):
        _info.update(
            library="bundled reference BLAS",
            error=f"{path} not found; `apt-get install libopenblas0-pthread` for ~30x "
            "faster CPU matmuls",
        )
        return blas_info()
    if "mlx.core" in sys.modules:
        # libmlx.so is loaded with RTLD_NOW: its BLAS symbols are already bound.
        _info.update(
            library="bundled reference BLAS",
            error="mlx was imported before mlx_impl; import mlx_impl first to use OpenBLAS",
        )
        return blas_info()
    if "OPENBLAS_CORETYPE" not in os.environ:
        coretype = _coretype_from_cpuinfo()
        if coretype is not None:
            os.environ["OPENBLAS_CORETYPE"] = coretype
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)  # read when it loads
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        _info.update(library="bundled reference BLAS", error=f"loading {path} failed: {e}")
        return blas_info()
    _info.update(
        library="openblas", path=path, coretype=os.environ.get("OPENBLAS_CORETYPE"),
        thread_timeout=os.environ.get("OPENBLAS_THREAD_TIMEOUT"), error=None
    )
    return blas_info()


def blas_info() -> dict:
    """Which BLAS MLX's CPU matmuls use: {'library', 'path', 'coretype', 'thread_timeout', 'error'}.

    'library' is 'openblas' (preloaded system OpenBLAS), 'bundled reference BLAS', or a note
    for non-Linux platforms; 'error' says why OpenBLAS was not used, if it was not.
    """
    return dict(_info)
