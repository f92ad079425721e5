"""Build the CPU kernel extension (`mlx_impl/_cpu_ext/_kernels*.so`) with CMake and nanobind.

Usage: `.venv/bin/python mlx_impl/_cpu_ext/build.py [--arch auto|native|x86-64-v2|x86-64-v3|
x86-64-v4|none] [--build-dir build/cpu_ext] [--optional]`. Needs cmake >= 3.24, a C++20
compiler, and nanobind 3.x in the same environment as mlx (mlx 0.32.4's Python module is built
with nanobind 3, ABI tag v22; a nanobind 2.x build loads but cannot accept `mx.array` arguments).

`--optional` (what `scripts/setup.sh` passes): a failed build prints a warning and exits 0, so
set-up goes on and the layers run their compiled-MLX fallback (`mlx_impl/_cpu_ext/__init__.py`
says how much slower and less accurate). Nothing is installed or removed on failure: a module
from an earlier build stays, and is used only if it still loads against the installed mlx
(`mlx_impl.cpu_kernels_info()` says which path ran and why).

`--arch auto` (the default) picks the x86-64 micro-architecture level from /proc/cpuinfo:
v4 (AVX-512) / v3 (AVX2+FMA) / v2 (SSE4.2); on arm64 and macOS no flag is needed (NEON is
baseline). The kernels are compiled with -ffp-contract=off, so every level gives the same bits;
the level only changes speed. The finished module is copied next to this file atomically.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARCH_FLAGS = {
    "x86-64-v2": "-march=x86-64-v2",
    "x86-64-v3": "-march=x86-64-v3",
    # GCC's generic tuning prefers 256-bit vectors even where AVX-512 exists; these loops gain
    # from 512-bit ones (measured: see the docstring of mlx_impl/_cpu_ext/__init__.py).
    "x86-64-v4": "-march=x86-64-v4 -mprefer-vector-width=512",
    "native": "-march=native",
    "none": "",
}


def detect_arch() -> str:
    """The highest x86-64 level this CPU supports, or 'none' off x86-64 Linux."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not sys.platform.startswith(
        "linux"
    ):
        return "none"
    flags: set[str] = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        return "x86-64-v4"
    if {"avx2", "fma", "bmi2", "movbe", "f16c"} <= flags:
        return "x86-64-v3"
    if {"sse4_2", "popcnt", "ssse3"} <= flags:
        return "x86-64-v2"
    return "none"


def build(arch: str = "auto", build_dir: Path | None = None, verbose: bool = False) -> Path:
    """Configure, compile and install the extension; returns the installed path."""
    for tool in ("cmake",):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found; install it (apt-get install cmake) and rerun")
    try:
        import nanobind  # noqa: F401
    except ImportError as e:
        raise RuntimeError(
            "nanobind is not installed in this environment; `pip install 'nanobind>=3,<4'`"
        ) from e
    if arch == "auto":
        arch = detect_arch()
    if arch not in ARCH_FLAGS:
        raise ValueError(f"unknown --arch {arch!r}; choose one of auto, {', '.join(ARCH_FLAGS)}")
    build_dir = build_dir or ROOT / "build" / "cpu_ext"
    build_dir.mkdir(parents=True, exist_ok=True)
    out = subprocess.DEVNULL if not verbose else None
    subprocess.run(
        [
            "cmake",
            "-S",
            str(HERE),
            "-B",
            str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DMLX_IMPL_ARCH_FLAGS={ARCH_FLAGS[arch]}",
            f"-DMLX_IMPL_ARCH_NAME={arch}",
        ],
        check=True,
        stdout=out,
    )
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    subprocess.run(
        ["cmake", "--build", str(build_dir), "--config", "Release", "-j", jobs],
        check=True,
        stdout=out,
    )
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = [p for p in build_dir.rglob(f"_kernels{suffix}") if p.is_file()]
    if len(built) != 1:
        raise RuntimeError(f"expected one _kernels{suffix} under {build_dir}, found {built}")
    dest = HERE / built[0].name
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copy2(built[0], tmp)
    os.replace(tmp, dest)
    return dest


FALLBACK_NOTE = (
    "the layers run their compiled-MLX fallback instead (slower, and softmax/GELU less accurate: "
    "mlx_impl/_cpu_ext/__init__.py has the numbers)"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="auto", help="auto (default), " + ", ".join(ARCH_FLAGS))
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--optional", action="store_true",
                    help="on failure warn and exit 0 (the layers fall back to MLX ops)")
    args = ap.parse_args()
    arch = args.arch if args.arch != "auto" else detect_arch()
    try:
        path = build(args.arch, args.build_dir, args.verbose)
    except Exception as e:  # any failure: compiler, cmake, nanobind, arch flags
        if not args.optional:
            raise
        earlier = sorted(p.name for p in HERE.glob("_kernels*") if p.suffix in (".so", ".pyd"))
        then = (f"an earlier build ({', '.join(earlier)}) is left in place and used if it loads "
                f"against the installed mlx; if not, {FALLBACK_NOTE}" if earlier
                else FALLBACK_NOTE)
        cause = (f"`{' '.join(map(str, e.cmd[:2]))} ...` exited with status {e.returncode}"
                 if isinstance(e, subprocess.CalledProcessError) else f"{type(e).__name__}: {e}")
        print(f"cpu_ext: WARNING: build failed ({cause}); continuing: {then}. "
              "Fix the cause (output above; -v shows the compiler's) and rerun "
              "`.venv/bin/python mlx_impl/_cpu_ext/build.py`; `mlx_impl.cpu_kernels_info()` "
              "says which path runs.", file=sys.stderr)
        return 0
    print(f"cpu_ext: built {path.relative_to(ROOT)} (arch {arch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
