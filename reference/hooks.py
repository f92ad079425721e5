"""Recording reference taps with torch forward hooks: one helper for every adapter.

`hook_taps(model, {submodule path: tap name}, taps)` registers one forward hook per entry,
each storing its module's output (converted to numpy in the MLX layout) under the tap name, and
removes them all on exit, also when the forward pass raises. A path that names no submodule is
an error at once, not a tap that silently never fires.

Converters for the output: `numpy_of` (as it is), `channels_last` ((B, C, T) -> (B, T, C), the
layout of MLX convolutions), `first` (the first element of a tuple output, e.g. attention
modules that return (out, weights)). A table value may be a name or (name, converter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch

Convert = Callable[[object], np.ndarray]


def numpy_of(t) -> np.ndarray:
    """A tensor (or the first tensor of a tuple output) as a float32 numpy copy."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    return t.detach().float().numpy().copy()


def channels_last(t) -> np.ndarray:
    """(B, C, T) torch conv output -> (B, T, C) float32 numpy (MLX convs are channels-last)."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    return t.detach().float().transpose(1, 2).numpy().copy()


@contextmanager
def hook_taps(model: torch.nn.Module, table: Mapping[str, str | tuple[str, Convert]],
              taps: dict, convert: Convert = numpy_of,
              inputs: Mapping[str, str | tuple[str, Convert]] | None = None,
              first: bool = False) -> Iterator[dict]:
    """Within the block, each forward of `model.get_submodule(path)` stores
    `convert(output)` as `taps[name]` (table: path -> name or (name, converter)); `inputs`, a
    table of the same form, stores a module's first input instead (a value that no module
    returns, e.g. the sum its parent computes before calling it). `first=True` keeps a tap's
    first value where a module runs more than once (the first chunk of a chunked codec).
    Yields `taps`; the hooks are removed on exit."""
    handles = []

    def put(name: str, conv: Convert):
        def hook(_module, _inputs, output):
            if not (first and name in taps):
                taps[name] = conv(output)
        return hook

    def put_input(name: str, conv: Convert):
        def hook(_module, args):
            if not (first and name in taps):
                taps[name] = conv(args[0])
        return hook

    def module_of(path: str, name: str) -> torch.nn.Module:
        try:
            return model.get_submodule(path)
        except AttributeError as e:
            raise KeyError(f"tap {name!r}: {type(model).__name__} has no submodule "
                           f"{path!r}; fix the hook table") from e

    try:
        for path, entry in table.items():
            name, conv = (entry, convert) if isinstance(entry, str) else entry
            handles.append(module_of(path, name).register_forward_hook(put(name, conv)))
        for path, entry in (inputs or {}).items():
            name, conv = (entry, convert) if isinstance(entry, str) else entry
            handles.append(module_of(path, name).register_forward_pre_hook(put_input(name, conv)))
        yield taps
    finally:
        for h in handles:
            h.remove()
