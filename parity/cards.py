"""`python -m parity cards [--out docs/models] [--keymaps]`: one porting card per model family.

A family is a module of `parity/models/` that defines registered specs (`families()`; a new
family gets its card by rerunning this). A card `docs/models/<family>.md` puts together:

- generated from the specs and the committed goldens: the specs of the family (weights, golden
  cases, report and golden links), the tap list in execution order with layer indices folded
  (`encoder.blocks.{i}.attn`) and each tap's shape from the golden manifest, the discrete taps,
  and the tolerance tables per dtype with the reason of every override;
- generated from `docs/models/keymaps/<family>.json`: the checkpoint key map (our MLX parameter
  path <- the canonical upstream key, and the layout change), measured by `--keymaps`, which
  builds the family's test-tiny MLX side (torch writes the seeded checkpoint) and records what
  `mlx_impl/<package>/convert.py` did to every key (`probe_keymap`); the map is committed data
  so rendering needs neither torch nor mlx;
- hand-written, from `docs/models/notes/<family>.md`: its `## Architecture` and `## Numerics that
  bit us` sections, merged in verbatim.

Rendering is deterministic (no dates, no timings): `tests/test_cards.py` renders into a
temporary folder and compares with the committed cards.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.spec import DTYPES, ModelSpec

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "models"
NOTES = "notes"  # hand-written sections, under the cards folder
KEYMAPS = "keymaps"  # measured key maps (JSON), under the cards folder
NOTE_SECTIONS = ("Architecture", "Numerics that bit us")
KEYMAP_VERSION = 2
_INDEX = re.compile(r"(?<=[._])\d+(?=[._]|$)")  # a layer index inside a dotted path
_PLACEHOLDERS = "ijklmn"


class CardError(Exception):
    """A card that cannot be rendered: the message names the file and the fix."""


# ------------------------------------------------------------------------------------------
# families


def families() -> dict[str, list[ModelSpec]]:
    """family name (the `parity.models` module defining the specs) -> its registered specs, in
    registry order; families in order of their first spec."""
    from parity import registry

    owner: dict[int, str] = {}
    for mod_name in sorted(m for m in sys.modules if m.startswith("parity.models.")):
        for value in vars(sys.modules[mod_name]).values():
            if isinstance(value, ModelSpec):
                owner.setdefault(id(value), mod_name.rsplit(".", 1)[1])
    out: dict[str, list[ModelSpec]] = {}
    for spec in registry.SPECS:
        if id(spec) not in owner:
            raise CardError(f"spec {spec.name!r} is registered but defined in no module of "
                            "parity/models/; define it in parity/models/<family>.py")
        out.setdefault(owner[id(spec)], []).append(spec)
    return out


def package_of(family: str) -> str | None:
    """The `mlx_impl` package of a family (same name), or None."""
    return family if (ROOT / "mlx_impl" / family / "__init__.py").is_file() else None


# ------------------------------------------------------------------------------------------
# taps


def fold(name: str) -> str:
    """`encoder.blocks.3.attn` -> `encoder.blocks.{i}.attn` (successive indices: i, j, k...)."""
    n = itertools.count()
    return _INDEX.sub(lambda m: "{" + _PLACEHOLDERS[min(next(n), 5)] + "}", name)


def golden_manifest(spec: ModelSpec) -> dict | None:
    path = ROOT / "golden" / spec.name / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CardError(f"{path}: not JSON ({e}); regenerate it with make golden "
                        f"MODEL={spec.name}") from e


def tap_shapes(manifest: Mapping | None) -> dict[str, tuple]:
    """tap name -> shape in the manifest's first case."""
    if not manifest or not manifest.get("cases"):
        return {}
    return {t["name"]: tuple(t["shape"]) for t in manifest["cases"][0]["taps"]}


@dataclass(frozen=True)
class TapGroup:
    pattern: str  # folded name
    names: tuple[str, ...]  # the taps it stands for, in execution order


def group_taps(taps: Sequence[str]) -> list[TapGroup]:
    """Fold the tap list; a folded name keeps the position of its first tap."""
    groups: dict[str, list[str]] = {}
    for t in taps:
        groups.setdefault(fold(t), []).append(t)
    return [TapGroup(p, tuple(n)) for p, n in groups.items()]


def _shape(s) -> str:
    if s is None:
        return "-"
    return "(" + ", ".join(str(x) for x in s) + ("," if len(s) == 1 else "") + ")"


def _shape_span(group: TapGroup, shapes: Mapping[str, tuple]) -> str:
    got = [shapes.get(n) for n in group.names]
    if all(s is None for s in got):
        return "-"
    first, last = got[0], got[-1]
    if len({s for s in got}) == 1:
        return _shape(first)
    return f"{_shape(first)} ... {_shape(last)}"


def _representative(specs: Sequence[ModelSpec]) -> ModelSpec:
    """The spec whose golden shapes a tap table shows: the first real-size one with a golden,
    else the first with a golden, else the first."""
    with_golden = [s for s in specs if golden_manifest(s) is not None]
    real = [s for s in with_golden if "test-tiny" not in s.name]
    return (real or with_golden or list(specs))[0]


# ------------------------------------------------------------------------------------------
# key maps (measured)


def _perm_of(src: np.ndarray, dst: np.ndarray) -> str | None:
    """How `dst` is `src` re-laid: "unchanged", "transpose(a, b, c)", "reshape (..)->(..)", or
    None when it is not."""
    if src.shape == dst.shape and np.array_equal(src, dst):
        return "unchanged"
    if src.ndim == dst.ndim and src.size == dst.size:
        for perm in itertools.permutations(range(src.ndim)):
            if perm == tuple(range(src.ndim)):
                continue
            t = src.transpose(perm)
            if t.shape == dst.shape and np.array_equal(t, dst):
                return f"transpose{perm}"
    if src.size == dst.size and np.array_equal(src.reshape(-1), dst.reshape(-1)):
        return f"reshape {_shape(src.shape)} -> {_shape(dst.shape)}"
    if src.ndim == dst.ndim and src.shape[1:] == dst.shape[1:] and src.shape[0] > dst.shape[0]:
        n = dst.shape[0]
        for start in range(0, src.shape[0] - n + 1):
            if np.array_equal(src[start:start + n], dst):
                return f"rows {start}:{start + n} of {_shape(src.shape)}"
    return None


def _as_numpy(v) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    try:
        return np.asarray(v)
    except (TypeError, ValueError):  # an MLX array: through float32
        import mlx.core as mx

        return np.asarray(v.astype(mx.float32))


def _common_tail(a: str, b: str) -> int:
    """How many trailing dotted components `a` and `b` share."""
    n = 0
    for x, y in zip(reversed(a.split(".")), reversed(b.split("."))):
        if x != y:
            break
        n += 1
    return n


def match_keys(src: Mapping[str, np.ndarray], dst: Mapping[str, np.ndarray]
               ) -> tuple[list[dict], list[str]]:
    """For every `dst` key, the `src` key it came from and how (same name first, then any key
    whose values match); -> (rows, src keys no output came from)."""
    src = {k: _as_numpy(v) for k, v in src.items()}
    used: set[str] = set()
    rows = []
    by_size: dict[int, list[str]] = {}
    for k, v in src.items():
        by_size.setdefault(v.size, []).append(k)
    for key, value in dst.items():
        value = _as_numpy(value)
        how, origin = None, None
        if key in src:
            how, origin = _perm_of(src[key], value), key
        if how is None:
            candidates = [k for k in src if k != key and (src[k].size == value.size or (
                src[k].ndim == value.ndim and src[k].shape[1:] == value.shape[1:]))]
            # equal values are not unique (norm weights start at ones): the key sharing the
            # longest dotted tail with ours first
            bare = re.sub(r"^\[\d+\] ", "", key)
            candidates.sort(key=lambda k: (-_common_tail(k, bare), k in used))
            for k in candidates:
                how = _perm_of(src[k], value)
                if how is not None:
                    origin = k
                    break
        if how is None:
            how, origin = _weight_norm_origin(src, key, value)
            if origin is not None:  # the magnitude of the pair fed it too
                used.update(k for k in src if k.startswith(origin.rsplit("weight", 1)[0])
                            and k.rsplit(".", 1)[-1] in ("weight_g", "original0"))
        if how is None:
            raise CardError(f"key map: cannot tell which checkpoint key {key!r} "
                            f"{_shape(value.shape)} came from (no key with matching values); "
                            "the probe needs seeded random weights (distinct values)")
        used.add(origin)
        rows.append({"ours": key, "upstream": origin, "change": how,
                     "shape": list(value.shape)})
    return rows, sorted(set(src) - used)


# the (magnitude, direction) names a weight-normed `<module>.weight` is stored under
_WEIGHT_NORM_PAIRS = (("weight_g", "weight_v"),
                      ("parametrizations.weight.original0", "parametrizations.weight.original1"))


def _weight_norm_origin(src: Mapping[str, np.ndarray], key: str, value: np.ndarray
                        ) -> tuple[str | None, str | None]:
    """(how, origin) when `key` (`<module>.weight`) is the weight norm g * v / ||v|| (norm over
    every axis but the first) of its module's stored pair, re-laid as `_perm_of` tells; the
    fold is recomputed here in float64, so values are compared to float32 rounding."""
    bare = re.sub(r"^\[\d+\] ", "", key)
    if not bare.endswith(".weight"):
        return None, None
    base = bare[: -len("weight")]
    for g_name, v_name in _WEIGHT_NORM_PAIRS:
        g, v = src.get(base + g_name), src.get(base + v_name)
        if g is None or v is None:
            continue
        v64 = v.astype(np.float64)
        norm = np.sqrt((v64 ** 2).sum(axis=tuple(range(1, v.ndim)), keepdims=True))
        folded = (g.astype(np.float64).reshape(norm.shape) * v64 / norm).astype(np.float32)
        for perm in [None, *itertools.permutations(range(folded.ndim))]:
            t = folded if perm is None else folded.transpose(perm)
            # an identity test of where a weight came from, not a tap tolerance: the fold
            # recomputed in float64 equals the converter's float32 one to a few ulps
            if t.shape == value.shape and np.max(np.abs(t - value), initial=0.0) <= \
                    1e-6 * max(float(np.max(np.abs(value), initial=0.0)), 1e-30):
                layout = "" if perm is None else f", then transpose{perm}"
                return f"weight norm folded (g * v / ||v||{layout})", base + v_name
    return None, None


_PROBED = ("convert", "split", "convert_mimi")  # converter names a load.py calls


def probe_keymap(spec: ModelSpec) -> dict:
    """Build `spec`'s MLX side (float32) with every converter its package's `load.py` calls
    wrapped to record its input and output; -> the JSON key map of each converter call.
    Needs torch (the seeded reference checkpoint) and mlx."""
    import mlx_impl

    calls: list[tuple[str, dict, dict]] = []
    originals: dict[int, object] = {}
    for conv_py in sorted(Path(mlx_impl.__file__).parent.glob("*/convert.py")):
        mod = importlib.import_module(f"mlx_impl.{conv_py.parent.name}.convert")
        importlib.import_module(f"mlx_impl.{conv_py.parent.name}.load")
        for attr in _PROBED:
            fn = getattr(mod, attr, None)
            if callable(fn) and getattr(fn, "__module__", None) == mod.__name__:
                originals[id(fn)] = fn

    def recording(fn):
        def wrapper(*args, **kwargs):
            state = dict(args[0])
            out = fn(*args, **kwargs)
            outs = out if isinstance(out, tuple) else (out,)
            params = {}
            for i, o in enumerate(outs):
                if isinstance(o, Mapping):
                    params.update({(f"[{i}] " if i else "") + k: v for k, v in o.items()})
            calls.append((f"{fn.__module__}.{fn.__name__}", state, params))
            return out
        return wrapper

    # every public module attribute bound to a converter: its own module and the load.py,
    # parity and reference modules that imported it by name (`_`-prefixed aliases are calls
    # from one converter into another, recorded as the outer one)
    patched: list[tuple[object, str, object]] = []
    wrappers = {i: recording(fn) for i, fn in originals.items()}
    for mod in list(sys.modules.values()):
        if not getattr(mod, "__name__", "").startswith(("mlx_impl.", "parity.")):
            continue
        for attr, value in list(vars(mod).items()):
            if not attr.startswith("_") and id(value) in wrappers and value is originals[id(value)]:
                patched.append((mod, attr, value))
                setattr(mod, attr, wrappers[id(value)])
    # loaders made by `mlx_impl.loading.make_loader` hold their converter in a closure: wrap it
    # where that loader hands it to `load_checkpoint`
    import mlx_impl.loading as loading

    def load_checkpoint(*args, __orig=loading.load_checkpoint, **kwargs):
        fn = kwargs.get("convert")
        if fn is not None:
            kwargs["convert"] = wrappers.get(id(fn)) or recording(fn)
        return __orig(*args, **kwargs)

    patched.append((loading, "load_checkpoint", loading.load_checkpoint))
    loading.load_checkpoint = load_checkpoint
    try:
        spec.build_mlx("float32")
    finally:
        for mod, attr, fn in patched:
            setattr(mod, attr, fn)
    if not calls:
        raise CardError(f"key map of {spec.name}: building its MLX side called no converter "
                        "(mlx_impl/<package>/convert.py: convert or split); does its MLX side load "
                        "through its package's converter?")
    merged: dict[str, tuple[dict, dict]] = {}
    for name, state, params in calls:  # Parakeet converts key by key: one map per converter
        s, p = merged.setdefault(name, ({}, {}))
        s.update(state)
        p.update(params)
    out = []
    for name, (state, params) in merged.items():
        rows, dropped = match_keys(state, params)
        out.append({"converter": name, "rows": rows, "dropped": dropped,
                    "n_upstream": len(state), "n_ours": len(params)})
    return {"spec": spec.name, "converters": out}


def keymap_specs(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The specs whose seeded checkpoints a family's key map is measured on: every test-tiny
    one (variants differ in keys: Parakeet's CTC head vs transducer, S3 v1's VQ vs v2's FSQ),
    else the first spec."""
    tiny = [s for s in specs if "test-tiny" in s.name]
    return tiny or list(specs)[:1]


def measure_keymap(specs: Sequence[ModelSpec], log=print) -> dict:
    """The JSON key map of a family: one `probe_keymap` per `keymap_specs` spec."""
    probes = []
    for spec in keymap_specs(specs):
        log(f"measuring the key map on {spec.name}")
        probes.append(probe_keymap(spec))
    return {"version": KEYMAP_VERSION, "generator": "python -m parity cards --keymaps",
            "probes": probes}


def fold_keymap(conv: Mapping) -> list[tuple[str, str, str, int]]:
    """Rows folded over layer indices: (ours, upstream, change, count)."""
    groups: dict[tuple[str, str, str], int] = {}
    for r in conv["rows"]:
        change = r["change"]
        if change.startswith(("reshape", "rows")):  # shapes differ per layer: keep the kind
            change = re.sub(r"\(.*", "", change).strip() if change.startswith("reshape") \
                else "rows " + r["change"].split()[1] + " (split)"
        key = (fold(r["ours"]), fold(r["upstream"]), change)
        groups[key] = groups.get(key, 0) + 1
    return [(o, u, c, n) for (o, u, c), n in groups.items()]


# ------------------------------------------------------------------------------------------
# notes (hand-written)


def read_notes(path: Path) -> dict[str, str] | None:
    """The `## Architecture` and `## Numerics that bit us` sections of a notes file (None if
    there is no file); an unknown or missing section is an error."""
    if not path.is_file():
        return None
    text = path.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    sections = {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts), 2)}
    missing = [s for s in NOTE_SECTIONS if s not in sections]
    extra = [s for s in sections if s not in NOTE_SECTIONS]
    if missing or extra:
        raise CardError(f"{path}: expected exactly the sections {list(NOTE_SECTIONS)} "
                        f"(missing {missing}, unknown {extra}); fix the headings")
    return sections


# ------------------------------------------------------------------------------------------
# rendering


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _num(x: float) -> str:
    return f"{x:g}"


def _rel(path: Path, out: Path) -> str:
    """`path` relative to the committed cards folder (links read the same whatever `--out`)."""
    return os.path.relpath(path, OUT).replace(os.sep, "/")


def _links(spec: ModelSpec, out: Path) -> str:
    links = []
    for path in sorted((ROOT / "reports" / "parity").glob(f"{spec.name}*.md"),
                       key=lambda p: (len(p.stem), p.stem)):
        stem = path.stem
        suffix = stem[len(spec.name):]
        if suffix and suffix.lstrip("-") not in DTYPES and not suffix.startswith("-reference"):
            continue  # another spec sharing the prefix (whisper-base vs whisper-base.en)
        label = "report" + (f" {suffix.lstrip('-')}" if suffix else "")
        links.append(f"[{label}]({_rel(path, out)})")
    man = ROOT / "golden" / spec.name / "manifest.json"
    if man.is_file():
        links.append(f"[golden]({_rel(man, out)})")
    return ", ".join(links) or "none committed"


def _render_specs(specs: Sequence[ModelSpec], out: Path) -> list[str]:
    lines = ["| spec | what | weights | golden cases | report, goldens |", "|---|---|---|---|---|"]
    for s in specs:
        cases = ", ".join(c.name for c in s.golden_cases) or "-"
        lines.append(f"| `{s.name}` | {_cell(s.description)} | {_cell(s.weights)} | {cases} | "
                     f"{_links(s, out)} |")
    return lines


def _render_taps(specs: Sequence[ModelSpec]) -> list[str]:
    lines: list[str] = []
    variants: dict[tuple[str, ...], list[ModelSpec]] = {}
    for s in specs:
        variants.setdefault(tuple(g.pattern for g in group_taps(s.taps)), []).append(s)
    for patterns, group_specs in variants.items():
        rep = _representative(group_specs)
        manifest = golden_manifest(rep)
        shapes = tap_shapes(manifest)
        if shapes and list(shapes) != list(rep.taps):
            lines += ["", f"**The golden of `{rep.name}` lists other taps than its spec** "
                      f"(stale: `make golden MODEL={rep.name}`); shapes below are the golden's."]
        groups = group_taps(rep.taps)
        discrete = set(rep.discrete)
        names = ", ".join(f"`{s.name}`" for s in group_specs)
        lines += ["", f"Taps of {names} ({len(rep.taps)} in "
                  f"`{rep.name}`); shapes from "
                  + (f"`golden/{rep.name}/manifest.json`, case `{manifest['cases'][0]['name']}`"
                     if shapes else "no golden (none committed)") + ":", "",
                  "| # | tap | count | shape | compared |", "|---|---|---|---|---|"]
        for i, g in enumerate(groups):
            how = "exactly" if any(n in discrete for n in g.names) else "tolerance"
            lines.append(f"| {i} | `{g.pattern}` | {len(g.names)} | {_shape_span(g, shapes)} "
                         f"| {how} |")
    return lines


def _table_key(t) -> str:
    return json.dumps(t.to_dict(), sort_keys=True)


def _render_tolerances(specs: Sequence[ModelSpec]) -> list[str]:
    lines = ["Per element: `|ours - reference| <= max(atol, k_rms * rms(reference tap)) + rtol * "
             "|reference|` (`parity.spec.Tolerance`). The float32 defaults and how they were "
             "measured: `parity/spec.py` (`FP32_*`); the float16/bfloat16 tables: "
             "[docs/PRECISION.md](../PRECISION.md). An override is the first matching pattern; "
             "its reason is the spec's own words."]
    for dtype in DTYPES:
        tables: dict[str, list[ModelSpec]] = {}
        for s in specs:
            tables.setdefault(_table_key(s.tolerance(dtype)), []).append(s)
        lines += ["", f"### {dtype}"]
        for group in tables.values():
            t = group[0].tolerance(dtype)
            names = ", ".join(f"`{s.name}`" for s in group)
            lines += ["", f"{names}: default atol {_num(t.atol)}, rtol {_num(t.rtol)}, k_rms "
                      f"{_num(t.k_rms)}" + ("; no override." if not t.overrides else ".")]
            if t.overrides:
                lines += ["", "| taps | atol | rtol | k_rms | why |", "|---|---|---|---|---|"]
                for o in t.overrides:
                    lines.append(f"| `{o.pattern}` | {_num(o.atol)} | {_num(o.rtol)} | "
                                 f"{_num(o.k_rms)} | {_cell(o.reason)} |")
    return lines


def _render_keymap(family: str, keymap: Mapping | None, out: Path) -> list[str]:
    path = OUT / KEYMAPS / f"{family}.json"
    if keymap is None:
        return ["", f"No measured key map yet: run `python -m parity cards --keymaps --only "
                f"{family}` (needs torch) to write `{_rel(path, out)}`."]
    probed = ", ".join(f"`{p['spec']}`" for p in keymap["probes"])
    lines = ["", f"Measured on the seeded checkpoints of {probed} "
             f"([{KEYMAPS}/{family}.json]({KEYMAPS}/{family}.json), `{keymap['generator']}`): "
             "every key the converter returned, the canonical key its values came from "
             "(values matched, not names) and the layout change. Canonical keys are the "
             "upstream checkpoint's after the numpy reader in `weights/` (on-disk renames, "
             "weight norm folded); `{i}`, `{j}` stand for layer indices; `[n] key` is a key of "
             "the n-th dict a converter returns (counting from 0). `transpose(p)` is numpy's "
             "`upstream.transpose(p)`: torch Conv1d (out, in, k) -> MLX (out, k, in) is (0, 2, 1), "
             "ConvTranspose1d (in, out, k) -> (out, k, in) is (1, 2, 0), Conv2d (out, in, kh, kw) "
             "-> (out, kh, kw, in) is (0, 2, 3, 1); `reshape` squeezes a unit axis (Snake alphas "
             "(1, C, 1) -> (C,), kernel-1 convs -> linears); `rows a:b` takes those rows of a "
             "fused upstream weight. A later variant lists only what the ones above lack."]
    seen: set[tuple] = set()  # (converter, folded row) already shown
    for i, probe in enumerate(keymap["probes"]):
        if i:
            lines += ["", f"#### `{probe['spec']}`"]
        shown = False
        for conv in probe["converters"]:
            name = conv["converter"]
            rows = [r for r in fold_keymap(conv) if (name, r[:3]) not in seen]
            dropped = sorted({fold(k) for k in conv["dropped"]} - {k for c, k in seen if c == (
                name, "dropped")})
            if i and not rows and not dropped:
                continue
            shown = True
            seen.update((name, r[:3]) for r in rows)
            seen.update(((name, "dropped"), k) for k in dropped)
            lines += _render_converter(conv, rows, dropped, out)
        if not shown:
            lines += ["", "No key beyond those above."]
    return lines


def _render_converter(conv: Mapping, rows: list[tuple[str, str, str, int]],
                      dropped: list[str], out: Path) -> list[str]:
    mod = conv["converter"].rsplit(".", 1)[0]
    src = mod.replace(".", "/") + ".py"
    lines = ["", f"`{conv['converter']}` ([{src}]({_rel(ROOT / src, out)})): "
             f"{conv['n_upstream']} checkpoint keys -> {conv['n_ours']} parameters.", "",
             "| our parameter | <- upstream key | change | count |", "|---|---|---|---|"]
    same = []
    for ours, up, change, n in rows:
        if up == ours and change == "unchanged":
            same.append(ours)
            continue
        shown_up = "(same name)" if up == ours else f"`{up}`"
        lines.append(f"| `{ours}` | {shown_up} | {change} | {n} |")
    if lines[-1] == "|---|---|---|---|":
        lines[-2:] = ["No key is renamed or re-laid."]
    if same:
        lines += ["", "Passed through (same name, same values, same layout): "
                  + ", ".join(f"`{k}`" for k in same) + "."]
    if dropped:
        lines += ["", "Checkpoint keys no parameter comes from (checked, recomputed or "
                  "tied; the converter's docstring says which): "
                  + ", ".join(f"`{k}`" for k in dropped) + "."]
    return lines


def render(family: str, specs: Sequence[ModelSpec], notes: Mapping[str, str] | None,
           keymap: Mapping | None, out: Path) -> str:
    notes_path = OUT / NOTES / f"{family}.md"  # shown relative to the committed folder
    pkg = package_of(family)
    lines = [f"# {family}: porting card", "",
             "<!-- generated by `python -m parity cards`; edit "
             f"{_rel(notes_path, out)} (hand-written sections) or the specs, then rerun -->", ""]
    src = [f"[parity/models/{family}.py]({_rel(ROOT / 'parity' / 'models' / (family + '.py'), out)})"]
    if pkg:
        src.append(f"[mlx_impl/{pkg}/]({_rel(ROOT / 'mlx_impl' / pkg, out)})")
    if (ROOT / "reference" / f"{family}.py").is_file():
        src.append(f"[reference/{family}.py]({_rel(ROOT / 'reference' / (family + '.py'), out)})")
    if (ROOT / "weights" / f"{family}.py").is_file():
        src.append(f"[weights/{family}.py]({_rel(ROOT / 'weights' / (family + '.py'), out)})")
    lines += ["Code: " + ", ".join(src) + ".", "", "## Specs", ""]
    lines += _render_specs(specs, out)
    lines += ["", "## Architecture at a glance", ""]
    if notes is None:
        lines.append(f"No hand-written notes yet: write `{_rel(notes_path, out)}` with the "
                     f"sections {', '.join(repr(s) for s in NOTE_SECTIONS)}.")
    else:
        lines.append(notes["Architecture"])
    lines += ["", "Where each tap sits: the module of that name upstream returns it (names are "
              "upstream module paths where there is one; `docs/ARCHITECTURE.md`, Taps). Taps are "
              "channels-last, in the reference's execution order; `{i}` folds layer indices."]
    lines += _render_taps(specs)
    lines += ["", "## Checkpoint key map"]
    lines += _render_keymap(family, keymap, out)
    lines += ["", "## Numerics that bit us", ""]
    lines.append(notes["Numerics that bit us"] if notes is not None else
                 f"No hand-written notes yet: write `{_rel(notes_path, out)}`.")
    lines += ["", "## Tolerances", ""]
    lines += _render_tolerances(specs)
    return "\n".join(lines).rstrip() + "\n"


def render_index(fams: Mapping[str, Sequence[ModelSpec]]) -> str:
    lines = ["# Porting cards", "",
             "<!-- generated by `python -m parity cards`; do not edit -->", "",
             "One card per model family: what a porter of that model needs from this project "
             "(architecture and taps, the checkpoint key map, the numerics that bit us, the "
             "tolerance tables with their reasons, links to the parity reports and goldens). "
             "Regenerate all of them with `python -m parity cards` (`--keymaps` also re-measures "
             "the key maps; needs torch). The prose sections live in `notes/<family>.md`; a new "
             "family (a new `parity/models/<family>.py` in the registry) gets its card by "
             "rerunning the generator.", "",
             "| family | specs |", "|---|---|"]
    for fam, specs in fams.items():
        lines.append(f"| [{fam}]({fam}.md) | " + ", ".join(f"`{s.name}`" for s in specs) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# writing


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def dump_keymap(km: Mapping) -> str:
    """The key map as JSON with one row per line (diffs stay readable, the file small)."""
    convs = [c for p in km["probes"] for c in p["converters"]]
    marked = iter(range(len(convs)))
    probes = [{**p, "converters": [{**c, "rows": f"@ROWS{next(marked)}@"}
                                   for c in p["converters"]]} for p in km["probes"]]
    text = json.dumps({**km, "probes": probes}, indent=1)
    for i, c in enumerate(convs):
        rows = ",\n".join("      " + json.dumps(r) for r in c["rows"])
        text = text.replace(f'"@ROWS{i}@"', "[\n" + rows + "\n     ]")
    return text + "\n"


def read_keymap(path: Path) -> dict | None:
    if not path.is_file():
        return None
    km = json.loads(path.read_text())
    if km.get("version") != KEYMAP_VERSION:
        raise CardError(f"{path}: key map version {km.get('version')} (this generator writes "
                        f"{KEYMAP_VERSION}); rerun python -m parity cards --keymaps")
    return km


def write_cards(out: Path = OUT, sources: Path = OUT, only: Sequence[str] = (),
                keymaps: bool = False, log=print) -> list[Path]:
    """Render every family's card (or `only` those) into `out`, reading the notes and key maps
    from `sources` (the committed folder); with `keymaps`, measure the key maps first and write
    them into `sources`."""
    fams = families()
    unknown = sorted(set(only) - set(fams))
    if unknown:
        raise CardError(f"unknown families {unknown}; the registry has {', '.join(fams)}")
    written = []
    for fam, specs in fams.items():
        if only and fam not in only:
            continue
        km_path = sources / KEYMAPS / f"{fam}.json"
        if keymaps:
            km = measure_keymap(specs, log=lambda m, fam=fam: log(f"{fam}: {m}"))
            _write_atomic(km_path, dump_keymap(km))
            written.append(km_path)
        notes = read_notes(sources / NOTES / f"{fam}.md")
        if notes is None:
            log(f"{fam}: no notes at {sources / NOTES / (fam + '.md')}; its card says so")
        path = out / f"{fam}.md"
        _write_atomic(path, render(fam, specs, notes, read_keymap(km_path), out))
        written.append(path)
    if not only:
        _write_atomic(out / "README.md", render_index(fams))
        written.append(out / "README.md")
    return written


def stale_cards(rendered: Path, committed: Path = OUT) -> list[str]:
    """Files of a fresh rendering (`write_cards(out=rendered)`) that differ from or are missing
    in `committed`, and committed cards no family renders any more."""
    problems = []
    for path in sorted(rendered.glob("*.md")):
        there = committed / path.name
        if not there.is_file():
            problems.append(f"{path.name}: not committed")
        elif there.read_text() != path.read_text():
            problems.append(f"{path.name}: differs from the generator's output")
    for path in sorted(committed.glob("*.md")):
        if not (rendered / path.name).is_file():
            problems.append(f"{path.name}: no registered family renders it")
    return problems


def add_parser(sub) -> None:
    c = sub.add_parser("cards", help="write the porting cards docs/models/<family>.md")
    c.add_argument("--out", type=Path, default=OUT, help="where to write the cards "
                   "(default docs/models/; notes and key maps are read from docs/models/)")
    c.add_argument("--only", nargs="*", default=(), help="these families only")
    c.add_argument("--keymaps", action="store_true", help="re-measure the key maps first "
                   "(builds each family's test-tiny MLX side; needs torch)")


def main(args: argparse.Namespace) -> int:
    try:
        paths = write_cards(Path(args.out), OUT, args.only, args.keymaps)
    except CardError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(paths)} files under {args.out}")
    return 0
