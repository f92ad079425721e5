"""transformers `CsmForConditionalGeneration` safetensors (save_pretrained) -> the MLX parameter
trees of `mlx_impl.csm.model.CsmModel` and of its codec (`mlx_impl.mimi`).

Keys (`split`): `codec_model.*` is the Mimi codec (returned apart, in transformers' MimiModel
naming, for `weights.mimi.from_transformers` + `mlx_impl.mimi.convert`); every other key keeps
its name (the MLX attribute names are transformers' module paths), except the codebook
embeddings: upstream ties `backbone_model.embed_tokens.embed_audio_tokens.weight` to
`depth_decoder.model.embed_tokens.weight` and save_pretrained writes the latter only; here the
one table lives at the backbone's name. Where both are present they must be equal, else the
checkpoint contradicts its `tie_codebooks_embeddings`. Linear weights keep torch's (out, in)
layout (`layers.linear` computes x @ W^T); `depth_decoder.codebooks_head.weight` (K-1, D, V) is
used as x @ W[k] on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

BACKBONE_EMBED = "backbone_model.embed_tokens.embed_audio_tokens.weight"
DEPTH_EMBED = "depth_decoder.model.embed_tokens.weight"
CODEC = "codec_model."


def split(state: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(CSM parameters for `CsmModel`, codec state with the `codec_model.` prefix removed)."""
    csm: dict[str, np.ndarray] = {}
    codec: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith(CODEC):
            codec[key[len(CODEC):]] = value
        elif key in (BACKBONE_EMBED, DEPTH_EMBED):
            continue
        else:
            csm[key] = value
    tables = [state[k] for k in (BACKBONE_EMBED, DEPTH_EMBED) if k in state]
    if not tables:
        raise KeyError(f"the checkpoint has no codebook embeddings ({DEPTH_EMBED} or "
                       f"{BACKBONE_EMBED}); is it a CsmForConditionalGeneration folder?")
    if len(tables) == 2 and not np.array_equal(tables[0], tables[1]):
        raise KeyError(f"{BACKBONE_EMBED} and {DEPTH_EMBED} differ, but CSM ties them; the "
                       "checkpoint is not a tied CSM (tie_codebooks_embeddings)")
    csm[BACKBONE_EMBED] = tables[0]
    if not codec:
        raise KeyError("the checkpoint has no codec_model.* weights (the Mimi codec that "
                       "CsmForConditionalGeneration saves with the model)")
    return csm, codec
