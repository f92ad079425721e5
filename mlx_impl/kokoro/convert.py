"""Canonical Kokoro weights (`weights.kokoro`: kokoro's state-dict keys, weight norm folded,
torch layout) -> the MLX parameter tree of `mlx_impl.kokoro.model.KokoroModel`.

The module names are upstream's, so there are no renames; only layouts change:
- Conv1d kernels (out, in / groups, k) -> channels-last (out, k, in / groups);
- the generator's upsampling ConvTranspose1d kernels (in, out, k) -> (out, k, in)
  (`layers.torch_conv.ConvTranspose1d`);
- the depthwise `pool` ConvTranspose1d kernels (C, 1, k) -> (C, k, 1);
- the Snake alphas (1, C, 1) -> (C,).
Every key must be claimed by a rule or pass through unchanged (2-D and 1-D tensors); the key set
is checked against the model by the strict loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

UPS = re.compile(r"^decoder\.generator\.ups\.\d+\.weight$")
ALPHA = re.compile(r"\.alpha[12]\.\d+$")


def convert(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, w in state.items():
        w = np.asarray(w)
        if ALPHA.search(key):
            w = w.reshape(-1)
        elif w.ndim == 3 and UPS.match(key):
            w = w.transpose(1, 2, 0)
        elif w.ndim == 3:  # Conv1d, and the depthwise pool (C, 1, k) -> (C, k, 1) alike
            w = w.transpose(0, 2, 1)
        elif w.ndim > 2:
            raise ValueError(f"{key}: unexpected {w.ndim}-D tensor {w.shape}")
        out[key] = np.ascontiguousarray(w)
    return out
