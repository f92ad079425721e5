"""EnCodec weights: on-disk layouts -> one canonical layout (numpy only).

Canonical layout: transformers' `EncodecModel` state-dict keys (5.24.0), numpy arrays in torch
layout, weight norm folded into `<conv>.weight` (`weights.weight_norm`, dim 0; for the decoder's
ConvTranspose1d that is the input channel), training-only buffers dropped:

    encoder.layers.{i}.conv.{weight,bias}                     (Conv1d)
    encoder.layers.{i}.block.{j}.conv.* / .shortcut.conv.*
    encoder.layers.{i}.norm.{weight,bias}                     (time_group_norm models)
    encoder.layers.{i}.lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l{k}
    decoder.layers.{i}.conv.*  (ConvTranspose1d kernels stay (in, out, k))
    quantizer.layers.{q}.codebook.embed                       (codebook_size, codebook_dim)

Sources:
- `from_transformers(state)`: a transformers checkpoint. transformers 5 saves weight norm as
  `<conv>.parametrizations.weight.original0` (g) / `.original1` (v); older files and the hub
  checkpoints use `weight_g` / `weight_v`. Both are accepted.
- `from_original(state)`: Meta's `encodec` package checkpoint (`encodec_24khz-d7cc33bc.th`):
  `encoder.model.{i}.conv.conv.weight_g`, `decoder.model.{i}.convtr.convtr.weight_g`,
  `*.conv.norm.*`, `quantizer.vq.layers.{q}._codebook.embed`.
- `load(path)`: a directory with `config.json` + `model.safetensors` (transformers
  `save_pretrained`), or an original `.th` checkpoint plus a config dict.
Dropped buffers: codebook `inited`, `cluster_size`, `embed_avg` (training statistics).
`fold=False` keeps the stored pairs, named `<conv>.weight_g` / `<conv>.weight_v` (the names of
the published facebook/encodec_* checkpoints), for building upstream modules that keep weight
norm (reference/encodec.py's original model). Keys and shapes are checked against the model when
it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from weights.checkpoint import Checkpoint
from weights.hf_safetensors import read_pretrained
from weights.torch_zip import read_torch_zip
from weights.weight_norm import fold_weight_norms

TRAINING_BUFFERS = ("inited", "cluster_size", "embed_avg")


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical EnCodec layout."""



def _is_training_buffer(key: str) -> bool:
    return key.startswith("quantizer.") and key.rsplit(".", 1)[-1] in TRAINING_BUFFERS


_TRANSFORMERS = [  # (pattern, replacement) applied in turn to each key
    (re.compile(r"\.parametrizations\.weight\.original0$"), ".weight_g"),
    (re.compile(r"\.parametrizations\.weight\.original1$"), ".weight_v"),
]
_ORIGINAL = [
    (re.compile(r"^(encoder|decoder)\.model\."), r"\1.layers."),
    (re.compile(r"\.conv\.conv\."), ".conv."),
    (re.compile(r"\.convtr\.convtr\."), ".conv."),
    (re.compile(r"\.(conv|convtr)\.norm\."), ".norm."),
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\."), r"quantizer.layers.\1.codebook."),
]


def _canonical(state: Mapping[str, np.ndarray], renames, fold: bool) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        for pattern, repl in renames:
            key = pattern.sub(repl, key)
        if not _is_training_buffer(key):
            out[key] = np.asarray(value)
    return fold_weight_norms(out) if fold else out


def from_transformers(state: Mapping[str, np.ndarray], fold: bool = True
                      ) -> dict[str, np.ndarray]:
    return _canonical(state, _TRANSFORMERS, fold)


def from_original(state: Mapping[str, np.ndarray], fold: bool = True) -> dict[str, np.ndarray]:
    return _canonical(state, _ORIGINAL, fold)


def load(path: Path | str, config: Mapping | None = None, fold: bool = True) -> Checkpoint:
    """Read a transformers `save_pretrained` directory, or an original `.th` checkpoint (then
    `config` is required: the original files carry none). `fold`: see the module docstring."""
    path = Path(path)
    if path.is_dir():
        cfg, raw = read_pretrained(path, "EncodecModel", "encodec", WeightsError, config)
        state = from_transformers(raw, fold)
    elif path.is_file():
        if config is None:
            raise WeightsError(f"{path}: an original encodec checkpoint has no config; pass "
                               "config= (e.g. mlx_impl.encodec.config.PRESETS['encodec-24khz']"
                               ".to_dict())")
        cfg = dict(config)
        raw = read_torch_zip(path)
        if not isinstance(raw, Mapping):
            raise WeightsError(f"{path}: expected a state dict, got {type(raw).__name__}")
        state = from_original(raw, fold)
    else:
        raise FileNotFoundError(f"EnCodec weights not found at {path}")
    if cfg.get("codebook_dim") is None:
        cfg["codebook_dim"] = cfg["hidden_size"]
    return Checkpoint(config=cfg, state=state, source=str(path))
