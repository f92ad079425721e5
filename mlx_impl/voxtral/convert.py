"""Voxtral checkpoint layout -> the MLX parameter tree of `mlx_impl.voxtral.model.Voxtral`.

Input: the canonical layout of `weights.voxtral` (the keys of the Voxtral safetensors on disk:
`audio_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
`language_model.lm_head.weight`), numpy arrays in torch layout. The encoder keys are renamed onto
the Whisper `AudioEncoder` (openai-whisper names) and its conv kernels transposed to MLX's
channels-last (out, k, in); the decoder keys lose the `model.` level. Strict: every key must be
consumed and every output key must exist in the model (checked by `load_weights(strict=True)`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

ENCODER_RENAMES = (  # (regex on the key after "audio_tower.", replacement)
    (r"^embed_positions\.weight$", "positional_embedding"),
    (r"^layers\.(\d+)\.self_attn\.q_proj\.", r"blocks.\1.attn.query."),
    (r"^layers\.(\d+)\.self_attn\.k_proj\.", r"blocks.\1.attn.key."),
    (r"^layers\.(\d+)\.self_attn\.v_proj\.", r"blocks.\1.attn.value."),
    (r"^layers\.(\d+)\.self_attn\.out_proj\.", r"blocks.\1.attn.out."),
    (r"^layers\.(\d+)\.self_attn_layer_norm\.", r"blocks.\1.attn_ln."),
    (r"^layers\.(\d+)\.fc1\.", r"blocks.\1.mlp.0."),
    (r"^layers\.(\d+)\.fc2\.", r"blocks.\1.mlp.2."),
    (r"^layers\.(\d+)\.final_layer_norm\.", r"blocks.\1.mlp_ln."),
    (r"^layer_norm\.", "ln_post."),
    (r"^(conv[12]\.(weight|bias))$", r"\1"),
)


def _encoder_key(key: str) -> str:
    for pattern, repl in ENCODER_RENAMES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise KeyError(f"unexpected audio encoder weight 'audio_tower.{key}'")


def convert(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith("audio_tower."):
            name = "audio_tower." + _encoder_key(key[len("audio_tower."):])
            if re.fullmatch(r"audio_tower\.conv[12]\.weight", name):
                value = np.ascontiguousarray(np.swapaxes(value, 1, 2))  # (out, in, k) -> (out, k, in)
        elif key.startswith("multi_modal_projector.linear_"):
            name = key
        elif key.startswith("language_model.model."):
            name = "language_model." + key[len("language_model.model."):]
        elif key == "language_model.lm_head.weight":
            name = key
        else:
            raise KeyError(f"unexpected Voxtral weight {key!r}; expected audio_tower.*, "
                           "multi_modal_projector.*, language_model.model.* or "
                           "language_model.lm_head.weight")
        if name in out:
            raise KeyError(f"two checkpoint keys map to {name!r}")
        out[name] = value
    return out
