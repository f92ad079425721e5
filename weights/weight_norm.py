"""Weight norm folded into plain kernels: the one place the project does it (numpy only).

torch stores a weight-normed parameter as a pair (g, v) with w = g * v / ||v||, the norm taken
over every axis of v but `dim`:
- `<p>.weight_g` / `<p>.weight_v` (`torch.nn.utils.weight_norm`: the hub's BigVGAN, EnCodec and
  older transformers files);
- `<p>.parametrizations.weight.original0` / `.original1` (`torch.nn.utils.parametrizations.
  weight_norm`: what transformers 5 and the snac package save).
`dim` is 0 unless the model says otherwise (the default of both torch functions; for a
ConvTranspose1d kernel (in, out, k) axis 0 is the *input* channel, and g is (in, 1, 1));
Wav2Vec2's positional conv uses dim=2 (the kernel axis).

The fold is computed in float64 and returned in v's dtype. torch recomputes w in float32 on
every forward (`torch._weight_norm`: v * (g / norm)); the two agree to fp32 rounding (max 1.5e-8
absolute, 1.2e-7 relative on weights of ~0.2, measured in tests/test_weights_weight_norm.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PAIRS = ((".weight_g", ".weight_v"),
         (".parametrizations.weight.original0", ".parametrizations.weight.original1"))


class WeightNormError(ValueError):
    """A weight-norm pair that is incomplete or whose g does not fit its v."""


def fold_weight_norm(g: np.ndarray, v: np.ndarray, dim: int = 0) -> np.ndarray:
    """w = g * v / ||v||, the norm over every axis of v but `dim` (torch `weight_norm(dim=dim)`).

    g has v's rank with size 1 on every axis but `dim`."""
    g, v = np.asarray(g), np.asarray(v)
    want = tuple(n if a == dim else 1 for a, n in enumerate(v.shape))
    if g.shape != want:
        raise WeightNormError(f"weight norm (dim={dim}): g has shape {g.shape}, expected {want} "
                              f"for v of shape {v.shape} (norm over every axis but {dim})")
    v64 = v.astype(np.float64)
    norm = np.sqrt(np.sum(v64 * v64, axis=tuple(a for a in range(v.ndim) if a != dim),
                          keepdims=True))
    return (g.astype(np.float64) * v64 / norm).astype(v.dtype)


def fold_weight_norms(state: Mapping[str, np.ndarray], dim: int = 0) -> dict[str, np.ndarray]:
    """`state` with every weight-norm pair (either naming, see the module docstring) replaced by
    its folded `<p>.weight`; every other key passes through unchanged. Half a pair is an error."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        for g_suffix, v_suffix in PAIRS:
            if key.endswith(v_suffix):
                if key[: -len(v_suffix)] + g_suffix not in state:
                    raise WeightNormError(f"{key} has no matching {g_suffix[1:]}: incomplete "
                                          "weight-norm pair (corrupt or truncated checkpoint)")
                break  # folded with its g
            if key.endswith(g_suffix):
                prefix = key[: -len(g_suffix)]
                if prefix + v_suffix not in state:
                    raise WeightNormError(f"{key} has no matching {v_suffix[1:]}: incomplete "
                                          "weight-norm pair (corrupt or truncated checkpoint)")
                if prefix + ".weight" in state:
                    raise WeightNormError(f"{prefix} has both a plain weight and a weight-norm "
                                          "pair; expected one of them")
                out[prefix + ".weight"] = fold_weight_norm(value, state[prefix + v_suffix], dim)
                break
        else:
            out[key] = value
    return out
