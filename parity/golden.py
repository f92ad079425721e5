"""Golden store: reference taps saved once, so the MLX side can be checked without torch.

Layout: `golden/<model>/manifest.json` plus one `<case>.safetensors` per golden case. Each case
file holds `inputs.<name>` (what both sides were fed), `taps.<name>` (whole taps, float32, or
integer for discrete taps), `fp.<name>.values` (fingerprints of large taps) and
`index.<size>` (the flat indices of every fingerprint of a tap with that many elements, stored once
per file). golden/README.md explains the fingerprint. The manifest records the format version,
inputs, seeds, config, upstream package versions, generator command, tolerance table and the
sha256 of every file; a file whose hash differs is an error. The directory is written to a
temporary sibling and renamed into place, so a reader never sees a half-written golden.

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

from parity.compare import Fingerprint
from parity.spec import Arrays, ParityError

FORMAT_VERSION = 2  # 1 -> 2: whole up to 8192 (was 65536), 4096 indices (was 8192), shared indices
MAX_WHOLE = 8192  # taps with at most this many elements are stored whole (float32)
N_INDICES = 4096  # larger taps: values at this many fixed flat indices plus summary statistics
INDEX_SEED = 0  # seed of the index set (numpy default_rng), the same for every tap of a size

ROOT = Path(__file__).resolve().parent.parent / "golden"


class GoldenError(ParityError):
    """A golden that is missing, from another format version, or altered after generation."""


def fingerprint_indices(size: int, n: int = N_INDICES, seed: int = INDEX_SEED) -> np.ndarray:
    """Sorted flat indices, distinct, drawn with a fixed seed: the same set for a given size."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, size=min(n, size), replace=False)).astype(np.int64)


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
            tensors[f"taps.{name}"] = np.ascontiguousarray(a.astype(np.float32))
            entries.append({"name": name, "shape": list(a.shape), "kind": "whole"})
        else:
            index = f"index.{a.size}"
            if index not in tensors:
                tensors[index] = fingerprint_indices(a.size)
            fp = Fingerprint.of(a, tensors[index])
            tensors[f"fp.{name}.values"] = fp.values
            entries.append({"name": name, "shape": list(a.shape), "kind": "fingerprint",
                            "indices": index, "summary": fp.summary()})
    return tensors, entries


def write(model: str, manifest: dict, case_tensors: dict[str, Arrays], root: Path = ROOT) -> Path:
    """Write golden/<model>/ atomically: a temporary directory renamed over the old one.

    `manifest["cases"]` must list one entry per key of `case_tensors`; this fills in each
    entry's `file` and `sha256`.
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
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        os.chmod(tmp / "manifest.json", 0o644)
        os.chmod(tmp, 0o755)
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{model}.old-", dir=root))
            os.replace(final, old / model)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read(model: str, root: Path = ROOT) -> Golden:
    """Load and verify golden/<model>/ (format version, every file's sha256)."""
    from safetensors.numpy import load_file

    d = root / model
    mpath = d / "manifest.json"
    if not mpath.exists():
        raise GoldenError(f"no golden for {model!r} at {d}; generate it with "
                          f"`python -m parity golden {model}` (or `make golden MODEL={model}`)")
    manifest = json.loads(mpath.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise GoldenError(f"golden {d} has format version {manifest.get('format_version')}, this "
                          f"harness reads {FORMAT_VERSION}; regenerate with "
                          f"`python -m parity golden {model}`")
    cases = []
    for entry in manifest["cases"]:
        path = d / entry["file"]
        if not path.exists():
            raise GoldenError(f"golden file {path} listed in the manifest is missing; regenerate "
                              f"with `python -m parity golden {model}`")
        got = sha256(path)
        if got != entry["sha256"]:
            raise GoldenError(f"golden file {path} has sha256 {got}, manifest says "
                              f"{entry['sha256']}: it was changed after generation. Goldens are "
                              f"never edited by hand; regenerate with "
                              f"`python -m parity golden {model}`")
        t = load_file(str(path))
        inputs = {k[len("inputs."):]: v for k, v in t.items() if k.startswith("inputs.")}
        taps: dict[str, np.ndarray | Fingerprint] = {}
        for tap in entry["taps"]:
            name, kind = tap["name"], tap["kind"]
            if kind in ("whole", "discrete"):
                taps[name] = t[f"taps.{name}"]
            else:
                s = tap["summary"]
                taps[name] = Fingerprint(tuple(tap["shape"]), t[tap["indices"]],
                                         t[f"fp.{name}.values"], s["mean"], s["std"], s["min"],
                                         s["max"], s["l2"])
        cases.append(GoldenCaseData(entry["name"], inputs, taps, entry))
    return Golden(model, manifest, cases)
