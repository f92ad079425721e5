"""Shared pieces of the transformers-checkpoint readers (`weights/wav2vec2.py`,
`weights/parakeet.py`) and of the rename/transpose loops of their MLX converters.

- `read_folder`: a `save_pretrained` folder -> (config.json, raw state, vocab.json or None), with
  errors that name the missing file and the fix;
- `read_pretrained`: the codec readers' (`weights/dac.py`, `mimi.py`, `encodec.py`) version: a
  `save_pretrained` directory -> (config.json, raw state), its `model_type` checked;
- `fold_weight_norm`: w = g * v / ||v|| over every axis but `dim` (torch `weight_norm(dim=)`);
- `check_shapes`: strict key-set and shape equality against a model's expected shapes;
- `apply_rules`: a converter as a table of (key regex, what to do with the array).

numpy and the standard library only (both the reference and the MLX side import weights/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from weights import torch_zip
from weights.torch_zip import read_torch_zip


def preview(items: Sequence[str], n: int = 8) -> str:
    """The first `n` items and how many more: short error messages for long key lists."""
    items = list(items)
    return "none" if not items else (str(items[:n]) + (f" (+{len(items) - n} more)"
                                                       if len(items) > n else ""))


_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """A .safetensors file -> numpy arrays, each read straight into its own buffer with
    `readinto` (no memory map: mapped file pages count toward the process's resident set, so
    `safetensors.numpy.load_file` peaks at twice the file size; this peaks at its size).
    BF16 is widened to float32 (numpy has no bfloat16)."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        base = 8 + n
        for name, e in header.items():
            if name == "__metadata__":
                continue
            start, end = e["data_offsets"]
            if e["dtype"] == "BF16":
                raw = np.empty((end - start) // 2, dtype=np.uint16)
            elif e["dtype"] in _DTYPES:
                raw = np.empty((end - start) // np.dtype(_DTYPES[e["dtype"]]).itemsize,
                               dtype=_DTYPES[e["dtype"]])
            else:
                raise ValueError(f"{path}: tensor {name!r} has dtype {e['dtype']}, which this "
                                 "reader does not handle")
            f.seek(base + start)
            if f.readinto(memoryview(raw).cast("B")) != end - start:
                raise ValueError(f"{path} is truncated: tensor {name!r} runs past the end")
            if e["dtype"] == "BF16":
                raw = (raw.astype(np.uint32) << 16).view(np.float32)
            out[name] = raw.reshape(e["shape"])
    return out


def read_folder(path: str | Path, what: str, error: type[Exception],
                allow_bin: bool = False) -> tuple[dict, dict[str, np.ndarray], object | None]:
    """A transformers `save_pretrained` folder -> (config dict, raw state dict, parsed
    vocab.json or None). `what` names the model class in errors; `allow_bin` also accepts a
    `pytorch_model.bin` (torch zip, read without torch) when there is no model.safetensors."""
    folder = Path(path)
    if not folder.is_dir():
        raise error(f"{folder}: expected a transformers {what} folder (config.json + "
                    "model.safetensors), got no such directory")
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise error(f"{folder} has no config.json; save the model with save_pretrained")
    config = json.loads(cfg_file.read_text())
    if not isinstance(config, dict):
        raise error(f"{cfg_file}: expected a JSON object, got {type(config).__name__}")
    if (folder / "model.safetensors").is_file():
        raw = read_safetensors(folder / "model.safetensors")
    elif allow_bin and (folder / "pytorch_model.bin").is_file():
        raw = read_torch_zip(folder / "pytorch_model.bin")
    else:
        also = " nor pytorch_model.bin" if allow_bin else ""
        raise error(f"{folder} has no model.safetensors{also}; save the model with "
                    "save_pretrained (safe_serialization=True)")
    vocab_file = folder / "vocab.json"
    vocab = json.loads(vocab_file.read_text()) if vocab_file.is_file() else None
    return config, raw, vocab


def read_pretrained(path: str | Path, what: str, model_type: str, error: type[Exception],
                    config: Mapping | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """A transformers `save_pretrained` directory (config.json + model.safetensors) -> (config
    dict, raw state dict). `what` names the model class in errors; a config whose `model_type`
    is set and is not `model_type` raises `error`. `config` replaces the file's config.json
    (which must still be there). The safetensors file is read by the `safetensors` package
    (`weights.torch_zip.read_safetensors`: dtypes as stored)."""
    path = Path(path)
    cfg_path, st_path = path / "config.json", path / "model.safetensors"
    for p in (cfg_path, st_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected a transformers {what} directory "
                                    "(save_pretrained writes config.json and model.safetensors)")
    cfg = json.loads(cfg_path.read_text()) if config is None else dict(config)
    if cfg.get("model_type", model_type) != model_type:
        raise error(f"{cfg_path}: model_type {cfg.get('model_type')!r} is not {model_type}")
    return cfg, torch_zip.read_safetensors(st_path)


def fold_weight_norm(g: np.ndarray, v: np.ndarray, dim: int,
                     error: type[Exception] = ValueError) -> np.ndarray:
    """w = g * v / ||v||, the norm over every axis of v but `dim` (torch `weight_norm(dim=dim)`).

    g has v's rank with size 1 on every axis but `dim`. Computed in float64, returned in v's dtype.
    """
    g, v = np.asarray(g), np.asarray(v)
    want = tuple(n if a == dim else 1 for a, n in enumerate(v.shape))
    if g.shape != want:
        raise error(f"weight norm (dim={dim}): g has shape {g.shape}, expected {want} "
                    f"for v of shape {v.shape}")
    v64 = v.astype(np.float64)
    axes = tuple(a for a in range(v.ndim) if a != dim)
    norm = np.sqrt(np.sum(v64 * v64, axis=axes, keepdims=True))
    return (v64 * (g.astype(np.float64) / norm)).astype(v.dtype)


def check_shapes(state: Mapping[str, np.ndarray], want: Mapping[str, tuple[int, ...]],
                 what: str, error: type[Exception]) -> None:
    """Key-set and shape equality of `state` with `want` (key -> shape); raises `error`."""
    missing, unexpected = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or unexpected:
        raise error(f"{what} state does not match its config: missing {preview(missing)}, "
                    f"unexpected {preview(unexpected)}")
    bad = [f"{k}: {tuple(state[k].shape)} != {want[k]}" for k in want
           if tuple(state[k].shape) != want[k]]
    if bad:
        raise error(f"{what} weights with wrong shapes: {preview(bad)}")


# A rule: (full-match key regex, action). The action gets (match, array) and returns the
# (name, array) pairs to emit: [] drops the key, [(match.string, array)] passes it through.
Rule = tuple[re.Pattern, Callable[[re.Match, np.ndarray], list[tuple[str, np.ndarray]]]]


def keep(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(m.string, value)]


def apply_rules(state: Mapping[str, np.ndarray], rules: Sequence[Rule], unknown_hint: str
                ) -> dict[str, np.ndarray]:
    """Each key goes through the first rule whose regex matches all of it; a key no rule
    matches is an error (`unknown_hint` says what the keys should be and how to load them)."""
    out: dict[str, np.ndarray] = {}
    unknown = []
    for name, value in state.items():
        for pattern, action in rules:
            if m := pattern.fullmatch(name):
                out.update(action(m, np.asarray(value)))
                break
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"{len(unknown)} keys are not {unknown_hint}: {preview(sorted(unknown))}")
    return out
