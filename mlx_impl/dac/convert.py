"""Canonical DAC weights (weights.dac layout, numpy) -> MLX parameter tree.

The canonical keys are transformers' `DacModel` keys, weight norm already folded (see
weights/dac.py). Conversion:
- kernels to MLX's channels-last (out, k, in): Conv1d from (out, in, k), the decoder's
  ConvTranspose1d (`decoder.block.{i}.conv_t1`) from (in, out, k);
- Snake `alpha` (1, C, 1) -> (C,);
- biases and codebooks unchanged.
Names are unchanged; `mlx_impl.loading.load_strict` checks keys and shapes.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.conv import torch_to_mlx_kernel


def convert(state: dict[str, np.ndarray], transposed=lambda prefix: ".conv_t1" in prefix
            ) -> dict[str, np.ndarray]:
    """`transposed(prefix)` says which conv prefixes are ConvTranspose1d (DAC: `conv_t1`)."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name.endswith(".alpha"):
            if value.ndim != 3 or value.shape[0] != 1 or value.shape[2] != 1:
                raise ValueError(f"{name}: expected a Snake alpha (1, C, 1), got {value.shape}")
            out[name] = value.reshape(-1)
        elif name.endswith(".weight") and value.ndim == 3:
            out[name] = torch_to_mlx_kernel(value, transposed(name[: -len(".weight")]))
        else:
            out[name] = value
    return out
