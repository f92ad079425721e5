"""Canonical SNAC weights (weights.snac layout, numpy) -> MLX parameter tree.

The same conversion as DAC's (`mlx_impl.dac.convert`: kernels to MLX's channels-last (out, k,
in), grouped kernels (out, in / groups, k) alike, Snake alphas squeezed; weight norm is already
folded by weights/snac.py); the transposed convs are the `decoder.model.{i}.block.1` of the
decoder blocks. Linear and layer-norm weights of the attention layers are unchanged.
`mlx_impl.loading.load_strict` checks the key set and shapes.
"""

from __future__ import annotations

import re

import numpy as np

from mlx_impl.dac.convert import convert as _convert

_TRANSPOSED = re.compile(r"^decoder\.model\.\d+\.block\.1$")


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _convert(state, transposed=lambda prefix: bool(_TRANSPOSED.match(prefix)))
