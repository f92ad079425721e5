"""Facts about the machine and process that every benchmark result carries.

Peak RSS: on Linux the process's own high-water mark `VmHWM` from /proc/self/status is the
primary number. `resource.getrusage(RUSAGE_SELF).ru_maxrss` is recorded too but is NOT a fresh
process's own peak there: Python starts subprocesses with vfork, and at exec the kernel folds the
*parent's* high-water mark into the child's `signal->maxrss` (measured: a child spawned from a
412 MB parent reports ru_maxrss 412 MB while its VmHWM is 8.7 MB). On macOS (posix_spawn; ru_maxrss
in bytes) ru_maxrss is used.

Paths: reports name files relative to the repository (`tests/fixtures/speech/…`, `.venv/lib/…`),
its sibling `../shared/…`, or the home folder (`~/.cache/…`), never by the absolute paths of the
machine that ran them; the writers pass what they write through `portable`.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# distributions whose versions a benchmark result records (those installed)
PACKAGES = ("mlx", "mlx-metal", "mlx-cpu", "numpy", "torch", "transformers", "openai-whisper",
            "faster-whisper", "ctranslate2", "mlx-whisper", "tiktoken", "tokenizers")


def _path_rules() -> list[tuple[re.Pattern, str]]:
    """(pattern of an absolute folder, what it becomes), most specific first. A folder matches
    only as whole path components: /work/main does not match /work/main2."""
    end = r"(?![\w.+-])"  # the folder's name ends here
    rules = [(re.compile(re.escape(str(ROOT)) + "/"), ""),  # <repo>/tests/x -> tests/x
             (re.compile(re.escape(str(ROOT)) + end), "."),
             (re.compile(re.escape(str(ROOT.parent / "shared")) + end), "../shared")]
    home = Path.home()
    if len(home.parts) > 1:  # a home of "/" would rewrite every path
        rules.append((re.compile(re.escape(str(home)) + end), "~"))
    # another machine's installs and scratch (the GPU machine's tracebacks and arguments): an
    # interpreter's packages as `site-packages/…` (also benchmarks/gpu_device.sh's /tmp/site
    # target), other temporary files as `<tmp>/…`
    rules += [(re.compile(r"(?:/[\w.+-]+)+/site-packages/"), "site-packages/"),
              (re.compile(r"/tmp/site/"), "site-packages/"),
              (re.compile(r"(?<![\w.])/tmp/"), "<tmp>/")]
    return rules


def portable_path(text: str) -> str:
    """`text` with this machine's absolute paths made portable: the repository's relative to it,
    `<repo>/../shared/…` as `../shared/…`, the home folder as `~` (see the module doc)."""
    for pattern, name in _path_rules():
        text = pattern.sub(lambda m, name=name: name, text)
    return text


def portable(obj):
    """A JSON-like object (dicts, lists, strings, numbers) with every string and key passed
    through `portable_path`; what the benchmark writers write."""
    if isinstance(obj, str):
        return portable_path(obj)
    if isinstance(obj, dict):
        return {portable(k) if isinstance(k, str) else k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable(v) for v in obj]
    return obj


def cpu_model() -> str:
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], check=True,
                                  capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or "unknown"


def memory_total_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_facts() -> dict:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_total_bytes": memory_total_bytes(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def ru_maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def peak_rss_bytes() -> tuple[int, str]:
    """(peak resident set size of this process in bytes, how it was measured)."""
    hwm = _proc_status_kb("VmHWM")
    if hwm is not None:
        return hwm * 1024, "VmHWM (/proc/self/status)"
    return ru_maxrss_bytes(), "ru_maxrss"


def current_rss_bytes() -> int | None:
    rss = _proc_status_kb("VmRSS")
    return None if rss is None else rss * 1024
