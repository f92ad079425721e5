"""Check a port against a `python -m parity export` directory, reading only the export.

    python tools/check_export.py DIR --port MODULE:FACTORY [--dtype float32] [--all]

This file is the second reader of the export format: it imports numpy, safetensors.numpy and
the standard library, nothing from this project. The port under test comes in as a callable:
`FACTORY(manifest: dict, dtype: str)` returns `port(inputs: dict[str, np.ndarray]) ->
dict[str, np.ndarray]` that runs the model on the case's inputs (keys as in the manifest's
`inputs`, without the `inputs/` prefix) and returns every tap by name, whole, in the layout the
manifest states. Our MLX port is `parity.export:mlx_port`.

Taps are compared in index order; the first failing one is the divergence (`--all` compares
every tap anyway). Exit status 0 when every tap of every case passes, 1 otherwise, 2 when the
export itself is broken (missing file, sha256 or size mismatch, unknown schema).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

SCHEMA_VERSION = 1
FLOAT_DTYPES = ("float32", "float16", "bfloat16")


class ExportError(Exception):
    """The export directory is not a valid export (the port was not checked)."""


# ------------------------------------------------------------------------------------------
# reading


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_bfloat16_file(path: Path) -> dict[str, np.ndarray]:
    """safetensors.numpy cannot hold bfloat16 (numpy has no such dtype): parse the file's header
    and widen BF16 tensors to float32 (the upper 16 bits of a float32); other dtypes as stored."""
    kinds = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64,
             "BF16": np.uint16}
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, h in header.items():
        if k == "__metadata__":
            continue
        a, b = h["data_offsets"]
        kind = np.dtype(kinds[h["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(raw[8 + n + a: 8 + n + b], dtype=kind)
        if h["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[k] = arr.reshape(h["shape"]).copy()
    return out


def read_file(path: Path, dtype: str) -> dict[str, np.ndarray]:
    return _read_bfloat16_file(path) if dtype == "bfloat16" else load_file(str(path))


def load_export(root: Path | str) -> dict:
    """manifest.json, after checking the schema and the size and sha256 of every file it lists."""
    root = Path(root)
    mpath = root / "manifest.json"
    if not mpath.exists():
        raise ExportError(f"{root} has no manifest.json; write one with "
                          "`python -m parity export MODEL --out DIR`")
    manifest = json.loads(mpath.read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ExportError(f"{mpath} has schema_version {manifest.get('schema_version')!r}; this "
                          f"reader reads {SCHEMA_VERSION}; export again with this checkout")
    listed = {f["name"]: f for f in manifest["files"]}
    for case in manifest["cases"]:
        for fname in case["files"].values():
            if fname not in listed:
                raise ExportError(f"case {case['name']!r} names {fname}, which the manifest's "
                                  "files list does not")
    for name, f in listed.items():
        p = root / name
        if not p.exists():
            raise ExportError(f"{p} is listed in the manifest but missing; export again")
        if p.stat().st_size != f["bytes"]:
            raise ExportError(f"{p} has {p.stat().st_size} bytes, the manifest says {f['bytes']}")
        if _sha256(p) != f["sha256"]:
            raise ExportError(f"{p} has sha256 {_sha256(p)}, the manifest says {f['sha256']}: "
                              "it changed after the export; export again")
    return manifest


def case_arrays(root: Path | str, case: dict, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Every tensor of one case file, after checking each key the manifest names is present
    with its shape."""
    path = Path(root) / case["files"][dtype]
    t = read_file(path, dtype)
    want = [(i["key"], i["shape"]) for i in case["inputs"].values()]
    want += [(e["key"], e.get("stored_shape", e["shape"])) for e in case["taps"]]
    want += [(e["channels"]["key"], e["channels"]["stored_shape"]) for e in case["taps"]
             if e.get("channels")]
    for key, shape in want:
        if key not in t:
            raise ExportError(f"{path} has no tensor {key!r}")
        if list(t[key].shape) != list(shape):
            raise ExportError(f"{path}: {key!r} has shape {list(t[key].shape)}, the manifest "
                              f"says {shape}")
    return t


# ------------------------------------------------------------------------------------------
# comparing


@dataclass
class TapResult:
    case: str
    index: int
    name: str
    passed: bool
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    nmse: float = float("nan")
    atol: float = float("nan")  # what the tap was held to
    rtol: float = float("nan")
    needed_atol: float = float("nan")  # the smallest atol that would have passed at this rtol
    note: str = ""  # why it failed: shape, NaN, the worst element, the first mismatch

    def line(self) -> str:
        return (f"{self.index:3d} {self.name:32s} max_abs {self.max_abs:10.3g} max_rel "
                f"{self.max_rel:10.3g} nmse {self.nmse:10.3g} atol {self.atol:9.3g} needed "
                f"{self.needed_atol:9.3g}  {'PASS' if self.passed else 'FAIL'}"
                + (f"  {self.note}" if self.note else ""))


@dataclass
class Report:
    dtype: str
    results: list[TapResult] = field(default_factory=list)

    @property
    def first_divergence(self) -> TapResult | None:
        return next((r for r in self.results if not r.passed), None)

    @property
    def passed(self) -> bool:
        return bool(self.results) and self.first_divergence is None


def compare_tap(case: str, entry: dict, got, want: np.ndarray, dtype: str,
                channels: np.ndarray | None = None) -> TapResult:
    """One tap; `channels`: the stored outlier channels (entry["channels"]) when there are."""
    r = _compare(case, entry, got, want, dtype)
    if channels is None or not r.passed:
        return r
    sub = dict(entry, slice=None, tolerance={dtype: dict(entry["tolerance"][dtype], nmse_max=None)})
    sub["shape"] = list(np.take(np.asarray(got), [0], axis=-1).shape[:-1]) + \
        [len(entry["channels"]["indices"])]
    c = _compare(case, sub, np.take(np.asarray(got), entry["channels"]["indices"], axis=-1),
                 channels, dtype)
    if not c.passed:
        c.note = f"outlier channels {entry['channels']['indices']}: {c.note}"
        c.nmse = r.nmse
        return c
    r.max_abs, r.max_rel = max(r.max_abs, c.max_abs), max(r.max_rel, c.max_rel)
    r.needed_atol = max(r.needed_atol, c.needed_atol)
    return r


def _compare(case: str, entry: dict, got, want: np.ndarray, dtype: str) -> TapResult:
    r = TapResult(case, entry["index"], entry["name"], False)
    if got is None:
        r.note = "the port returned no tap of this name"
        return r
    got = np.asarray(got)
    if list(got.shape) != entry["shape"]:
        r.note = f"shape {list(got.shape)}, expected {entry['shape']}"
        return r
    if entry["kind"] == "discrete":
        diff = np.argwhere(got.astype(np.int64) != want.astype(np.int64))
        r.max_abs = r.max_rel = r.nmse = float(diff.shape[0])
        r.atol = r.rtol = r.needed_atol = 0.0
        r.passed = diff.shape[0] == 0
        if not r.passed:
            i = tuple(int(x) for x in diff[0])
            r.note = f"{diff.shape[0]} mismatches; first at {i}: got {got[i]}, want {want[i]}"
        return r
    if entry.get("slice"):
        got = got[tuple(slice(*s) for s in entry["slice"])]
    g, w = got.astype(np.float64), want.astype(np.float64)
    tol = entry["tolerance"][dtype]
    r.atol, r.rtol = tol["atol"], tol["rtol"]
    if not np.all(np.isfinite(g)):
        r.note = f"{int(np.sum(~np.isfinite(g)))} NaN/Inf elements in the port's tap"
        return r
    err = np.abs(g - w)
    r.max_abs = float(err.max())
    r.max_rel = float(np.max(err / np.maximum(np.abs(w), 1e-30)))
    power = float(np.mean(w * w))
    r.nmse = float(np.mean(err * err) / power) if power > 0 else float(np.mean(err * err))
    r.needed_atol = float(np.max(err - r.rtol * np.abs(w)))
    over = err > r.atol + r.rtol * np.abs(w)
    nmse_ok = tol["nmse_max"] is None or r.nmse <= tol["nmse_max"]
    r.passed = not over.any() and nmse_ok and err.size > 0
    if over.any():
        i = np.unravel_index(int(np.argmax(err - r.rtol * np.abs(w))), err.shape)
        r.note = (f"{int(over.sum())} of {over.size} elements over; worst at "
                  f"{tuple(int(x) for x in i)} (stored index): got {g[i]:.8g}, want {w[i]:.8g}")
    elif not nmse_ok:
        r.note = f"normalised MSE {r.nmse:.3g} > {tol['nmse_max']:.3g}"
    elif err.size == 0:
        r.note = "empty tap: nothing compared"
    return r


def _check_rounded(root, case: dict, dtype: str, t32: dict[str, np.ndarray]) -> None:
    """The half-precision file holds the float32 file's inputs as they are and its taps rounded
    to `dtype` (within half a unit in the last place: 2**-11 relative for float16, 2**-8 for
    bfloat16, or the smallest subnormal step)."""
    half = case_arrays(root, case, dtype)
    rel = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}[dtype]
    tiny = {"float16": 2.0 ** -25, "bfloat16": 2.0 ** -134}[dtype]
    for key, want in t32.items():
        got = half[key].astype(np.float64) if key in half else None
        if got is None or got.shape != want.shape:
            raise ExportError(f"{case['files'][dtype]}: {key!r} missing or of another shape")
        bound = rel * np.abs(want.astype(np.float64)) + tiny
        if key.startswith("inputs/") or want.dtype.kind != "f":
            bound = 0.0
        if np.any(np.abs(got - want) > bound):
            raise ExportError(f"{case['files'][dtype]}: {key!r} is not the float32 file's value "
                              f"rounded to {dtype}")


def check(root: Path | str, port_factory, dtype: str = "float32", fail_fast: bool = True,
          log=None) -> Report:
    """Run the port on every case's inputs and compare its taps in order (see the module doc)."""
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype {dtype!r}: choose one of {FLOAT_DTYPES}")
    manifest = load_export(root)
    port = port_factory(manifest, dtype)
    rep = Report(dtype)
    for case in manifest["cases"]:
        t = case_arrays(root, case, "float32")  # expected values: the float32 reference
        if dtype != "float32" and dtype in case["files"]:
            _check_rounded(root, case, dtype, t)
        got = port({name: t[i["key"]] for name, i in case["inputs"].items()})
        for entry in case["taps"]:
            extra = t[entry["channels"]["key"]] if entry.get("channels") else None
            r = compare_tap(case["name"], entry, got.get(entry["name"]), t[entry["key"]], dtype,
                            extra)
            rep.results.append(r)
            if log:
                log(f"{case['name']}: {r.line()}")
            if fail_fast and not r.passed:
                return rep
    if not rep.results:
        raise ExportError(f"{root}: zero taps compared; an export with no taps checks nothing")
    return rep


def load_port(spec: str):
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--port {spec!r}: expected MODULE:FACTORY, e.g. parity.export:mlx_port")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # MODULE from the current directory, as `python -m`
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export_dir")
    p.add_argument("--port", required=True, help="MODULE:FACTORY returning the port callable")
    p.add_argument("--dtype", default="float32", choices=FLOAT_DTYPES,
                   help="the port's compute dtype (picks the tolerance table)")
    p.add_argument("--all", action="store_true", help="compare every tap, not stop at the first "
                   "failing one")
    a = p.parse_args(argv)
    try:
        rep = check(a.export_dir, load_port(a.port), a.dtype, fail_fast=not a.all, log=print)
    except ExportError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    first = rep.first_divergence
    n = len(rep.results)
    if first is None:
        print(f"PASS: {n} taps match ({a.dtype})")
        return 0
    print(f"FAIL: first diverging tap: {first.name} (case {first.case}, index {first.index}); "
          f"{first.note}; {n} taps compared")
    return 1


if __name__ == "__main__":
    sys.exit(main())
