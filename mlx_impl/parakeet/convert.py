"""Canonical Parakeet weights (transformers layout, numpy; see weights/parakeet.py) -> MLX tree.

Names are unchanged (the MLX modules carry upstream's attribute names). Layout changes only:
- front-end Conv2d kernels: torch (out, in/groups, kh, kw) -> MLX channels-last (out, kh, kw, in);
- depthwise Conv1d kernels: torch (C, 1, k) -> MLX (C, k, 1);
- kernel-1 Conv1d kernels (conformer pointwise convs, the CTC head): (out, in, 1) -> linear
  weights (out, in).
Every other array (linears, norms, batch-norm statistics, bias_u/bias_v, embedding, LSTM) is
passed through. An unknown key is an error (weights.parakeet.check_state checks completeness).
"""

from __future__ import annotations

import re

import numpy as np

_CONV2D = re.compile(r"encoder\.subsampling\.layers\.\d+\.weight")
_DEPTHWISE = re.compile(r"encoder\.layers\.\d+\.conv\.depthwise_conv\.weight")
_POINTWISE = re.compile(r"encoder\.layers\.\d+\.conv\.pointwise_conv[12]\.weight|ctc_head\.weight")
_PLAIN = re.compile(
    r"encoder\.subsampling\.(layers\.\d+\.bias|linear\.(weight|bias))"
    r"|encoder\.layers\.\d+\.(feed_forward[12]\.linear[12]\.(weight|bias)"
    r"|self_attn\.(q_proj|k_proj|v_proj|o_proj)\.(weight|bias)"
    r"|self_attn\.(relative_k_proj\.weight|bias_u|bias_v)"
    r"|conv\.(pointwise_conv[12]|depthwise_conv)\.bias"
    r"|conv\.norm\.(weight|bias|running_mean|running_var)"
    r"|norm_(feed_forward1|self_att|conv|feed_forward2|out)\.(weight|bias))"
    r"|ctc_head\.bias"
    r"|encoder_projector\.(weight|bias)"
    r"|decoder\.embedding\.weight"
    r"|decoder\.lstm\.(weight_ih|weight_hh|bias_ih|bias_hh)_l\d+"
    r"|decoder\.decoder_projector\.(weight|bias)"
    r"|joint\.head\.(weight|bias)")


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MLX parameters for a canonical Parakeet state; an unknown key is an error."""
    out: dict[str, np.ndarray] = {}
    unknown = []
    for name, value in state.items():
        value = np.asarray(value)
        if _CONV2D.fullmatch(name):
            _rank(name, value, 4)
            out[name] = value.transpose(0, 2, 3, 1)  # (out, in, kh, kw) -> (out, kh, kw, in)
        elif _DEPTHWISE.fullmatch(name):
            _rank(name, value, 3)
            out[name] = value.transpose(0, 2, 1)  # (C, 1, k) -> (C, k, 1)
        elif _POINTWISE.fullmatch(name):
            _rank(name, value, 3)
            if value.shape[2] != 1:
                raise ValueError(f"{name}: expected a kernel-1 conv, got shape {value.shape}")
            out[name] = value[:, :, 0]  # a kernel-1 conv is a linear (out, in)
        elif _PLAIN.fullmatch(name):
            out[name] = value
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"{len(unknown)} keys are not Parakeet weights in the canonical layout: "
                         f"{sorted(unknown)[:8]}; load checkpoints with weights.parakeet.load")
    return out


def _rank(name: str, value: np.ndarray, n: int) -> None:
    if value.ndim != n:
        raise ValueError(f"{name}: expected a rank-{n} conv kernel, got shape {value.shape}")
