"""Canonical Mimi weights (weights.mimi layout, numpy) -> MLX parameter tree.

- Conv kernels to MLX's channels-last (out, k, in): SEANet Conv1d and `downsample` from torch
  (out, in, k); the decoder's ConvTranspose1d from (in, out, k); `upsample` (a grouped transposed
  conv) from (in, out / groups, k) to (out, k, in / groups).
- The RVQ projections (torch Conv1d with kernel 1) become linears: (out, in, 1) -> (out, in).
- Everything else (transformer linears, layer norms, layer scales, codebooks) unchanged.
Every canonical key is consumed; `MimiModel.load_weights(strict=True)` checks the rest.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.encodec.convert import transposed_conv_prefixes
from mlx_impl.layers.conv import torch_to_mlx_kernel
from mlx_impl.mimi.config import MimiConfig


def convert(state: dict[str, np.ndarray], cfg: MimiConfig) -> dict[str, np.ndarray]:
    transposed = transposed_conv_prefixes(len(cfg.upsampling_ratios), cfg.num_residual_layers,
                                          first=1)
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name == "upsample.conv.weight":
            out[name] = torch_to_mlx_kernel(value, True, groups=cfg.upsample_groups)
        elif name.endswith(("input_proj.weight", "output_proj.weight")):
            if value.ndim != 3 or value.shape[-1] != 1:
                raise ValueError(f"{name}: expected a 1x1 conv kernel (out, in, 1), got "
                                 f"{value.shape}")
            out[name] = value[:, :, 0]
        elif name.endswith(".conv.weight"):
            out[name] = torch_to_mlx_kernel(value, name[: -len(".weight")] in transposed)
        else:
            out[name] = value
    return out
