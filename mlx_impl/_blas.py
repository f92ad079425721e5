"""Give MLX's CPU matmuls a fast BLAS on Linux: Intel MKL when installed, else the system OpenBLAS.

The Linux `mlx[cpu]` wheel links a bundled *reference* BLAS (`mlx_cpu.libs/libblas-*.so`), about
30x slower than OpenBLAS for Whisper-sized matmuls (1500x512 @ 512x2048: 677 ms vs 22 ms on a
2-core AVX-512 machine). Loading another BLAS with RTLD_GLOBAL *before* `import mlx` puts its
`cblas_*` and LAPACK symbols first in the global lookup scope, so libmlx.so binds to them instead
of the bundled ones. On macOS (Accelerate) nothing happens.

Which one (`preload_blas`; `MLX_IMPL_BLAS=mkl|openblas|bundled` forces a choice):
- **MKL**, from pip's `mkl` wheel in this environment (`<prefix>/lib/libmkl_rt.so.*`; `make setup`
  installs it on x86-64 Linux). Measured on the 2-core AVX-512 machine, MKL 2026.2 against
  OpenBLAS 0.3.21, one thread per product / two: 1500x512 @ 512x2048 12.3 vs 15.9 ms (2 threads),
  a 256x64 @ 64x1500 attention tile 0.47 vs 0.60 ms (1 thread); whisper-base's encoder ~7% and
  its decoding ~25% faster (fresh processes, alternated). Loaded with `MKL_THREADING_LAYER=GNU`
  (unless the user set it): libgomp, the OpenMP runtime g++ builds our kernels against
  (mlx_impl._cpu_ext), so MKL's products and our kernels share one thread pool; no intel-openmp
  is needed. libgomp's default wait policy is kept: its workers spin a while after each parallel
  region, which a decoding step of ~40 small products needs (with `OMP_WAIT_POLICY=PASSIVE`,
  whisper-base 16 ms per step instead of 12), and which no longer starves our kernels now that
  they run on the same workers.
- **OpenBLAS**, Debian's `libopenblas0-pthread`. `OPENBLAS_CORETYPE` is set (when unset) from
  /proc/cpuinfo (avx512f -> SKYLAKEX, avx2 -> HASWELL), and `OPENBLAS_THREAD_TIMEOUT` to 4, its
  minimum: OpenBLAS's workers otherwise spin for 2**28 cycles (~0.1 s) after each threaded
  product, and our own multithreaded kernels (mlx_impl._cpu_ext) then share the cores with a
  spinning thread (whisper-base's encoder, 2 cores: 1.04-1.10 s per 30-s window with the
  default, 0.71-0.74 s with 4).

Speed only: the operations and their fp32 semantics are the same, but each BLAS blocks sums in
its own order, so matmul results differ at fp32 rounding level (measured on the matmul above:
max abs error vs float64 6.9e-5 with OpenBLAS, 1.1e-4 with the reference BLAS, outputs of
magnitude ~100). `blas_info()` says which library ran, so reports and parity runs can state it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

OPENBLAS_PATH = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"

THREAD_TIMEOUT = "4"  # OPENBLAS_THREAD_TIMEOUT: workers sleep at once instead of spinning ~0.1 s

BLAS_ENV = "MLX_IMPL_BLAS"  # mkl | openblas | bundled; unset: MKL if installed, else OpenBLAS

_info: dict = {"library": "not checked", "path": None, "coretype": None, "thread_timeout": None,
               "version": None, "threading": None, "error": None}


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


def find_mkl() -> str | None:
    """libmkl_rt of pip's `mkl` wheel in this environment, with the libraries it loads beside it
    (core, GNU threading layer), or None."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        lib = Path(prefix) / "lib"
        rt = sorted(lib.glob("libmkl_rt.so.*"))
        if (rt and any(lib.glob("libmkl_core.so.*"))
                and any(lib.glob("libmkl_gnu_thread.so.*"))):
            return str(rt[-1])
    return None


def preload_mkl(path: str) -> dict:
    """Load MKL globally (GNU threading layer; see the module doc)."""
    if "mlx.core" in sys.modules:
        _info.update(library="bundled reference BLAS",
                     error="mlx was imported before mlx_impl; import mlx_impl first to use MKL")
        return blas_info()
    os.environ.setdefault("MKL_THREADING_LAYER", "GNU")
    try:  # the GNU threading layer needs libgomp; MKL would abort at its first product without
        ctypes.CDLL("libgomp.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        _info.update(error=f"MKL not used: libgomp.so.1 is missing ({e}); `apt-get install "
                     "libgomp1`")
        return blas_info()
    try:
        mkl = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        buf = ctypes.create_string_buffer(256)
        mkl.mkl_get_version_string(buf, len(buf))
        version = buf.value.decode(errors="replace").strip()
    except (OSError, AttributeError) as e:
        _info.update(error=f"loading {path} failed: {e}")
        return blas_info()
    _info.update(library="mkl", path=path, version=version, coretype=None, thread_timeout=None,
                 threading=f"MKL_THREADING_LAYER={os.environ['MKL_THREADING_LAYER']}, "
                           f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY') or 'default'}",
                 error=None)
    return blas_info()


def preload_blas() -> dict:
    """MKL if installed, else OpenBLAS, else nothing (see the module doc); `MLX_IMPL_BLAS` forces
    one. Returns `blas_info()`; calling it again is harmless."""
    if _info["library"] in ("mkl", "openblas"):
        return blas_info()
    choice = os.environ.get(BLAS_ENV, "").strip().lower() or "auto"
    if choice not in ("auto", "mkl", "openblas", "bundled"):
        raise ValueError(f"{BLAS_ENV}={choice!r}: expected mkl, openblas or bundled (or unset)")
    if choice == "bundled":
        _info.update(library="bundled reference BLAS", error=f"{BLAS_ENV}=bundled")
        return blas_info()
    if sys.platform.startswith("linux") and choice in ("auto", "mkl"):
        path = find_mkl()
        if path is not None:
            preload_mkl(path)
            if _info["library"] == "mkl":
                return blas_info()
        elif choice == "mkl":
            _info.update(library="bundled reference BLAS",
                         error=f"{BLAS_ENV}=mkl but pip's `mkl` package is not installed here")
            return blas_info()
    mkl_error = _info["error"]
    preload_openblas()
    if mkl_error and _info["library"] == "openblas":
        _info["error"] = mkl_error  # say why MKL was passed over
    return blas_info()


def blas_info() -> dict:
    """Which BLAS MLX's CPU matmuls use: {'library', 'path', 'version', 'threading', 'coretype',
    'thread_timeout', 'error'}.

    'library' is 'mkl', 'openblas' (the system OpenBLAS), 'bundled reference BLAS', or a note
    for non-Linux platforms; 'error' says why a faster one was not used, if it was not.
    """
    return dict(_info)
