#!/usr/bin/env python3
"""Carry files to the lent GPU machine in as many device calls as its transfer limit needs.

Each call of the `device` tool sends the working tree (tracked files and untracked files git
does not ignore) plus the ignored paths named in its `carry`, at most 64 MiB in all; the machine
keeps /tmp only while it stays warm between calls (30 s). What a GPU run needs (the mlx-cuda-13
wheel is 86 MiB, whisper-base's real CTranslate2 weights 139 MiB) does not fit one call, and
golden/ (58 MB) does not fit next to anything. This script, standard library only, does the
steps that were done by hand before (benchmarks/gpu_device.sh's history):

    python3 scripts/device_carry.py slim           # golden/ and reports/ stop travelling
    python3 scripts/device_carry.py pack --out .device FILE...
        # -> .device/call1 ... callN (pieces + CARRY.json), each under the limit with the tree
    # device calls, back to back (the machine goes back after 30 s idle): call k carries
    # .device/callk and runs `mkdir -p /tmp/parts && cp .device/callk/* /tmp/parts/`; the last
    # one then runs
    python3 scripts/device_carry.py unpack /tmp/parts --to /tmp/carry   # sha256-checked
    python3 scripts/device_carry.py restore        # golden/ and reports/ tracked again

`slim` takes golden/ and reports/ out of git's index (the files stay on disk; `restore` puts
the index entries back exactly as they were, staged changes included) and lists them in .git/info/exclude, so neither the
tracked nor the untracked part of the tree carries them; its state is in .git/device-slim.json,
and `restore` refuses nothing: run it whatever happened to the calls. A commit made while slim
would delete golden/ and reports/: `slim` says so and `restore` undoes the index change only.

`pack` measures the tree that travels (`git ls-files` of the index, untracked files that are not
ignored), then splits the files into pieces so that tree + one call's pieces stay under
`--limit-mib` (64) less `--margin-mib` (2, for the transfer's own overhead) and writes CARRY.json
into every call folder: each file's name, size, sha256 and its pieces in order. `unpack` joins
the pieces of every file in CARRY.json from the parts folder, checks sizes and sha256, and writes
each file atomically; a missing or damaged piece is an error naming it and the call that carries
it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024
SLIM_PATHS = ("golden", "reports")
STATE = "device-slim.json"
MANIFEST = "CARRY.json"
SCHEMA = 1


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def _git_dir(repo: Path) -> Path:
    return (repo / _git(repo, "rev-parse", "--git-dir").strip()).resolve()


def travelling_bytes(repo: Path) -> int:
    """Bytes of the tree a device call sends: the index's files and the untracked files git does
    not ignore (as the device tool reads them), as they are on disk."""
    names = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    total = 0
    for name in filter(None, names.split("\0")):
        p = repo / name
        if p.is_file():
            total += p.stat().st_size
    return total


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def plan(sizes: dict[str, int], per_call: int) -> list[list[tuple[str, int, int]]]:
    """Calls, each a list of (file name, offset, length) pieces of at most `per_call` bytes in
    all; files in the given order, split where a call fills up."""
    if per_call <= 0:
        raise ValueError("no room left in a call for the files: the tree that travels is at or "
                         "over the limit; run `slim` first or shrink the tree")
    calls: list[list[tuple[str, int, int]]] = [[]]
    room = per_call
    for name, size in sizes.items():
        offset = 0
        while True:  # an empty file is one empty piece
            if room == 0:
                calls.append([])
                room = per_call
            n = min(room, size - offset)
            calls[-1].append((name, offset, n))
            offset += n
            room -= n
            if offset >= size:
                break
    return calls


def _atomic_bytes(path: Path, chunks) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    os.replace(tmp, path)


def pack(repo: Path, files: list[Path], out: Path, limit_mib: float, margin_mib: float) -> dict:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"not files: {', '.join(missing)}")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ValueError(f"two files share a name ({names}); carry them from one folder each")
    tree = travelling_bytes(repo)
    out_rel = out.resolve()
    per_call = int((limit_mib - margin_mib) * MIB) - tree
    calls = plan({f.name: f.stat().st_size for f in files}, per_call)
    by_name = {f.name: f for f in files}
    manifest = {"schema": SCHEMA, "tree_bytes": tree, "limit_mib": limit_mib,
                "margin_mib": margin_mib, "calls": len(calls), "files": []}
    pieces: dict[str, list[dict]] = {f.name: [] for f in files}
    for k, call in enumerate(calls, 1):
        for name, offset, length in call:
            pieces[name].append({"piece": f"{name}.part{len(pieces[name])}", "call": k,
                                 "offset": offset, "bytes": length})
    for f in files:
        manifest["files"].append({"name": f.name, "bytes": f.stat().st_size,
                                  "sha256": sha256(f), "pieces": pieces[f.name]})
    for k in range(1, len(calls) + 1):
        folder = out_rel / f"call{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for entry in manifest["files"]:
            for pc in entry["pieces"]:
                if pc["call"] != k:
                    continue
                with open(by_name[entry["name"]], "rb") as src:
                    src.seek(pc["offset"])
                    _atomic_bytes(folder / pc["piece"], [src.read(pc["bytes"])])
        _atomic_bytes(folder / MANIFEST, [json.dumps(manifest, indent=1).encode() + b"\n"])
    return manifest


def unpack(parts: Path, to: Path) -> list[Path]:
    mf = parts / MANIFEST
    if not mf.is_file():
        raise FileNotFoundError(f"{mf} is missing: copy every call folder's files into {parts}")
    manifest = json.loads(mf.read_text())
    if manifest.get("schema") != SCHEMA:
        raise ValueError(f"{mf}: schema {manifest.get('schema')}, this script reads {SCHEMA}")
    to.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in manifest["files"]:
        for pc in entry["pieces"]:
            p = parts / pc["piece"]
            if not p.is_file() or p.stat().st_size != pc["bytes"]:
                have = "missing" if not p.is_file() else f"{p.stat().st_size} bytes"
                raise ValueError(f"{p}: {have}, expected {pc['bytes']} bytes; it travels in "
                                 f"call {pc['call']} of {manifest['calls']}: carry that call's "
                                 "folder again")
        target = to / entry["name"]
        _atomic_bytes(target, ((parts / pc["piece"]).read_bytes() for pc in entry["pieces"]))
        got = sha256(target)
        if got != entry["sha256"]:
            target.unlink()
            raise ValueError(f"{entry['name']}: sha256 {got} after joining, expected "
                             f"{entry['sha256']}; carry its pieces again")
        written.append(target)
    return written


def slim(repo: Path) -> list[str]:
    gd = _git_dir(repo)
    state = gd / STATE
    if state.exists():
        raise RuntimeError(f"already slim ({state}); run `restore` first")
    paths = [p for p in SLIM_PATHS if _git(repo, "ls-files", "--", p).strip()]
    exclude = gd / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    before = exclude.read_text() if exclude.exists() else ""
    added = [f"/{p}/" for p in paths if f"/{p}/" not in before.splitlines()]
    index = _git(repo, "ls-files", "-s", "--", *paths) if paths else ""  # the exact entries
    _atomic_bytes(state, [json.dumps({"paths": paths, "exclude_added": added,
                                      "index": index}).encode()])
    if added:
        _atomic_bytes(exclude, [(before + ("" if before.endswith("\n") or not before else "\n")
                                 + "\n".join(added) + "\n").encode()])
    if paths:
        _git(repo, "rm", "-r", "--cached", "-q", "--", *paths)
    return paths


def restore(repo: Path) -> list[str]:
    gd = _git_dir(repo)
    state = gd / STATE
    if not state.exists():
        return []
    st = json.loads(state.read_text())
    exclude = gd / "info" / "exclude"
    if exclude.exists() and st["exclude_added"]:
        lines = [ln for ln in exclude.read_text().splitlines() if ln not in st["exclude_added"]]
        _atomic_bytes(exclude, [("\n".join(lines) + "\n" if lines else "").encode()])
    if st["index"]:  # the entries as they were (staged changes too), not HEAD's
        info = "".join(f"{meta}\t{path}\n" for meta, path in
                       (ln.split("\t", 1) for ln in st["index"].splitlines()))
        subprocess.run(["git", "update-index", "--index-info"], cwd=repo, input=info,
                       text=True, check=True, capture_output=True)
    state.unlink()
    return st["paths"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/device_carry.py",
                                description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("slim", help="golden/ and reports/ stop travelling (index + exclude)")
    sub.add_parser("restore", help="undo slim")
    sub.add_parser("size", help="MiB of the tree a device call sends now")
    pk = sub.add_parser("pack", help="split FILEs into call folders under the limit")
    pk.add_argument("files", nargs="+", type=Path)
    pk.add_argument("--out", type=Path, default=Path(".device"))
    pk.add_argument("--limit-mib", type=float, default=64.0)
    pk.add_argument("--margin-mib", type=float, default=2.0)
    up = sub.add_parser("unpack", help="(on the device) join and check the pieces")
    up.add_argument("parts", type=Path)
    up.add_argument("--to", type=Path, required=True)
    a = p.parse_args(argv)
    repo = Path.cwd()
    try:
        if a.cmd == "slim":
            paths = slim(repo)
            print(f"slim: {', '.join(paths) or 'nothing'} out of the index (files kept); the "
                  f"tree that travels is {travelling_bytes(repo) / MIB:.1f} MiB. Do not commit "
                  "until `restore`.")
        elif a.cmd == "restore":
            paths = restore(repo)
            print(f"restore: {', '.join(paths) or 'nothing to restore'}")
        elif a.cmd == "size":
            print(f"{travelling_bytes(repo) / MIB:.1f} MiB")
        elif a.cmd == "pack":
            m = pack(repo, a.files, a.out, a.limit_mib, a.margin_mib)
            print(f"pack: tree {m['tree_bytes'] / MIB:.1f} MiB + files in {m['calls']} calls "
                  f"({a.out}/call1 .. call{m['calls']}):")
            for f in m["files"]:
                print(f"  {f['name']}: {f['bytes'] / MIB:.1f} MiB, sha256 {f['sha256'][:16]}..., "
                      f"calls {sorted({pc['call'] for pc in f['pieces']})}")
        else:
            for f in unpack(a.parts, a.to):
                print(f"unpack: {f} ok")
    except (OSError, ValueError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"device_carry {a.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
