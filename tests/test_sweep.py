"""`python -m parity sweep`: shards, resume, the aggregated reports, and `--ray` on a local
loopback cluster with a worker killed mid-sweep.

Fake items (a few lines of Python standing in for `python -m parity run`) test the machinery in
seconds; two real test-tiny specs (the cheapest, ~5 s each) run end to end, locally and on Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

from parity import registry, sweep
from parity.spec import DTYPES

CHEAP = ["s3tokenizer-v2-test-tiny", "s3tokenizer-v1-test-tiny"]  # ~2.5 s of phases each
# A stand-in for `python -m parity run`: writes a per-spec report like parity.report's and exits
# like it (0 pass, 1 fail); "crash" exits 3 without a report; "sleep" outlives any timeout.
FAKE_RUN = r"""
import json, sys, time
from pathlib import Path
name, out = sys.argv[1], Path(sys.argv[2])
if name.endswith("crash"):
    print("Traceback ...\nRuntimeError: the fake crashed"); sys.exit(3)
if name.endswith("sleep"):
    time.sleep(60)
if "nap" in name:
    time.sleep(1.5)
ok = name.endswith("pass")
tap = lambda n, p: {"name": n, "passed": p, "max_abs": 0.0 if p else 0.5, "n_fail": 0 if p else 3,
                    "size": 8}
out.mkdir(parents=True, exist_ok=True)
(out / f"{name}.json").write_text(json.dumps({"model": name, "passed": ok, "error": None,
    "cases": [{"case": "fox", "against": "reference", "passed": ok, "error": None,
               "taps": [tap("encoder.0", True), tap("encoder.1", ok), tap("encoder.2", ok)],
               "exercised": [], "goals": {}}], "checks": [], "stale_overrides": []}))
(out / f"{name}.md").write_text(f"# {name}\n")
sys.exit(0 if ok else 1)
"""


@dataclass(frozen=True)
class FakeItem(sweep.Item):
    def argv(self, report_dir: Path) -> list[str]:
        return [sys.executable, "-c", FAKE_RUN, self.model, str(report_dir)]


def run_fakes(tmp_path, names, jobs=2, **kw) -> dict:
    lines: list[str] = []
    s = sweep.sweep([FakeItem(n) for n in names], sweep.Outputs(tmp_path), jobs, costs={},
                    log=lines.append, **kw)
    s["lines"] = lines
    return s


def by_id(s: dict) -> dict:
    return {r["id"]: r for r in s["items"]}


def test_shards_cover_every_item_exactly_once_balanced_by_duration():
    items = [sweep.Item(s.name, d) for s in registry.SPECS for d in DTYPES]
    costs = sweep.read_costs()
    for n in (2, 3):
        parts = [sweep.shard(items, i, n, costs) for i in range(1, n + 1)]
        ids = [it.id for p in parts for it in p]
        assert sorted(ids) == sorted(it.id for it in items), f"{n} shards"
        assert len(ids) == len(set(ids)), f"an item in two of {n} shards"
        loads = [sum(sweep.duration(it, costs) for it in p) for p in parts]
        longest = max(sweep.duration(it, costs) for it in items)
        assert max(loads) - min(loads) <= longest, (n, loads)  # greedy LPT bound
    # deterministic: the same split from a shuffled list (ties broken by id)
    again = sweep.shard(list(reversed(items)), 1, 2, costs)
    assert {it.id for it in again} == {it.id for it in sweep.shard(items, 1, 2, costs)}
    with pytest.raises(ValueError, match="between 1 and 2"):
        sweep.shard(items, 3, 2, costs)


def test_shard_split_is_by_measured_duration():
    items = [sweep.Item(n) for n in ("a", "b", "c", "d")]
    costs = {"a": {"duration_s": 10}, "b": {"duration_s": 6}, "c": {"duration_s": 5},
             "d": {"duration_s": 1}}
    assert [it.id for it in sweep.shard(items, 1, 2, costs)] == ["a", "d"]  # 11
    assert [it.id for it in sweep.shard(items, 2, 2, costs)] == ["b", "c"]  # 11


def test_sweep_reports_failures_with_first_diverging_tap_and_junit(tmp_path):
    s = run_fakes(tmp_path, ["f-pass", "f-fail", "f-crash"])
    r = by_id(s)
    assert not s["passed"] and s["counts"]["passed"] == 1
    assert r["f-pass"]["status"] == "passed" and r["f-pass"]["first_failure"] is None
    assert r["f-fail"]["status"] == "failed" and r["f-fail"]["rc"] == 1
    assert r["f-fail"]["first_failure"].startswith("fox vs reference: tap encoder.1 "), r
    assert r["f-crash"]["status"] == "error"
    assert "RuntimeError: the fake crashed" in r["f-crash"]["first_failure"]
    assert r["f-pass"]["peak_rss_mb"] > 1 and r["f-pass"]["duration_s"] > 0
    on_disk = json.loads((tmp_path / "sweep.json").read_text())
    assert [x["id"] for x in on_disk["items"]] == ["f-pass", "f-fail", "f-crash"]
    assert (tmp_path / "parity" / "f-fail.json").is_file()
    assert "RuntimeError" in (tmp_path / "sweep-logs" / "f-crash.log").read_text()
    md = (tmp_path / "sweep.md").read_text()
    assert md.startswith("# Parity sweep: FAIL") and "| f-fail | FAILED |" in md
    suite = ET.parse(tmp_path / "sweep.junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["f-pass"].find("failure") is None and cases["f-pass"].find("error") is None
    assert "encoder.1" in cases["f-fail"].find("failure").get("message")
    assert cases["f-crash"].find("error") is not None
    assert any("FAILED f-fail" in ln for ln in s["lines"])
    assert any("left]" in ln for ln in s["lines"])  # progress lines carry the ETA


def test_timeout_kills_the_item(tmp_path):
    s = run_fakes(tmp_path, ["t-sleep"], jobs=1, timeout_s=1.0)
    r = by_id(s)["t-sleep"]
    assert r["status"] == "timeout" and r["duration_s"] < 10, r


def test_restart_skips_current_items_and_reruns_stale_ones(tmp_path):
    first = run_fakes(tmp_path, ["r-pass", "r-fail", "r-crash"])
    assert not any(r.get("resumed") for r in first["items"])
    again = run_fakes(tmp_path, ["r-pass", "r-fail", "r-crash"])
    r = by_id(again)
    # finished items with a current report are skipped; one that left no report runs again
    assert r["r-pass"].get("resumed") and r["r-fail"].get("resumed")
    assert not r["r-crash"].get("resumed")
    assert r["r-fail"]["first_failure"] == by_id(first)["r-fail"]["first_failure"]
    assert again["resumed"] == 2
    # a report changed behind the sweep's back is not current
    (tmp_path / "parity" / "r-pass.json").write_text("{}")
    assert not by_id(run_fakes(tmp_path, ["r-pass"]))["r-pass"].get("resumed")
    # a changed key (code, environment, goldens) is not current either
    state = sweep.State(sweep.Outputs(tmp_path))
    item = FakeItem("r-pass")
    key = state.items["r-pass"]["key"]
    assert state.current(item, key) is not None
    assert state.current(item, "0" * 64) is None
    assert not by_id(run_fakes(tmp_path, ["r-pass"], force=True))["r-pass"].get("resumed")


def test_item_key_follows_code_and_goldens(tmp_path, monkeypatch):
    keys = sweep.Keys()
    item = sweep.Item("s3tokenizer-v2-test-tiny")
    k = keys(item)
    assert keys(item) == k and keys(sweep.Item(item.model, "float16")) != k
    monkeypatch.setattr(keys, "code", "other")
    assert keys(item) != k
    # goldens: the same folder with one byte changed
    (tmp_path / "golden" / "m").mkdir(parents=True)
    (tmp_path / "golden" / "m" / "a.npz").write_bytes(b"x")
    h = sweep.inputs_hash("m", tmp_path)
    (tmp_path / "golden" / "m" / "a.npz").write_bytes(b"y")
    assert sweep.inputs_hash("m", tmp_path) != h


@pytest.mark.parametrize("budget_mb, overlap", [(1000, False), (2000, True)])
def test_memory_budget_bounds_what_runs_at_once(budget_mb, overlap):
    """Two 1.5 s items of 600 MB each on 2 slots: a 1000 MB budget runs them one after the
    other, a 2000 MB one side by side."""
    items = [FakeItem("m1-nap-pass"), FakeItem("m2-nap-pass")]
    costs = {it.id: {"peak_rss_mb": 600, "duration_s": 1} for it in items}
    starts = {}
    results = list(sweep.local(items, 2, budget_mb, costs, 60.0, 1,
                               lambda it: starts.setdefault(it.id, time.monotonic())))
    assert {r["status"] for r in results} == {"passed"}
    gap = abs(starts["m2-nap-pass"] - starts["m1-nap-pass"])
    assert (gap < 1.0) == overlap, f"starts {gap:.2f} s apart with a {budget_mb} MB budget"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    return subprocess.run([sys.executable, "-m", "parity", "sweep", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_cli_sweeps_real_specs_in_parallel(tmp_path):
    proc = _cli("--models", CHEAP[0], "--models", CHEAP[1], "--jobs", "2", "--out",
                str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    s = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["id"] for r in s["items"]] == CHEAP and s["passed"]
    for r in s["items"]:
        report = json.loads((tmp_path / "parity" / f"{r['id']}.json").read_text())
        assert report["passed"] and report["model"] == r["id"]
        assert r["peak_rss_mb"] > 100, r  # torch + mlx are loaded
    assert "left]" in proc.stderr and "PASS: 2 passed" in proc.stdout


def _proc_cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid(pid: str) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker in /proc")
def test_ray_sweep_on_a_local_cluster_recovers_a_killed_worker(tmp_path):
    pytest.importorskip("ray", reason="`pip install -e '.[ray]'` (ray==2.60.0) for --ray")
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    cluster = subprocess.Popen([sys.executable, "-m", "parity.sweep_ray", "--nodes", "2",
                                "--lifetime", "150"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = cluster.stdout.readline()
        assert line.startswith("address 127.0.0.1:"), line
        address = line.split()[1]
        run = subprocess.Popen([sys.executable, "-m", "parity", "sweep", "--models", CHEAP[0],
                                "--models", CHEAP[1], "--ray", address, "--out", str(tmp_path)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        killed, deadline = None, time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                if f"parity run {CHEAP[1]}" in _proc_cmdline(pid):
                    worker = _ppid(pid)  # the Ray worker running this item's task
                    assert "ray::" in _proc_cmdline(str(worker)), _proc_cmdline(str(worker))
                    os.kill(worker, signal.SIGKILL)
                    killed = worker
                    break
            time.sleep(0.1)
        out, _ = run.communicate(timeout=120)
    finally:
        cluster.stdin.close()  # the cluster stops every process it started
        cluster.wait(timeout=60)
    assert killed is not None, f"never saw {CHEAP[1]} start:\n{out[-3000:]}"
    assert run.returncode == 0, out[-4000:]
    s = json.loads((tmp_path / "sweep.json").read_text())
    r = by_id(s)
    assert s["passed"] and s["reruns"] == 1, s
    assert r[CHEAP[1]]["reruns"] == 1 and "Worker" in r[CHEAP[1]]["rerun_reason"], r
    assert r[CHEAP[0]]["reruns"] == 0
    assert f"LOST {CHEAP[1]}" in out
    for i in CHEAP:
        assert json.loads((tmp_path / "parity" / f"{i}.json").read_text())["passed"]
    assert all("/ray-node-" in x["node"] for x in s["items"])
    assert "rerun" in (tmp_path / "sweep.md").read_text()


def test_select_globs_dtypes_and_benchmarks():
    items = sweep.select(["*-test-tiny"], ["float32", "float16"], bench=True)
    ids = [it.id for it in items]
    assert "whisper-test-tiny" in ids and "whisper-test-tiny-float16" in ids
    assert "whisper-base" not in ids and "wav2vec2-test-tiny-stable" not in ids
    benched = {s.name for s in registry.SPECS if s.bench is not None and s.name in ids}
    assert {it.model for it in items if it.kind == "bench"} == benched
    assert all(it.id.startswith("bench:") for it in items if it.kind == "bench")
    with pytest.raises(ValueError, match="no registered spec matches"):
        sweep.select(["nope-*"], ["float32"])
