"""Canonical DAC weights (weights.dac layout, numpy) -> MLX parameter tree.

The canonical keys are transformers' `DacModel` keys (see weights/dac.py); a conv stored with
weight norm has `<conv>.weight_g` / `<conv>.weight_v` instead of `<conv>.weight`. Conversion:
- weight norm folded: `<conv>.weight = g * v / ||v||` (norm over all axes but 0);
- kernels to MLX's channels-last (out, k, in): Conv1d from (out, in, k), the decoder's
  ConvTranspose1d (`decoder.block.{i}.conv_t1`) from (in, out, k);
- Snake `alpha` (1, C, 1) -> (C,);
- biases and codebooks unchanged.
Every canonical key is consumed; `DacModel.load_weights(strict=True)` checks the rest.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.conv import fold_weight_norm, torch_to_mlx_kernel


def convert(state: dict[str, np.ndarray], transposed=lambda prefix: ".conv_t1" in prefix
            ) -> dict[str, np.ndarray]:
    """`transposed(prefix)` says which conv prefixes are ConvTranspose1d (DAC: `conv_t1`)."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name.endswith(".weight_v"):
            if name[: -len(".weight_v")] + ".weight_g" not in state:
                raise ValueError(f"{name} has no matching weight_g")
            continue  # handled with its .weight_g
        if name.endswith(".weight_g"):
            prefix = name[: -len(".weight_g")]
            if prefix + ".weight_v" not in state:
                raise ValueError(f"{name} has no matching {prefix}.weight_v")
            w = fold_weight_norm(value, state[prefix + ".weight_v"])
            out[prefix + ".weight"] = torch_to_mlx_kernel(w, transposed(prefix))
        elif name.endswith(".alpha"):
            if value.ndim != 3 or value.shape[0] != 1 or value.shape[2] != 1:
                raise ValueError(f"{name}: expected a Snake alpha (1, C, 1), got {value.shape}")
            out[name] = value.reshape(-1)
        elif name.endswith(".weight") and value.ndim == 3:
            out[name] = torch_to_mlx_kernel(value, transposed(name[: -len(".weight")]))
        else:
            out[name] = value
    return out
