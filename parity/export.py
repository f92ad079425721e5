"""`python -m parity export MODEL --out DIR`: fixtures a port in another language can walk.

For every golden case of a spec, the reference runs once and the export writes
`<case>.<dtype>.safetensors` (dtype float32, and float16 / bfloat16 copies) holding

- `inputs/<name>`: what both sides receive (floats as float32 in every file, integers as int32);
- `taps/NNN.<name>`: the reference's continuous taps in execution order (NNN = index, 3 digits);
- `outputs/<name>`: the discrete taps (tokens, codes) that must match exactly (int32),

and `manifest.json` describing them: schema version, generator (git commit, packages, device),
seeds, the model (id, config, weights origin, reference dtype), every tap in order (index, key,
shape, dtype, layout, the slice stored, tolerance per compute dtype with the normalised-MSE bound
it implies, summary statistics of the whole tap), the exact outputs, the checkpoint key map
(traced from the model's converter), and the sha256 and size of every file.

The format is defined by its second reader, `tools/check_export.py`, which imports nothing from
this project. Half-precision files hold the float32 values rounded to that dtype (round to
nearest even) for a consumer that loads straight into its compute dtype; the expected values a
port is held to are the float32 ones, with the tolerance table of the port's compute dtype.

Size: `-test-tiny` specs are exported whole. Real-size taps above `max_elements` are stored as
a strided slice (`slice`: [start, stop, step] per axis; `bounded_slice` says which axes),
except the spec's `golden_whole` taps (front ends a port feeds forward) and discrete taps,
which are always whole; with a stride over frames, every frame of the channels
of largest magnitude is stored besides (`channels`, `outlier_channels`); the manifest records
both and the statistics of the whole tap. A bounded export checks only the stored elements.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from parity.compare import nmse_bound
from parity.golden import replace_dir
from parity.metrics import check_finite
from parity.spec import DTYPES, KeyMapSource, ModelSpec

SCHEMA_VERSION = 1
MAX_ELEMENTS = 65536  # per tap, real-size specs: 256 KiB of float32; ~30 taps stay < 10 MB
REPO = Path(__file__).resolve().parent.parent
_PACKAGES = ("numpy", "safetensors", "mlx", "torch", "openai-whisper", "transformers")


# ------------------------------------------------------------------------------------------
# safetensors writing (numpy has no bfloat16, so the one writer used here is this small one)

_ST_DTYPE = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32",
             np.dtype(np.int64): "I64"}


def _contiguous(a, dtype=None) -> np.ndarray:
    """A C-contiguous copy that keeps 0-d arrays 0-d (np.ascontiguousarray makes them (1,))."""
    return np.array(a, dtype=dtype, order="C", copy=True)


def to_bfloat16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even; NaN stays NaN."""
    bits = _contiguous(a, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(a)
    return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray],
                      bf16: frozenset[str] = frozenset(), meta: dict[str, str] | None = None
                      ) -> None:
    """A safetensors file: u64 header size, JSON header, raw little-endian data. Keys in `bf16`
    hold bfloat16 bit patterns as uint16 and are labelled BF16."""
    header: dict = {"__metadata__": dict(meta or {})}
    offset, blobs = 0, []
    for k in sorted(tensors):
        a = _contiguous(tensors[k])
        kind = "BF16" if k in bf16 else _ST_DTYPE.get(a.dtype)
        if kind is None or (kind == "BF16") != (a.dtype == np.uint16):
            raise TypeError(f"cannot store {k!r} of dtype {a.dtype} in the export")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[k] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset,
                                                                              offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------
# what goes in


MIN_ROWS = 64  # a strided axis other than the last keeps at least this many entries


def bounded_slice(shape: tuple[int, ...], max_elements: int) -> list[list[int]] | None:
    """[start, stop, step] per axis whose strided slice has <= max_elements elements, or None
    when the tap fits whole. Steps double on the leading axis (frames, tokens) with the most
    selected entries while it keeps more than MIN_ROWS, so that every channel stays (a port's
    bugs are often in some channels: a head order, a transposed kernel); then on whichever axis
    has the most."""
    counts = list(shape)
    if int(np.prod(counts, dtype=np.int64)) <= max_elements:
        return None
    steps = [1] * len(shape)
    while int(np.prod(counts, dtype=np.int64)) > max_elements:
        lead = [a for a in range(len(shape) - 1) if counts[a] > MIN_ROWS]
        ax = max(lead, key=lambda a: counts[a]) if lead else int(np.argmax(counts))
        steps[ax] *= 2
        counts[ax] = -(-shape[ax] // steps[ax])
    return [[0, int(n), s] for n, s in zip(shape, steps)]


def outlier_channels(a: np.ndarray, sl: list[list[int]] | None, max_elements: int | None
                     ) -> list[int] | None:
    """With a strided slice over frames, the channels (last axis) of largest magnitude, stored
    for every frame besides: float32 rounding differs most where values are largest (Whisper's
    outlier channels), and a stride over frames can step over the one element that fails
    (measured: whisper-base encoder.blocks.2.mlp fails at frame 312 of channel 388, its largest
    channel, off the 16-frame stride). Up to a quarter of max_elements; None when not sliced."""
    if sl is None or a.ndim < 2 or sl[-1][2] != 1 or all(s[2] == 1 for s in sl[:-1]):
        return None
    k = max(1, min(a.shape[-1], (max_elements // 4) // max(1, a.size // a.shape[-1])))
    mag = np.abs(a.reshape(-1, a.shape[-1])).max(axis=0)
    return sorted(int(i) for i in np.argsort(-mag, kind="stable")[:k])


def _summary(a: np.ndarray) -> dict:
    x = a.astype(np.float64)
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()),
            "max": float(x.max()), "rms": float(np.sqrt(np.mean(x * x))),
            "l2": float(np.sqrt(np.sum(x * x)))}


def _tolerances(spec: ModelSpec, name: str, whole: np.ndarray, stored: np.ndarray) -> dict:
    """Per compute dtype: the element bound |got - want| <= atol + rtol * |want| (atol = the
    table's floor at this tap's RMS, over the whole tap) and the normalised-MSE bound it implies
    on the stored values."""
    rms = float(np.sqrt(np.mean(whole.astype(np.float64) ** 2)))
    out = {}
    for dtype in DTYPES:
        tol, override = spec.tolerance(dtype).for_tap(name)
        atol = tol.floor(rms)
        out[dtype] = {"atol": atol, "rtol": tol.rtol,
                      "nmse_max": nmse_bound(stored, atol, tol.rtol),
                      "rule": {"atol_floor": tol.atol, "k_rms": tol.k_rms, "rms": rms},
                      "reason": override.reason if override else "the spec's default for "
                      f"{dtype} (parity/spec.py, docs/PRECISION.md)"}
    return out


def _git() -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=False).stdout.strip()
    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain", "--",
                                                        "mlx_impl", "parity", "reference",
                                                        "weights"))}


def _packages(extra: dict) -> dict:
    out = {"python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {**out, **{k: v for k, v in extra.items() if isinstance(v, str)}}


def _device() -> dict:
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"reference": "torch on the CPU, float32", "system": platform.platform(),
            "machine": platform.machine(), "cpu": cpu}


# ------------------------------------------------------------------------------------------
# the key map


def _match(value: np.ndarray, candidates: list[tuple[str, np.ndarray]]):
    """(upstream key, how) of the candidate `value` equals: how is None (as stored), an axis
    permutation (list; preferred, so a kernel-1 conv reads as the transpose its siblings get),
    or "reshape" (same values in the same order, e.g. (1, C, 1) -> (C,))."""
    for key, src in candidates:
        if src.shape == value.shape and np.array_equal(src, value):
            return key, None
    for key, src in candidates:
        if src.ndim == value.ndim and src.ndim > 1:
            for perm in itertools.permutations(range(src.ndim)):
                if perm != tuple(range(src.ndim)) and \
                        tuple(src.shape[p] for p in perm) == value.shape and \
                        np.array_equal(src.transpose(perm), value):
                    return key, list(perm)
    for key, src in candidates:
        if src.size == value.size and np.array_equal(src.ravel(), value.ravel()):
            return key, "reshape"
    return None, None


def trace_key_map(source: KeyMapSource) -> dict:
    """Run the converter and say, for every parameter it returns, which upstream key it came
    from and which transpose (numpy `transpose(perm)` of the upstream array) it applied; a
    parameter equal to no upstream array is "computed by the converter" (e.g. weight norm
    folded), an upstream key nothing came from is "dropped"."""
    upstream = {k: np.asarray(v) for k, v in source.upstream.items()}
    converted = {k: np.asarray(v) for k, v in source.convert(dict(upstream)).items()}

    def signature(a):  # invariant under transposes and exact (a float sum is neither)
        return (a.size, a.min().item(), a.max().item()) if a.size else (0,)

    by_sig: dict = {}
    for k, v in upstream.items():
        by_sig.setdefault(signature(v), []).append((k, v))
    entries, used = [], set()
    for ours, value in converted.items():
        cands = by_sig.get(signature(value), [])
        cands = sorted(cands, key=lambda kv: kv[0] != ours)  # the same name first
        key, perm = _match(value, cands)
        entry = {"param": ours, "shape": list(value.shape)}
        if key is None:
            entry["upstream"] = None
            entry["computed"] = f"by the converter ({source.converter}); equal to no upstream " \
                                "array, even transposed"
        else:
            used.add(key)
            entry["upstream"] = key
            entry["upstream_shape"] = list(upstream[key].shape)
            if perm == "reshape":
                entry["reshape"] = list(value.shape)
            elif perm is not None:
                entry["transpose"] = perm
        entries.append(entry)
    return {"available": True, "converter": source.converter,
            "rule": "our parameter path <- upstream key; `transpose` is the numpy axis "
                    "permutation applied to the upstream array, `reshape` the new shape of the "
                    "same values in the same order (neither: stored as is); traced by running "
                    "the converter on the upstream weights and matching arrays. Upstream keys "
                    "are the canonical layout the reader (weights/<model>.py) produces: weight "
                    "norm already folded into `weight` where the checkpoint stores it split",
            "params": entries,
            "dropped_upstream_keys": sorted(set(upstream) - used),
            "computed_buffers": [{"name": n, "how": h} for n, h in source.computed],
            "notes": source.notes}


def loader_key_map(package: str, folder: Path) -> KeyMapSource:
    """The key map source of a model package loaded by `mlx_impl.loading.make_loader`: its
    reader's canonical state of the checkpoint `folder` and its converter (given the config
    when the converter takes one), as `load` runs them."""
    import importlib

    load = importlib.import_module(f"mlx_impl.{package}.load").load
    parts = getattr(load, "parts", None)
    if parts is None:
        raise ValueError(f"mlx_impl.{package}.load.load is not a make_loader loader; give the "
                         "spec its own key_map")
    w = parts["read"](Path(folder))
    convert = parts["convert"]
    if parts["convert_takes_config"]:
        cfg = parts["config"](w.config)
        convert = functools.partial(_convert_with, convert, cfg)
    module = importlib.import_module(f"mlx_impl.{package}.convert")
    return KeyMapSource(upstream=w.state, convert=convert,
                        converter=f"mlx_impl/{package}/convert.py",
                        notes=(module.__doc__ or "").strip())


def _convert_with(convert, cfg, state):
    return convert(state, cfg)


def key_map_for(spec: ModelSpec) -> dict:
    if spec.key_map is None:
        return {"available": False,
                "why": f"spec {spec.name!r} does not expose its upstream state dict and "
                       "converter to the exporter (ModelSpec.key_map is None); read "
                       "mlx_impl/<model>/convert.py for its renames and transposes"}
    return trace_key_map(spec.key_map())


# ------------------------------------------------------------------------------------------
# the export


def _default_max(spec: ModelSpec) -> int | None:
    return None if spec.name.endswith("test-tiny") else MAX_ELEMENTS


def export(spec: ModelSpec, out: Path, max_elements: int | None = -1,
           dtypes: tuple[str, ...] = DTYPES, log=print) -> Path:
    """Write the export of `spec` to `out` atomically (see the module docstring). `max_elements`
    -1: the default (whole for `-test-tiny` specs, else MAX_ELEMENTS); None: everything whole."""
    out = Path(out)
    if "float32" not in dtypes or not set(dtypes) <= set(DTYPES):
        raise ValueError(f"dtypes {dtypes} must include float32 and be among {DTYPES}")
    if out.exists() and any(out.iterdir()) and not _is_export(out):
        raise FileExistsError(f"{out} exists and is not a parity export (no manifest.json with "
                              "a schema_version); pass an empty or new directory")
    if not spec.golden_cases:
        raise ValueError(f"spec {spec.name!r} has no golden cases to export")
    if max_elements == -1:
        max_elements = _default_max(spec)
    log(f"building the reference side of {spec.name}")
    ref = spec.build_reference()
    log("tracing the checkpoint key map")
    key_map = key_map_for(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        cases = [_export_case(spec, ref, case, tmp, max_elements, dtypes, log)
                 for case in spec.golden_cases]
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "format": "tools/check_export.py reads it; README 'Checking your own port'",
            "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "generator": {"command": f"python -m parity export {spec.name} --out DIR",
                          "git": _git(), "packages": _packages(getattr(ref, "versions", {})),
                          "device": _device()},
            "seeds": {k: v for k, v in spec.config.items() if "seed" in k},
            "model": {"id": spec.name, "description": spec.description, "config":
                      dict(spec.config), "weights": spec.weights, "reference_dtype": "float32",
                      "notes": (sys.modules[type(ref).__module__].__doc__ or "").strip()
                      if type(ref).__module__ in sys.modules else ""},
            "comparison": {
                "continuous": "every element: |got - want| <= atol + rtol * |want| (atol, rtol "
                              "of the port's compute dtype); NaN/Inf or a shape mismatch fails; "
                              "mean((got - want)^2) / mean(want^2) <= nmse_max",
                "discrete": "outputs/* must be equal element for element",
                "order": "taps in index order; the first failing tap is the divergence",
                "slice": "a tap with `slice` stores want[start:stop:step, ...]; slice the port's "
                         "whole tap the same way before comparing. A tap with `channels` also "
                         "stores want[..., indices] (every frame, those channels): compare "
                         "np.take(got, indices, axis=-1) with the same element bound",
                "dtypes": "the expected values are the float32 reference; float16/bfloat16 files "
                          "hold the taps rounded to that dtype (round to nearest even) and the "
                          "inputs in float32, as every compute dtype is fed"},
            "bounding": {"max_elements_per_tap": max_elements,
                         "rule": "whole when max_elements_per_tap is null; else taps above it "
                                 "(except discrete and front-end taps) are stored as a strided "
                                 "slice: steps doubled on the frame/token axis while it keeps > "
                                 f"{MIN_ROWS} entries (every channel kept), then on the largest "
                                 "axis (e.g. the vocabulary of the logits). A bounded export "
                                 "checks only the stored elements; export whole for the "
                                 "harness's verdict"},
            "key_map": key_map,
            "cases": cases,
        }
        files = sorted(p for p in tmp.iterdir())
        manifest["files"] = [{"name": p.name, "bytes": p.stat().st_size, "sha256": sha256(p)}
                             for p in files]
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _is_export(d: Path) -> bool:
    try:
        return "schema_version" in json.loads((d / "manifest.json").read_text())
    except (OSError, ValueError):
        return False


def _export_case(spec: ModelSpec, ref, case, tmp: Path, max_elements: int | None,
                 dtypes: tuple[str, ...], log) -> dict:
    from parity.runner import reference_case

    inp, taps = reference_case(spec, ref, case, log)
    tensors: dict[str, np.ndarray] = {}
    inputs = {}
    for k, v in inp.arrays.items():
        v = np.asarray(v)
        v = v.astype(np.float32) if v.dtype.kind == "f" else v.astype(np.int32)
        tensors[f"inputs/{k}"] = _contiguous(v)
        inputs[k] = {"key": f"inputs/{k}", "shape": list(v.shape),
                     "dtype": "float" if v.dtype.kind == "f" else "int32"}
    entries, outputs = [], []
    for i, name in enumerate(spec.taps):
        a = np.asarray(taps[name])
        check_finite(name, "reference", a)
        entry = {"index": i, "name": name, "shape": list(a.shape),
                 "layout": spec.layout(name) or "as the MLX side records it (channels-last)"}
        if name in spec.discrete:
            key = f"outputs/{name}"
            tensors[key] = _contiguous(a.astype(np.int32))
            entry |= {"key": key, "kind": "discrete", "dtype": "int32"}
            outputs.append({"key": key, "name": name, "exact": True,
                            "values": a.astype(np.int64).tolist() if a.size <= 4096 else None})
        else:
            sl = None if (max_elements is None or name in spec.golden_whole) \
                else bounded_slice(a.shape, max_elements)
            stored = a if sl is None else a[tuple(slice(*s) for s in sl)]
            key = f"taps/{i:03d}.{name}"
            tensors[key] = _contiguous(stored.astype(np.float32))
            entry |= {"key": key, "kind": "continuous", "dtype": "float",
                      "stored_shape": list(stored.shape), "slice": sl,
                      "summary": _summary(a),
                      "tolerance": _tolerances(spec, name, a, stored)}
            cols = outlier_channels(a, sl, max_elements)
            if cols is not None:
                ckey = f"{key}@channels"
                tensors[ckey] = _contiguous(np.take(a, cols, axis=-1).astype(np.float32))
                entry["channels"] = {"key": ckey, "indices": cols,
                                     "stored_shape": list(tensors[ckey].shape)}
        entries.append(entry)
    files = {}
    for dtype in dtypes:
        fname = f"{case.name}.{dtype}.safetensors"
        meta = {"schema_version": str(SCHEMA_VERSION), "model": spec.name, "case": case.name,
                "dtype": dtype}
        write_safetensors(tmp / fname, *_cast(tensors, dtype), meta=meta)
        files[dtype] = fname
    log(f"case {case.name}: {len(entries)} taps, files {', '.join(files.values())}")
    return {"name": case.name, "description": case.description, "params": dict(case.params),
            "inputs_meta": inp.meta, "inputs": inputs, "files": files, "taps": entries,
            "outputs": outputs}


def _cast(tensors: dict[str, np.ndarray], dtype: str):
    """The taps in `dtype` and the keys that hold bfloat16 bit patterns. Inputs stay float32:
    the harness feeds every compute dtype the float32 inputs (a port casts where its compute
    starts; Whisper's log-mel runs in float32 whatever the model's dtype), and audio rounded to
    float16 moves Whisper's mel by 0.04, past the float16 tolerance."""
    if dtype == "float32":
        return tensors, frozenset()
    out, bf16 = {}, set()
    for k, v in tensors.items():
        if v.dtype != np.float32 or k.startswith("inputs/"):  # inputs stay float32: see below
            out[k] = v
        elif dtype == "float16":
            out[k] = v.astype(np.float16)
        else:
            out[k] = to_bfloat16_bits(v)
            bf16.add(k)
    return out, frozenset(bf16)


# ------------------------------------------------------------------------------------------
# our port, as tools/check_export.py calls a port


def mlx_port(manifest: dict, dtype: str = "float32"):
    """Our MLX port of the exported model in `dtype`: a callable inputs -> taps (numpy), as
    `tools/check_export.py --port parity.export:mlx_port` wants. `.side` is the spec's MLX side."""
    import mlx_impl  # noqa: F401  (first: its BLAS preload works only before mlx loads)
    from parity import registry

    os.environ.setdefault("MLX_ENABLE_TF32", "0")  # fp32 parity needs full-precision matmuls
    spec = registry.get(manifest["model"]["id"])
    side = spec.build_mlx(dtype)

    def port(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return side(inputs)

    port.side = side
    return port
