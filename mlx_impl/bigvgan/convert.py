"""bigvgan 2.4.1 generator state dict -> MLX BigVGAN parameters.

The hub's `bigvgan_generator.pt` stores weight norm as `weight_g` / `weight_v`
(`torch.nn.utils.weight_norm`, dim=0): folded here as upstream's `remove_weight_norm()` does
(`fold_weight_norm`; for the transposed convs dim 0 is the input channel). Conv kernels go to MLX's
(out, k, in); Snake parameters are (C,) on both sides. The upsampling filters
(`...upsample.filter`, `...downsample.lowpass.filter`) are buffers upstream recomputes from the
config: they are checked against ours and dropped. Strict: unknown or missing keys raise.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.alias_free import kaiser_sinc_filter1d
from mlx_impl.layers.conv import fold_weight_norm, torch_to_mlx_kernel

_FILTERS = {"upsample.filter": (0.25, 0.3), "downsample.lowpass.filter": (0.25, 0.3)}


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = {k: np.asarray(v) for k, v in state.items()}
    out: dict[str, np.ndarray] = {}
    done: set[str] = set()
    for k, v in state.items():
        if k in done:
            continue
        suffix = next((s for s in _FILTERS if k.endswith(s)), None)
        if suffix is not None:
            want = kaiser_sinc_filter1d(*_FILTERS[suffix], v.shape[-1])
            if np.abs(v.reshape(-1) - want).max() > 1e-6:
                raise ValueError(f"{k}: stored anti-aliasing filter differs from the Kaiser-sinc "
                                 f"design (ratio 2); this checkpoint is not a standard BigVGAN")
            done.add(k)
            continue
        if k.endswith((".weight_g", ".weight_v")):
            base = k[: -len(".weight_g")]
            g, w = state.get(base + ".weight_g"), state.get(base + ".weight_v")
            if g is None or w is None:
                raise KeyError(f"{base}: weight norm needs both weight_g and weight_v")
            done.update({base + ".weight_g", base + ".weight_v"})
            k, v = base + ".weight", fold_weight_norm(g, w)
        elif k.endswith(".parametrizations.weight.original0"):
            raise ValueError(f"{k}: parametrizations-style weight norm; save with "
                             "torch.nn.utils.weight_norm (the hub format) or remove it first")
        if k.endswith(".weight") and v.ndim == 3:
            v = torch_to_mlx_kernel(v, transposed=k.startswith("ups."))
        elif k.endswith((".alpha", ".beta")):
            v = v.reshape(-1)
        out[k] = v.astype(np.float32)
    return out
