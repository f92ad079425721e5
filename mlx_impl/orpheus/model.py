"""Orpheus's language model in MLX: `layers.llm.DecoderLM` (Llama) over the extended vocabulary.

Upstream: transformers 5.24.0 `LlamaForCausalLM` (the architecture of
canopylabs/orpheus-3b-0.1-ft). Nothing model-specific in the forward pass: embeddings, the
decoder layers with llama3-scaled RoPE, the final norm and the vocabulary head are the shared
LLM layers, so the parameter tree is DecoderLM's (convert.py's names). Taps (`taps=Taps()`):
`model.embed`, `model.layers.{i}.self_attn` / `.mlp` / `model.layers.{i}`, `model.norm`
(llm.py's names under the prefix "model": transformers' module paths) and `logits`
(B, T, vocab) float32.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_impl.layers.llm import DecoderLM
from mlx_impl.orpheus.config import OrpheusConfig
from mlx_impl.taps import NO_TAPS, Taps


class OrpheusLM(DecoderLM):
    def __init__(self, cfg: OrpheusConfig, dtype: mx.Dtype = mx.float32):
        super().__init__(cfg.lm_args)
        self.config = cfg
        self.dtype = dtype

    def forward(self, tokens, cache, taps: Taps = NO_TAPS, last_only: bool = False) -> mx.array:
        """tokens (B, T) int -> logits (B, T, vocab) float32 (`last_only`: (B, 1, vocab));
        `cache` (`new_cache()`) is appended to."""
        ids = tokens.astype(mx.int32) if isinstance(tokens, mx.array) else \
            mx.array(np.asarray(tokens, dtype=np.int32))
        if ids.ndim != 2:
            raise ValueError(f"expected token ids of shape (B, T), got {tuple(ids.shape)}")
        x = self.embed(ids).astype(self.dtype)
        h = self(x, cache, taps, name="model")
        if last_only:
            h = h[:, -1:]
        return taps("logits", self.logits(h))
