"""Shared pieces of the weight readers: the one safetensors reader, the transformers folder
readers, and the rule tables of the MLX converters.

- `read_safetensors`: a .safetensors file -> numpy arrays, streamed tensor by tensor (the one
  reader of the project: transformers folders, Whisper, Voxtral's shards);
- `read_folder`: a `save_pretrained` folder -> (config.json, raw state, vocab.json or None), with
  errors that name the missing file and the fix;
- `read_pretrained`: the codec readers' (`weights/dac.py`, `mimi.py`, `encodec.py`) version: a
  `save_pretrained` directory -> (config.json, raw state), its `model_type` checked;
- `apply_rules`: a converter as a table of (key regex, what to do with the array).
Weight norm is folded by `weights.weight_norm`.

numpy and the standard library only (both the reference and the MLX side import weights/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from weights.torch_zip import read_torch_zip


def preview(items: Sequence[str], n: int = 8) -> str:
    """The first `n` items and how many more: short error messages for long key lists."""
    items = list(items)
    return "none" if not items else (str(items[:n]) + (f" (+{len(items) - n} more)"
                                                       if len(items) > n else ""))


_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
           "BOOL": np.bool_}  # BF16 read as its bits, widened to float32 below


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """A .safetensors file -> numpy arrays in their stored dtypes (BF16 widened to float32
    exactly: numpy has no bfloat16).

    Streamed: the header is parsed, then each tensor's bytes are read (`readinto`) straight into
    that tensor's own array, so the peak is the file's size and no more, and a consumer that
    drops each array once it has copied it (a loader moving tensors into MLX) stays near one
    copy of the weights. Measured (VmHWM, fresh process, a 960 MiB file of 60 fp32 tensors;
    a loader copying tensor by tensor and dropping each source):
        this reader                          988 MiB after reading, 1004 MiB loader peak
        safetensors.numpy.load_file         1947 MiB after reading, 1947 MiB loader peak
        np.memmap views                       26 MiB after reading, 1946 MiB loader peak
        np.memmap, copied tensor by tensor  1946 MiB after reading, 1946 MiB loader peak
    (mapped pages count toward the resident set and stay there while any view of the mapping
    lives; load_file holds the whole file's bytes while it copies them out). On the largest
    checkpoint in the cache (EnCodec 24 kHz, 88 MiB): 125 / 205 / 204 / 204 MiB loader peaks.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    size = path.stat().st_size
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8:
            raise ValueError(f"{path} is not a safetensors file (header of {n} bytes in a file "
                             f"of {size}) or is truncated")
        header = json.loads(f.read(n))
        base = 8 + n
        for name, e in header.items():
            if name == "__metadata__":
                continue
            if e["dtype"] not in _DTYPES:
                raise ValueError(f"{path}: tensor {name!r} has dtype {e['dtype']}, which this "
                                 f"reader does not handle (it reads {sorted(_DTYPES)})")
            dtype = np.dtype(_DTYPES[e["dtype"]])
            start, end = e["data_offsets"]
            count = int(np.prod(e["shape"], dtype=np.int64))
            if end - start != count * dtype.itemsize:
                raise ValueError(f"{path}: tensor {name!r} of shape {e['shape']} {e['dtype']} "
                                 f"spans {end - start} bytes, expected {count * dtype.itemsize}")
            raw = np.empty(count, dtype=dtype)
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
    (which must still be there)."""
    path = Path(path)
    cfg_path, st_path = path / "config.json", path / "model.safetensors"
    for p in (cfg_path, st_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected a transformers {what} directory "
                                    "(save_pretrained writes config.json and model.safetensors)")
    cfg = json.loads(cfg_path.read_text()) if config is None else dict(config)
    if cfg.get("model_type", model_type) != model_type:
        raise error(f"{cfg_path}: model_type {cfg.get('model_type')!r} is not {model_type}")
    return cfg, read_safetensors(st_path)


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
