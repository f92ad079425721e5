"""Canonical EnCodec weights (weights.encodec layout, numpy) -> MLX parameter tree.

The canonical keys are transformers' `EncodecModel` keys with weight norm stored as
`<conv>.weight_g` / `<conv>.weight_v` (see weights/encodec.py). Conversion:
- weight norm folded: `<conv>.weight = g * v / ||v||` (norm over all axes but 0);
- kernels to MLX's channels-last (out, k, in): Conv1d from (out, in, k), the decoder's
  ConvTranspose1d from (in, out, k);
- everything else (LSTM weights, biases, group-norm affine, codebooks) unchanged.
Every canonical key is consumed; `EncodecModel.load_weights(strict=True)` checks the rest.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.encodec.config import EncodecConfig
from mlx_impl.layers.conv import fold_weight_norm, torch_to_mlx_kernel


def transposed_conv_prefixes(cfg: EncodecConfig) -> set[str]:
    """`decoder.layers.{i}.conv` of the decoder's ConvTranspose1d layers."""
    out, i = set(), 2  # decoder.layers: conv, lstm, then per ratio ELU, convtr, resblocks
    for _ in cfg.upsampling_ratios:
        out.add(f"decoder.layers.{i + 1}.conv")
        i += 2 + cfg.num_residual_layers
    return out


def convert(state: dict[str, np.ndarray], cfg: EncodecConfig) -> dict[str, np.ndarray]:
    transposed = transposed_conv_prefixes(cfg)
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if name.endswith(".weight_v"):
            continue  # handled with its .weight_g
        if name.endswith(".weight_g"):
            prefix = name[: -len(".weight_g")]
            if prefix + ".weight_v" not in state:
                raise ValueError(f"{name} has no matching {prefix}.weight_v")
            w = fold_weight_norm(value, state[prefix + ".weight_v"])
            out[prefix + ".weight"] = torch_to_mlx_kernel(w, prefix in transposed)
        elif name.endswith(".conv.weight") and name.count(".") >= 3 and value.ndim == 3:
            prefix = name[: -len(".weight")]
            out[name] = torch_to_mlx_kernel(value, prefix in transposed)
        else:
            out[name] = value
    orphans = [k for k in state if k.endswith(".weight_v")
               and k[: -len(".weight_v")] + ".weight_g" not in state]
    if orphans:
        raise ValueError(f"weight_v without weight_g: {orphans[:5]}")
    return out
