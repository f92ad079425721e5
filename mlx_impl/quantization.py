"""Weight quantization of our models through MLX's own `nn.quantize` (no quantization code here).

`quantize(model, bits, group_size, keep=...)` replaces, in place, every layer MLX can quantize
(those with a `to_quantized` method: `nn.Linear` and our `Linear` subclass, `nn.Embedding`) by
MLX's quantized layer, except the layers a model's policy keeps in its compute precision, and
returns a `QuantizationReport` naming every layer quantized and every layer kept, with why.

A model states its policy as `keep`: a mapping of module path (exact, or a prefix ending in
".") to the reason it stays in higher precision. Layers MLX cannot quantize (convolutions, layer
norms, positional tables, which are plain arrays) always stay, and the report says so.

Modes (MLX 0.32's `mx.quantize`, all of which run on the CPU): "affine" (the MLX community
checkpoints' mode: a float scale and bias per group; here 8 or 4 bits, group size 32, 64 or 128),
and the microscaling float formats with fixed settings, no bias: "mxfp8" (8 bits, group 32),
"mxfp4" (4 bits, group 32), "nvfp4" (4 bits, group 16). mlx-whisper's checkpoint config carries
only group size and bits, so checkpoints are written for "affine" only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

BITS = (4, 8)  # the widths measured in reports/quant/ (affine also supports 2, 3, 5, 6)
GROUP_SIZES = (32, 64, 128)
# mode -> its fixed (bits, group size), None where they are free (affine)
MODES = {"affine": None, "mxfp8": (8, 32), "mxfp4": (4, 32), "nvfp4": (4, 16)}


@dataclass
class QuantizationReport:
    bits: int
    group_size: int
    mode: str
    quantized: list[str] = field(default_factory=list)  # module paths, in model order
    kept: dict[str, str] = field(default_factory=dict)  # module path -> why it stays

    def summary(self) -> str:
        """Lines for a CLI: the settings, the quantized layers (grouped) and the kept ones."""
        lines = [f"quantized {len(self.quantized)} layers to {self.bits} bits "
                 f"(mode {self.mode}, group size {self.group_size}): "
                 + ", ".join(compress_paths(self.quantized))]
        by_reason: dict[str, list[str]] = {}
        for path, why in self.kept.items():
            by_reason.setdefault(why, []).append(path)
        for why, paths in by_reason.items():
            lines.append(f"kept in full precision ({why}): " + ", ".join(compress_paths(paths)))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"bits": self.bits, "group_size": self.group_size, "mode": self.mode,
                "quantized": list(self.quantized), "kept": dict(self.kept)}


def compress_paths(paths: list[str]) -> list[str]:
    """['encoder.blocks.0.attn.query', 'encoder.blocks.1.attn.query', ...] ->
    ['encoder.blocks.*.attn.query', ...]: block indices folded, order of first appearance."""
    out: dict[str, None] = {}
    for p in paths:
        parts = p.split(".")
        out[".".join("*" if s.isdigit() else s for s in parts)] = None
    return list(out)


def check_settings(bits: int, group_size: int, mode: str = "affine") -> None:
    if mode not in MODES:
        raise ValueError(f"quantization mode {mode!r} is not supported here; use one of "
                         f"{sorted(MODES)}")
    if MODES[mode] is not None:
        if (bits, group_size) != MODES[mode]:
            raise ValueError(f"mode {mode} has {MODES[mode][0]} bits and group size "
                             f"{MODES[mode][1]}; got {bits} bits, group size {group_size}")
        return
    if bits not in BITS:
        raise ValueError(f"--quantize {bits}: use one of {BITS} bits")
    if group_size not in GROUP_SIZES:
        raise ValueError(f"group size {group_size}: use one of {GROUP_SIZES}")


def _kept_by_policy(path: str, keep: Mapping[str, str]) -> str | None:
    for rule, why in keep.items():
        if path == rule or (rule.endswith(".") and path.startswith(rule)):
            return why
    return None


def why_kept(path: str, keep: Mapping[str, str], default: str) -> str:
    return _kept_by_policy(path, keep) or default


def quantize(model: nn.Module, bits: int, group_size: int = 64, *, mode: str = "affine",
             keep: Mapping[str, str] | None = None) -> QuantizationReport:
    """Quantize `model` in place with `nn.quantize` (see the module doc); return the report.

    A layer whose input width is not a multiple of `group_size` cannot be quantized by MLX; it
    is kept and reported as such (none in Whisper: every width is a multiple of 128).
    """
    check_settings(bits, group_size, mode)
    keep = dict(keep or {})
    report = QuantizationReport(bits, group_size, mode)
    chosen: set[str] = set()
    for path, module in tree_flatten(model.leaf_modules(), is_leaf=nn.Module.is_module):
        why = _kept_by_policy(path, keep)
        if not hasattr(module, "to_quantized"):
            if tree_flatten(module.parameters()):
                report.kept[path] = why or f"{type(module).__name__}: MLX has no quantized form"
            continue
        if why is not None:
            report.kept[path] = why
            continue
        width = module["weight"].shape[-1]
        if width % group_size:
            report.kept[path] = (f"input width {width} is not a multiple of the group size "
                                 f"{group_size}")
            continue
        chosen.add(path)
        report.quantized.append(path)
    # arrays held by a module that is not a leaf (positional tables): not layers, never quantized
    for path, module in model.named_modules():
        for name, value in module.items():
            if isinstance(value, mx.array) and module.children() and path:
                report.kept[f"{path}.{name}"] = why_kept(f"{path}.{name}", keep,
                                                        "a plain array, not a layer")
    nn.quantize(model, group_size=group_size, bits=bits, mode=mode,
                class_predicate=lambda p, m: p in chosen)
    mx.eval(model.parameters())
    return report
