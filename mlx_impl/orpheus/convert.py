"""transformers `LlamaForCausalLM` safetensors (save_pretrained) -> the MLX parameter tree of
`mlx_impl.orpheus.model.OrpheusLM` (a `layers.llm.DecoderLM`).

Keys: `model.embed_tokens.weight`, `model.layers.{i}.*`, `model.norm.weight` lose the `model.`
level (the DecoderLM attribute names are transformers'); `lm_head.weight` stays. With tied
embeddings transformers does not write `lm_head.weight`; if a tied checkpoint has one, it must
equal the embedding (then it is dropped), else the checkpoint and its config disagree.
Linear weights keep torch's (out, in) layout (`layers.linear` computes x @ W^T).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx_impl.orpheus.config import OrpheusConfig


def convert(state: Mapping[str, np.ndarray], cfg: OrpheusConfig) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith("model."):
            name = key[len("model."):]
        elif key == "lm_head.weight":
            if cfg.tie_word_embeddings:
                emb = state.get("model.embed_tokens.weight")
                if emb is None or not np.array_equal(emb, value):
                    raise KeyError("the config ties the embeddings but lm_head.weight differs "
                                   "from model.embed_tokens.weight; fix tie_word_embeddings")
                continue
            name = key
        else:
            raise KeyError(f"unexpected LlamaForCausalLM weight {key!r}; expected model.* or "
                           "lm_head.weight")
        out[name] = value
    return out
