"""SNAC weights: the `snac` package checkpoint -> one canonical layout (numpy only).

On disk (hub repos hubertsiuzdak/snac_*): `config.json` (the `SNAC(**config)` arguments) and
`pytorch_model.bin` (`torch.save(model.state_dict())`). The convs use
`torch.nn.utils.parametrizations.weight_norm`, stored as `<conv>.parametrizations.weight.original0`
(g) / `.original1` (v); the attention layers store their rotary `rel_pos.inv_freq` buffer.

Canonical layout: the snac state-dict keys with weight norm folded into `<conv>.weight`
(`weights.weight_norm`, dim 0) and the `rel_pos.inv_freq` buffers dropped (checked against
1 / 10000 ** (arange(0, 64, 2) / 64) first: the MLX side recomputes them, so a strict load
cannot see a checkpoint whose rotary base differs), numpy arrays in torch layout.

`load(path)`: the directory; the torch zip is read without torch (weights/torch_zip.py). Keys and
shapes are checked against the model when it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from weights.checkpoint import Checkpoint, read_torch_folder
from weights.weight_norm import fold_weight_norms

DIM_HEAD = 64  # upstream LocalMHA's head width


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical SNAC layout."""


def from_snac(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    want_inv = (1.0 / (np.float32(10000) ** (np.arange(0, DIM_HEAD, 2).astype(np.float32)
                                              / np.float32(DIM_HEAD)))).astype(np.float32)
    out = {}
    for key, value in state.items():
        value = np.asarray(value)
        if key.endswith(".rel_pos.inv_freq"):
            if value.shape != want_inv.shape or not np.allclose(value, want_inv, rtol=1e-6, atol=0):
                raise WeightsError(f"{key}: rotary inverse frequencies differ from "
                                   "1 / 10000 ** (arange(0, 64, 2) / 64); not a snac LocalMHA")
            continue
        out[key] = value
    return fold_weight_norms(out)


def load(path: Path | str) -> Checkpoint:
    """Read a snac checkpoint directory (config.json: the `SNAC(**config)` arguments, and
    pytorch_model.bin)."""
    cfg, raw = read_torch_folder(path, "config.json", "pytorch_model.bin",
                                 "a snac checkpoint directory, as the hub repos", WeightsError)
    return Checkpoint(config=json.loads(cfg), state=from_snac(raw), source=str(path))
