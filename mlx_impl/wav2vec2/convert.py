"""Canonical Wav2Vec2 weights (transformers layout, numpy; see weights/wav2vec2.py) -> MLX tree.

Renames: attention `q_proj/k_proj/v_proj/out_proj` -> the shared `MultiHeadAttention`'s
`query/key/value/out`. Dropped: `attention.k_proj.bias` (see below). Transposes: every conv
kernel from torch's (out, in/groups, k) to MLX's channels-last (out, k, in/groups).

Why dropping the key bias is exact: a score is q . (W_k x_j + b_k) = q . W_k x_j + q . b_k, and
q . b_k is the same for every key j of the query, so softmax over j cancels it. The MLX
attention therefore has no key bias (as Whisper's), and the weights need no other change.
"""

from __future__ import annotations

import re

import numpy as np

from weights.hf_safetensors import apply_rules, keep

_ATTN = {"q_proj": "query", "k_proj": "key", "v_proj": "value", "out_proj": "out"}
_CONV_KERNEL = re.compile(r"wav2vec2\.(feature_extractor\.conv_layers\.\d+|encoder\.pos_conv_embed)"
                          r"\.conv\.weight")
_ATTN_KEY = re.compile(r"(wav2vec2\.encoder\.layers\.\d+\.attention)\."
                       r"(q_proj|k_proj|v_proj|out_proj)"
                       r"\.(weight|bias)")
_PLAIN = re.compile(
    r"wav2vec2\.feature_extractor\.conv_layers\.\d+\.(conv\.bias|layer_norm\.(weight|bias))"
    r"|wav2vec2\.feature_projection\.(layer_norm|projection)\.(weight|bias)"
    r"|wav2vec2\.encoder\.pos_conv_embed\.conv\.bias"
    r"|wav2vec2\.encoder\.layer_norm\.(weight|bias)"
    r"|wav2vec2\.encoder\.layers\.\d+\.(layer_norm|final_layer_norm|feed_forward\.intermediate_dense"
    r"|feed_forward\.output_dense)\.(weight|bias)"
    r"|lm_head\.(weight|bias)")


def _conv_kernel(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if value.ndim != 3:
        raise ValueError(f"{m.string}: expected a conv kernel (out, in, k), got {value.shape}")
    return [(m.string, value.transpose(0, 2, 1))]  # torch (out, in, k) -> MLX (out, k, in)


def _attention(m: re.Match, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    prefix, proj, param = m.groups()
    if proj == "k_proj" and param == "bias":
        return []  # softmax-invariant (module docstring)
    return [(f"{prefix}.{_ATTN[proj]}.{param}", value)]


RULES = ((_CONV_KERNEL, _conv_kernel), (_ATTN_KEY, _attention), (_PLAIN, keep))


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MLX parameters for a canonical Wav2Vec2ForCTC state; an unknown key is an error."""
    return apply_rules(state, RULES, "Wav2Vec2ForCTC weights in the canonical layout; load "
                       "checkpoints with weights.wav2vec2.load, which folds the weight norm and "
                       "drops training-only keys")
