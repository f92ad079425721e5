"""Golden store: reference taps saved once, so the MLX side can be checked without torch.

Layout: `golden/<model>/manifest.json` plus one `<case>.safetensors` per golden case. Each case
file holds `inputs.<name>` (what both sides were fed), `taps.<name>` (whole taps, float32, or
integer for discrete taps), the fingerprint of every large tap (`fp.<name>.values`, `.edges`,
`.rows`, `.cols`) and `index.<shape>` (the flat indices of the stratified samples of every
fingerprinted tap of that shape, stored once per file). golden/README.md explains the
fingerprint and the bounds that make it fail when any element fails. The manifest records the
format version, inputs, seeds, config, upstream package versions, generator command, tolerance
table, the sha256 of every file and (`manifest_sha256`) of its own canonical content; a file or
a manifest whose hash differs is an error. Every malformed or missing piece is a `GoldenError`
naming the file and the command that regenerates it. The directory is written to a temporary
sibling and renamed into place, so a reader never sees a half-written golden.

This module imports numpy and safetensors.numpy only: reading goldens never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.compare import Fingerprint, Grid
from parity.spec import Arrays, ParityError

# 1 -> 2: whole up to 8192 (was 65536), 4096 indices (was 8192), shared indices.
# 2 -> 3: statistics of every frame block and channel block, stratified samples (at least one
# in every frame block), the first and last frame whole, the manifest hashed.
# 3 -> 4: a whole tap whose last rows are all one value (Whisper's log-mel of a 30-s window: the
# frames of the zero padding) stores the rows before them and the value (`tail`); format 3
# goldens read as before (`upgrade` rewrites one losslessly).
FORMAT_VERSION = 4
READABLE_VERSIONS = (3, 4)
MAX_WHOLE = 8192  # taps with at most this many elements are stored whole (float32)
MIN_SAMPLES = 512  # a fingerprint samples at least this many elements, one per frame block or more
INDEX_SEED = 0  # seed of the sample positions (numpy default_rng), the same for every tap of a shape

ROOT = Path(__file__).resolve().parent.parent / "golden"


class GoldenError(ParityError):
    """A golden that is missing, malformed, from another format version, or altered after
    generation."""


def regenerate(model: str) -> str:
    return f"regenerate it with `make golden MODEL={model}` (python -m parity golden {model})"


def sample_indices(grid: Grid, min_samples: int = MIN_SAMPLES,
                   seed: int = INDEX_SEED) -> np.ndarray:
    """Sorted distinct flat indices (int32), stratified: k = ceil(min_samples / n_blocks) positions drawn
    uniformly (with replacement, duplicates dropped) inside every frame block, so every block of
    frames has at least one sample. Fixed by (grid, seed)."""
    starts = grid.row_starts() * grid.width
    sizes = grid.row_sizes()
    k = max(1, -(-min_samples // starts.size))
    u = np.random.default_rng(seed).random((starts.size, k))
    idx = starts[:, None] + np.floor(u * sizes[:, None]).astype(np.int64)
    if grid.frames * grid.width >= 2 ** 31:
        raise ValueError(f"a tap of {grid.frames * grid.width} elements is too large for int32 "
                         "sample indices")
    return np.unique(idx).astype(np.int32)  # int32 halves the index tensors; read as int64


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no spaces) without its own
    `manifest_sha256` field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class GoldenCaseData:
    name: str
    inputs: Arrays
    taps: dict[str, np.ndarray | Fingerprint]  # execution order
    meta: dict  # the case's manifest entry


@dataclass(frozen=True)
class Golden:
    model: str
    manifest: dict
    cases: list[GoldenCaseData]


def _shape_key(shape: tuple[int, ...]) -> str:
    return "index." + "x".join(str(int(d)) for d in shape)


def pack_case(inputs: Arrays, taps: Arrays, discrete: tuple[str, ...] = (),
              whole: tuple[str, ...] = ()) -> tuple[Arrays, list]:
    """Tensors for one case file and the manifest's tap entries (in execution order).

    Taps named in `whole` are stored whole whatever their size (e.g. a front end's output that
    a port of the next stage loads as its input).
    """
    tensors: Arrays = {f"inputs.{k}": np.ascontiguousarray(v) for k, v in inputs.items()}
    entries = []
    for name, a in taps.items():
        a = np.asarray(a)
        if name in discrete:
            tensors[f"taps.{name}"] = np.ascontiguousarray(a.astype(np.int64))
            entries.append({"name": name, "shape": list(a.shape), "kind": "discrete"})
        elif a.size <= MAX_WHOLE or name in whole:
            a = a.astype(np.float32)
            entry = {"name": name, "shape": list(a.shape), "kind": "whole"}
            if a.size > MAX_WHOLE:
                a, entry = _cut_tail(a, entry)
            tensors[f"taps.{name}"] = np.ascontiguousarray(a)
            entries.append(entry)
        else:
            grid = Grid.of(a.shape)
            index = _shape_key(a.shape)
            if index not in tensors:
                tensors[index] = sample_indices(grid)
            fp = Fingerprint.of(a, tensors[index], grid)
            tensors[f"fp.{name}.values"] = fp.values
            tensors[f"fp.{name}.edges"] = np.ascontiguousarray(fp.edges)
            tensors[f"fp.{name}.rows"] = np.ascontiguousarray(fp.rows)
            if fp.cols is not None:
                tensors[f"fp.{name}.cols"] = np.ascontiguousarray(fp.cols)
            entries.append({"name": name, "shape": list(a.shape), "kind": "fingerprint",
                            "indices": index, "grid": grid.to_dict(), "summary": fp.summary()})
    return tensors, entries


def _cut_tail(a: np.ndarray, entry: dict) -> tuple[np.ndarray, dict]:
    """The rows (first axis) of `a` before its constant tail, and `entry` with `tail`: {from_row,
    value} when the rows from `from_row` on all hold exactly `value` (float32, exact in JSON).
    Lossless: `_whole` rebuilds the same bits."""
    if a.ndim == 0 or a.shape[0] < 2:
        return a, entry
    rows = a.reshape(a.shape[0], -1)
    value = rows[-1, 0]
    same = np.all(rows == value, axis=1)  # NaN never equals: a NaN tail stays stored
    if not same[-1]:
        return a, entry
    from_row = max(1, int(a.shape[0] - np.argmin(same[::-1])) if not same.all() else 1)
    return a[:from_row], {**entry, "tail": {"from_row": from_row, "value": float(value)}}


def upgrade(model: str, root: Path = ROOT) -> Path:
    """Rewrite a format-3 golden as format 4 without recomputing anything: the same tensors, the
    whole taps' constant tails cut (`_cut_tail`), every file and the manifest hashed again. The
    tap values are bit-identical (read back and compared before the folder is replaced)."""
    from safetensors.numpy import load_file

    before = read(model, root)
    manifest = json.loads((root / model / "manifest.json").read_text())
    if manifest["format_version"] == FORMAT_VERSION:
        return root / model
    tensors = {}
    for case, entry in zip(before.cases, manifest["cases"]):
        t = load_file(str(root / model / entry["file"]))
        for j, tap in enumerate(entry["taps"]):
            if tap["kind"] == "whole" and "tail" not in tap:
                cut, entry["taps"][j] = _cut_tail(t[f"taps.{tap['name']}"], tap)
                t[f"taps.{tap['name']}"] = np.ascontiguousarray(cut)
        tensors[case.name] = t
    manifest.pop("manifest_sha256")
    manifest["format_version"] = FORMAT_VERSION
    manifest["upgraded"] = f"format 3 -> {FORMAT_VERSION} by parity.golden.upgrade (values unchanged)"
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        write(model, json.loads(json.dumps(manifest)), tensors, root=Path(scratch))
        after = read(model, Path(scratch))
        for c0, c1 in zip(before.cases, after.cases):
            for name, want in c0.taps.items():
                got = c1.taps[name]
                if isinstance(want, np.ndarray) and not np.array_equal(want, got):
                    raise GoldenError(f"upgrade of {model} changed tap {name!r} of {c0.name}")
    return write(model, manifest, tensors, root=root)


def write(model: str, manifest: dict, case_tensors: dict[str, Arrays], root: Path = ROOT) -> Path:
    """Write golden/<model>/ atomically: a temporary directory renamed over the old one.

    `manifest["cases"]` must list one entry per key of `case_tensors`; this fills in each
    entry's `file` and `sha256`, then the manifest's own `manifest_sha256`.
    """
    from safetensors.numpy import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / model
    tmp = Path(tempfile.mkdtemp(prefix=f".{model}.tmp-", dir=root))
    try:
        by_name = {c["name"]: c for c in manifest["cases"]}
        if set(by_name) != set(case_tensors):
            raise ValueError(f"manifest cases {sorted(by_name)} != tensors {sorted(case_tensors)}")
        for name, tensors in case_tensors.items():
            path = tmp / f"{name}.safetensors"
            save_file(tensors, str(path))
            os.chmod(path, 0o644)
            by_name[name]["file"] = path.name
            by_name[name]["sha256"] = sha256(path)
        manifest["manifest_sha256"] = manifest_digest(manifest)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        os.chmod(tmp / "manifest.json", 0o644)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the finished folder `tmp` in place of `final` (0755): the old folder is moved aside
    first and removed only after the rename, so `final` is never half-written."""
    os.chmod(tmp, 0o755)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old)


# ------------------------------------------------------------------------------------------
# reading: every malformed piece is a GoldenError naming the file and the fix

_SUMMARY = ("mean", "std", "min", "max", "l2")
_GRID = ("frames", "width", "rows_per_block", "cols_per_block", "edge")


class _Check:
    """Type checks on a parsed manifest; each failure names the file, the JSON path and the fix."""

    def __init__(self, model: str, path: Path):
        self.model, self.path = model, path

    def fail(self, what: str, path: Path | None = None) -> GoldenError:
        return GoldenError(f"golden {path or self.path}: {what}. Goldens are generated, never "
                           f"edited by hand; {regenerate(self.model)}")

    def get(self, obj: dict, key: str, kind, where: str):
        if key not in obj:
            raise self.fail(f"{where} has no {key!r}")
        v = obj[key]
        if kind is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif kind is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, kind)
        if not ok:
            raise self.fail(f"{where}[{key!r}] is {type(v).__name__} {v!r:.60}, expected "
                            f"{kind.__name__}")
        return v

    def shape(self, obj: dict, where: str) -> tuple[int, ...]:
        s = self.get(obj, "shape", list, where)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in s):
            raise self.fail(f"{where}['shape'] is {s!r}, expected a list of non-negative ints")
        return tuple(s)


def _load_manifest(model: str, d: Path) -> dict:
    mpath = d / "manifest.json"
    if not mpath.exists():
        raise GoldenError(f"no golden for {model!r} at {d} (no {mpath.name}); generate it with "
                          f"`make golden MODEL={model}` (python -m parity golden {model})")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GoldenError(f"golden {mpath} is not valid JSON ({e}); {regenerate(model)}") from e
    if not isinstance(manifest, dict):
        raise GoldenError(f"golden {mpath} holds a JSON {type(manifest).__name__}, not an "
                          f"object; {regenerate(model)}")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise GoldenError(f"golden {d} has format version {version!r}, this harness reads "
                          f"{' and '.join(map(str, READABLE_VERSIONS))}; {regenerate(model)}")
    stored = manifest.get("manifest_sha256")
    if not isinstance(stored, str):
        raise GoldenError(f"golden {mpath} has no manifest_sha256 (its own hash); "
                          f"{regenerate(model)}")
    got = manifest_digest(manifest)
    if got != stored:
        raise GoldenError(f"golden {mpath} was changed after generation: the sha256 of its "
                          f"content is {got}, its manifest_sha256 says {stored}. Goldens are "
                          f"never edited by hand; {regenerate(model)}")
    return manifest


def _tensor(t: dict, key: str, shape: tuple[int, ...] | None, chk: _Check, path: Path,
            kinds: str = "f") -> np.ndarray:
    if key not in t:
        raise chk.fail(f"no tensor {key!r} (the file holds {len(t)} tensors)", path)
    a = t[key]
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise chk.fail(f"tensor {key!r} has shape {tuple(a.shape)}, the manifest implies "
                       f"{tuple(shape)}", path)
    if a.dtype.kind not in kinds:
        raise chk.fail(f"tensor {key!r} has dtype {a.dtype}", path)
    return a


def _whole(tap: dict, t: dict, chk: _Check, path: Path, where: str) -> np.ndarray:
    """A whole tap; with `tail` (format 4), its stored rows followed by the constant rows."""
    name, shape = tap["name"], chk.shape(tap, where)
    if "tail" not in tap:
        return _tensor(t, f"taps.{name}", shape, chk, path)
    tail = chk.get(tap, "tail", dict, where)
    from_row = chk.get(tail, "from_row", int, f"{where}['tail']")
    value = chk.get(tail, "value", float, f"{where}['tail']")
    if not shape or not 0 <= from_row < shape[0]:
        raise chk.fail(f"{where}['tail']['from_row'] {from_row} does not fit shape {list(shape)}")
    out = np.full(shape, np.float32(value), np.float32)
    out[:from_row] = _tensor(t, f"taps.{name}", (from_row, *shape[1:]), chk, path)
    return out


def _fingerprint(tap: dict, t: dict, chk: _Check, path: Path, where: str) -> Fingerprint:
    name, shape = tap["name"], chk.shape(tap, where)
    g = chk.get(tap, "grid", dict, where)
    grid = Grid(**{k: chk.get(g, k, int, f"{where}['grid']") for k in _GRID})
    n = int(np.prod(shape, dtype=np.int64))
    if (grid.frames * grid.width != n or grid.rows_per_block < 1 or grid.cols_per_block < 0
            or not 0 < grid.edge <= n):
        raise chk.fail(f"{where}['grid'] {g} does not fit shape {list(shape)}")
    s = chk.get(tap, "summary", dict, where)
    summ = {k: float(chk.get(s, k, float, f"{where}['summary']")) for k in _SUMMARY}
    index = chk.get(tap, "indices", str, where)
    idx = _tensor(t, index, None, chk, path, "iu").astype(np.int64)
    if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
        raise chk.fail(f"tensor {index!r} is not a list of flat indices < {n}", path)
    rows = _tensor(t, f"fp.{name}.rows", (4, grid.row_starts().size), chk, path)
    cols = None if grid.one_d else _tensor(t, f"fp.{name}.cols", (4, grid.col_starts().size),
                                           chk, path)
    return Fingerprint(shape, grid, idx, _tensor(t, f"fp.{name}.values", idx.shape, chk, path),
                       _tensor(t, f"fp.{name}.edges", (2, grid.edge), chk, path), rows, cols,
                       **summ)


def read(model: str, root: Path = ROOT) -> Golden:
    """Load and verify golden/<model>/: format version, the manifest's own hash, its structure,
    every file's sha256, and every tensor the manifest names (key, shape, dtype)."""
    from safetensors.numpy import load_file

    d = root / model
    manifest = _load_manifest(model, d)
    chk = _Check(model, d / "manifest.json")
    entries = chk.get(manifest, "cases", list, "manifest")
    if not entries:
        raise chk.fail("manifest lists no cases")
    cases = []
    for i, entry in enumerate(entries):
        where = f"cases[{i}]"
        if not isinstance(entry, dict):
            raise chk.fail(f"{where} is {type(entry).__name__}, expected an object")
        cname = chk.get(entry, "name", str, where)
        fname = chk.get(entry, "file", str, where)
        digest = chk.get(entry, "sha256", str, where)
        taps_meta = chk.get(entry, "taps", list, where)
        if Path(fname).name != fname:
            raise chk.fail(f"{where}['file'] {fname!r} is not a file name inside {d}")
        path = d / fname
        if not path.exists():
            raise GoldenError(f"golden file {path} listed in the manifest is missing; "
                              f"{regenerate(model)}")
        got = sha256(path)
        if got != digest:
            raise GoldenError(f"golden file {path} has sha256 {got}, manifest says {digest}: it "
                              f"was changed after generation. Goldens are never edited by hand; "
                              f"{regenerate(model)}")
        try:
            t = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise chk.fail(f"cannot be read as safetensors ({e})", path) from e
        inputs = {k[len("inputs."):]: v for k, v in t.items() if k.startswith("inputs.")}
        taps: dict[str, np.ndarray | Fingerprint] = {}
        for j, tap in enumerate(taps_meta):
            tw = f"{where}['taps'][{j}]"
            if not isinstance(tap, dict):
                raise chk.fail(f"{tw} is {type(tap).__name__}, expected an object")
            name = chk.get(tap, "name", str, tw)
            kind = chk.get(tap, "kind", str, tw)
            if kind == "whole":
                taps[name] = _whole(tap, t, chk, path, tw)
            elif kind == "discrete":
                taps[name] = _tensor(t, f"taps.{name}", chk.shape(tap, tw), chk, path, "iub")
            elif kind == "fingerprint":
                taps[name] = _fingerprint(tap, t, chk, path, tw)
            else:
                raise chk.fail(f"{tw}['kind'] is {kind!r}, expected whole, discrete or "
                               "fingerprint")
        cases.append(GoldenCaseData(cname, inputs, taps, entry))
    return Golden(model, manifest, cases)
