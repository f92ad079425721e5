"""bigvgan 2.4.1 generator state dict -> MLX BigVGAN parameters.

Weight norm is already folded by weights/bigvgan.py (as upstream's `remove_weight_norm()`).
Conv kernels go to MLX's (out, k, in); Snake parameters are (C,) on both sides. The upsampling
filters (`...upsample.filter`, `...downsample.lowpass.filter`) are buffers upstream recomputes
from the config: they are checked against ours and dropped. `mlx_impl.loading.load_strict` checks
keys and shapes.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.alias_free import kaiser_sinc_filter1d
from mlx_impl.layers.conv import torch_to_mlx_kernel

_FILTERS = {"upsample.filter": (0.25, 0.3), "downsample.lowpass.filter": (0.25, 0.3)}


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = {k: np.asarray(v) for k, v in state.items()}
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        suffix = next((s for s in _FILTERS if k.endswith(s)), None)
        if suffix is not None:
            want = kaiser_sinc_filter1d(*_FILTERS[suffix], v.shape[-1])
            if np.abs(v.reshape(-1) - want).max() > 1e-6:
                raise ValueError(f"{k}: stored anti-aliasing filter differs from the Kaiser-sinc "
                                 f"design (ratio 2); this checkpoint is not a standard BigVGAN")
            continue
        if k.endswith(".weight") and v.ndim == 3:
            v = torch_to_mlx_kernel(v, transposed=k.startswith("ups."))
        elif k.endswith((".alpha", ".beta")):
            v = v.reshape(-1)
        out[k] = v.astype(np.float32)
    return out
