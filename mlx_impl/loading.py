"""The one strict loader every `mlx_impl/<model>/load.py` builds on.

`load_strict(model, params, dtype)` sets every parameter of an MLX module from a converted
weight dict (MLX parameter paths -> numpy arrays, already in the MLX layout), strictly: missing
keys, unexpected keys and shape mismatches are reported together in one `LoadError`, before
anything is set. Arrays are moved into MLX one at a time (a memory-mapped source is paged in
tensor by tensor), floating arrays cast to `dtype`, integer arrays kept as they are.

`checkpoint_path(path_or_id, ...)` resolves the `path_or_id` argument of a model's `load`: a
path that exists, or a clear error. Nothing here downloads: an id that is not a local path is an
error naming what to pass instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from weights.keys import key_shape_problems

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


class LoadError(ValueError):
    """Weights that do not fit the model they are loaded into, or a checkpoint not found."""


def as_dtype(dtype: str | mx.Dtype) -> mx.Dtype:
    """"float32" | "float16" | "bfloat16" (or an mx.Dtype) -> the mx.Dtype."""
    if isinstance(dtype, mx.Dtype):
        if dtype not in DTYPES.values():
            raise LoadError(f"unsupported dtype {dtype}; use one of {sorted(DTYPES)}")
        return dtype
    if dtype not in DTYPES:
        raise LoadError(f"unsupported dtype {dtype!r}; use one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def check_params(model, params: Mapping[str, np.ndarray], what: str) -> None:
    """Raise one `LoadError` listing every missing key, unexpected key and shape mismatch of
    `params` against `model.parameters()`."""
    want = {k: v.shape for k, v in tree_flatten(model.parameters())}
    parts = key_shape_problems(want, {k: v.shape for k, v in params.items()})
    if parts:
        raise LoadError(f"{what} weights do not fit the model ({'; '.join(parts)}); the "
                        "checkpoint and the config disagree, or the converter is out of date")


def load_strict(model, params: Mapping[str, np.ndarray | mx.array],
                dtype: str | mx.Dtype = "float32", what: str | None = None,
                consume: bool = False):
    """Set every parameter of `model` from `params` (checked by `check_params` first), floating
    arrays cast to `dtype`; evaluate them; return `model`.

    Values may be numpy arrays or MLX arrays (already converted). Tensors move into MLX one at
    a time; with `consume=True` each entry is also removed from `params` (a dict) once it is in
    MLX, so the source copy and the MLX copy of a large model are never both whole in memory
    (whisper-base from float16 CTranslate2 weights: ~520 MB process peak instead of 636 MB).
    """
    dt = as_dtype(dtype)
    check_params(model, params, what or type(model).__name__)

    def to_mx(v) -> mx.array:
        if isinstance(v, mx.array):
            return v.astype(dt) if mx.issubdtype(v.dtype, mx.floating) else v
        a = np.asarray(v)
        if not np.issubdtype(a.dtype, np.floating):
            return mx.array(a)
        # numpy has no bfloat16: go through float32 and cast in MLX
        return mx.array(a.astype(np.float16 if dt == mx.float16 else np.float32)).astype(dt)

    loaded = []
    for k in list(params):
        a = to_mx(params.pop(k) if consume else params[k])
        mx.eval(a)  # one tensor at a time: the temporaries of the cast are freed as we go
        loaded.append((k, a))
    model.load_weights(loaded, strict=True)
    mx.eval(model.parameters())
    return model


def load_checkpoint(path_or_id: str | Path, dtype: str | mx.Dtype, *, what: str, writes: str,
                    read: Callable, config: Callable, build: Callable, convert: Callable,
                    convert_takes_config: bool = False):
    """The load of a model package whose checkpoint is one folder or file on disk:
    `read(path)` (its `weights.<model>.load`: `.config` dict and canonical `.state`) ->
    `config(w.config)` -> `build(cfg, mx_dtype)` -> `convert(w.state[, cfg])` -> `load_strict`.
    `what` names the model in errors, `writes` what produces such a checkpoint."""
    w = read(checkpoint_path(path_or_id, what, writes))
    cfg = config(w.config)
    params = convert(w.state, cfg) if convert_takes_config else convert(w.state)
    return load_strict(build(cfg, as_dtype(dtype)), params, dtype, what=what)


def make_loader(what: str, writes: str, read: Callable, config: Callable, build: Callable,
                convert: Callable, convert_takes_config: bool = False) -> Callable:
    """`load(path_or_id, dtype="float32")` for a model package: `load_checkpoint` with these
    parts (see there), documented with `what` and `writes`. `build(cfg, dtype)` is usually the
    model class itself."""

    def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32"):
        return load_checkpoint(path_or_id, dtype, what=what, writes=writes, read=read,
                               config=config, build=build, convert=convert,
                               convert_takes_config=convert_takes_config)

    load.__doc__ = (f"{what} from `path_or_id`: {writes}; `dtype` float32, float16 or "
                    "bfloat16. Raises LoadError naming every key or shape that does not fit.")
    # the parts, for tools that describe the load (the parity export's checkpoint key map)
    load.parts = {"read": read, "config": config, "convert": convert,
                  "convert_takes_config": convert_takes_config}
    return load


def checkpoint_path(path_or_id: str | Path, what: str, writes_it: str) -> Path:
    """`path_or_id` as an existing local path, else a `LoadError` saying what to pass.

    `writes_it` names what produces such a checkpoint (e.g. "transformers `DacModel.
    save_pretrained`"); no id is ever fetched from a hub."""
    p = Path(path_or_id).expanduser()
    if p.exists():
        return p
    raise LoadError(f"no {what} checkpoint at {str(path_or_id)!r}: pass the path of a local "
                    f"checkpoint ({writes_it}); nothing is downloaded")


def require_parts(folder: Path, model: str, parts: dict[str, str]) -> Path:
    """A model folder made of sub-folders (e.g. an LM and its codec): each name in `parts` must be
    a directory, else a LoadError that names the one missing and what every part holds."""
    folder = Path(folder)
    for sub in parts:
        if not (folder / sub).is_dir():
            need = " and ".join(f"{k}/ ({v})" for k, v in parts.items())
            raise LoadError(f"{folder} is not {model} model folder: it needs {need}; {sub}/ is "
                            "missing")
    return folder

