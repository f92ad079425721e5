"""Canonical EnCodec weights (weights.encodec layout, numpy) -> MLX parameter tree.

The canonical keys are transformers' `EncodecModel` keys, weight norm already folded (see
weights/encodec.py). Conversion:
- kernels to MLX's channels-last (out, k, in): Conv1d from (out, in, k), the decoder's
  ConvTranspose1d from (in, out, k);
- everything else (LSTM weights, biases, group-norm affine, codebooks) unchanged.
Names are unchanged; `mlx_impl.loading.load_strict` checks keys and shapes.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.encodec.config import EncodecConfig
from mlx_impl.layers.conv import torch_to_mlx_kernel


def transposed_conv_prefixes(n_ratios: int, num_residual_layers: int, first: int
                             ) -> set[str]:
    """`decoder.layers.{i}.conv` of a SEANet decoder's ConvTranspose1d layers. `decoder.layers`
    holds a conv (and an LSTM in EnCodec: `first` 2, Mimi: 1), then per ratio an ELU, the
    transposed conv and the residual blocks."""
    return {f"decoder.layers.{first + 1 + r * (2 + num_residual_layers)}.conv"
            for r in range(n_ratios)}


def convert(state: dict[str, np.ndarray], cfg: EncodecConfig) -> dict[str, np.ndarray]:
    transposed = transposed_conv_prefixes(len(cfg.upsampling_ratios), cfg.num_residual_layers,
                                          first=2)
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if name.endswith(".conv.weight") and value.ndim == 3:
            out[name] = torch_to_mlx_kernel(value, name[: -len(".weight")] in transposed)
        else:
            out[name] = value
    return out
