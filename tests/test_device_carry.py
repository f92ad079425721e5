"""scripts/device_carry.py: split files into device calls under the transfer limit, join them
back with checksums, and take golden/ and reports/ out of the travelling tree and back."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "device_carry.py"
spec = importlib.util.spec_from_file_location("device_carry", SCRIPT)
dc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dc)

MIB = dc.MIB


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for rel, n in (("golden/m/a.bin", 300_000), ("reports/r.md", 50_000), ("code.py", 1000)):
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(np.random.default_rng(n).bytes(n))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    return repo


def test_plan_splits_at_the_room_left():
    calls = dc.plan({"a": 10, "b": 7, "empty": 0}, per_call=8)
    assert calls == [[("a", 0, 8)], [("a", 8, 2), ("b", 0, 6)], [("b", 6, 1), ("empty", 0, 0)]]
    with pytest.raises(ValueError, match="run `slim` first"):
        dc.plan({"a": 1}, per_call=0)


def test_pack_unpack_round_trip_under_the_limit(tmp_path):
    repo = _repo(tmp_path)
    tree = dc.travelling_bytes(repo)
    assert tree == 351_000
    files = []
    for name, n in (("wheel.whl", 900_000), ("model.bin", 400_000)):
        f = tmp_path / name
        f.write_bytes(np.random.default_rng(n).bytes(n))
        files.append(f)
    limit_mib = (tree + 500_000) / MIB  # room for 500 kB of pieces next to the tree per call
    m = dc.pack(repo, files, tmp_path / "out", limit_mib, margin_mib=0)
    assert m["calls"] == 3  # 1.3 MB in 500 kB calls
    parts = tmp_path / "parts"
    parts.mkdir()
    for k in range(1, m["calls"] + 1):
        folder = tmp_path / "out" / f"call{k}"
        size = sum(p.stat().st_size for p in folder.iterdir() if p.name != dc.MANIFEST)
        assert size <= 500_000, (k, size)
        for p in folder.iterdir():
            (parts / p.name).write_bytes(p.read_bytes())
    out = dc.unpack(parts, tmp_path / "carry")
    assert [p.name for p in out] == ["wheel.whl", "model.bin"]
    for f, got in zip(files, out):
        assert got.read_bytes() == f.read_bytes()


def test_unpack_names_the_damaged_piece_and_its_call(tmp_path):
    repo = _repo(tmp_path)
    f = tmp_path / "w.whl"
    f.write_bytes(b"x" * 1000)
    m = dc.pack(repo, [f], tmp_path / "out", (dc.travelling_bytes(repo) + 400) / MIB, 0)
    parts = tmp_path / "out" / "call1"
    for k in range(2, m["calls"] + 1):
        for p in (tmp_path / "out" / f"call{k}").iterdir():
            (parts / p.name).write_bytes(p.read_bytes())
    (parts / "w.whl.part1").unlink()
    with pytest.raises(ValueError, match=r"w.whl.part1: missing, expected 400 bytes; it travels "
                                         r"in call 2 of 3"):
        dc.unpack(parts, tmp_path / "carry")
    (parts / "w.whl.part1").write_bytes(b"y" * 400)  # right size, wrong bytes
    with pytest.raises(ValueError, match="sha256"):
        dc.unpack(parts, tmp_path / "carry")
    assert not (tmp_path / "carry" / "w.whl").exists()


def test_slim_and_restore(tmp_path):
    repo = _repo(tmp_path)
    assert dc.slim(repo) == ["golden", "reports"]
    assert dc.travelling_bytes(repo) == 1000  # golden/ and reports/ neither tracked nor untracked
    assert (repo / "golden/m/a.bin").exists()
    with pytest.raises(RuntimeError, match="already slim"):
        dc.slim(repo)
    assert dc.restore(repo) == ["golden", "reports"]
    assert dc.travelling_bytes(repo) == 351_000
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout.split()
    assert sorted(staged) == ["code.py", "golden/m/a.bin", "reports/r.md"]  # all still added
    exclude = (repo / ".git/info/exclude").read_text()
    assert "/golden/" not in exclude and "/reports/" not in exclude
    assert dc.restore(repo) == []


def test_cli_errors_name_the_problem(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "unpack", str(tmp_path), "--to",
                        str(tmp_path / "c")], capture_output=True, text=True)
    assert r.returncode == 1
    assert "CARRY.json is missing" in r.stderr
    json.dumps({})  # (json used by the module under test)
