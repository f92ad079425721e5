"""Canonical Parakeet weights (transformers layout, numpy; see weights/parakeet.py) -> MLX tree.

Names are unchanged (the MLX modules carry upstream's attribute names). Layout changes only:
- front-end Conv2d kernels: torch (out, in/groups, kh, kw) -> MLX channels-last (out, kh, kw, in);
- depthwise Conv1d kernels: torch (C, 1, k) -> MLX (C, k, 1);
- kernel-1 Conv1d kernels (conformer pointwise convs, the CTC head): (out, in, 1) -> linear
  weights (out, in).
Every other array (linears, norms, batch-norm statistics, bias_u/bias_v, embedding, LSTM) is
passed through. An unknown key is an error (`mlx_impl.loading.load_strict` checks completeness).
"""

from __future__ import annotations

import re

import numpy as np

from weights.hf_safetensors import apply_rules, keep

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


def _conv2d(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    _rank(m.string, value, 4)
    return [(m.string, value.transpose(0, 2, 3, 1))]  # (out, in, kh, kw) -> (out, kh, kw, in)


def _depthwise(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    _rank(m.string, value, 3)
    return [(m.string, value.transpose(0, 2, 1))]  # (C, 1, k) -> (C, k, 1)


def _pointwise(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    _rank(m.string, value, 3)
    if value.shape[2] != 1:
        raise ValueError(f"{m.string}: expected a kernel-1 conv, got shape {value.shape}")
    return [(m.string, value[:, :, 0])]  # a kernel-1 conv is a linear (out, in)


RULES = ((_CONV2D, _conv2d), (_DEPTHWISE, _depthwise), (_POINTWISE, _pointwise), (_PLAIN, keep))


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MLX parameters for a canonical Parakeet state; an unknown key is an error."""
    return apply_rules(state, RULES, "Parakeet weights in the canonical layout; load "
                       "checkpoints with weights.parakeet.load")


def _rank(name: str, value: np.ndarray, n: int) -> None:
    if value.ndim != n:
        raise ValueError(f"{name}: expected a rank-{n} conv kernel, got shape {value.shape}")
