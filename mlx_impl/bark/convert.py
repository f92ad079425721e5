"""transformers `BarkModel` safetensors (save_pretrained) -> the MLX parameter tree of
`mlx_impl.bark.model.BarkModel`.

The module names are upstream's, so the GPT keys pass through; Linear weights keep torch's
(out, in) layout. Dropped: `*.attn.bias` (the causal GPTs' lower-triangular mask buffer, a
computed buffer, checked to be lower-triangular ones so a checkpoint with another mask is an
error, not silently ignored). `codec_model.*` is transformers' `EncodecModel` state: it goes
through the EnCodec reader (`weights.encodec.from_transformers`: weight norm folded, training
buffers dropped) and converter (`mlx_impl.encodec.convert`: channels-last kernels) under the
same prefix. Any other key is an error; the loader checks the key set strictly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx_impl.bark.config import BarkConfig
from mlx_impl.encodec.convert import convert as convert_encodec
from weights.encodec import from_transformers as canonical_encodec

PARTS = ("semantic.", "coarse_acoustics.", "fine_acoustics.")
CODEC = "codec_model."


def convert(state: Mapping[str, np.ndarray], cfg: BarkConfig) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    codec: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith(CODEC):
            codec[key[len(CODEC):]] = value
        elif not key.startswith(PARTS):
            raise KeyError(f"unexpected BarkModel weight {key!r}; expected semantic.*, "
                           "coarse_acoustics.*, fine_acoustics.* or codec_model.*")
        elif key.endswith(".attn.bias") and np.asarray(value).ndim == 4:
            m = np.asarray(value)[0, 0]
            if not np.array_equal(m.astype(bool), np.tril(np.ones(m.shape, bool))):
                raise ValueError(f"{key} is not the lower-triangular causal mask; this port "
                                 "only implements Bark's causal attention")
        else:
            out[key] = value
    if not codec:
        raise KeyError("the checkpoint has no codec_model.* weights (BarkModel's EnCodec)")
    for key, value in convert_encodec(canonical_encodec(codec), cfg.codec_config).items():
        out[CODEC + key] = value
    return out
