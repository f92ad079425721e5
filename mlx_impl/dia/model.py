"""Dia's encoder-decoder in MLX.

Upstream: transformers 5.24.0 `models/dia/modeling_dia.py` (`DiaForConditionalGeneration`).
- Encoder (`DiaEncoder`): byte embedding -> layers of [RMSNorm `pre_sa_norm` -> bidirectional
  self-attention with RoPE -> residual, RMSNorm `post_sa_norm` -> SwiGLU -> residual] -> RMSNorm.
- Decoder (`DiaDecoder`): the 9 channels' ids embedded from one table with channel offsets
  (channel c, id i -> row c * vocab + i) and summed -> layers of [`pre_sa_norm` -> causal GQA
  self-attention with RoPE (KV cache) -> residual, `pre_ca_norm` -> cross-attention to the
  encoder output (no positions, K/V computed once) -> residual, `pre_mlp_norm` -> SwiGLU ->
  residual] -> RMSNorm -> `logits_dense` (hidden -> channels x vocab), viewed (B, T, C, V).
- Every attention uses scale 1 (upstream `self.scaling = 1`: Dia's query weights carry it).
Shared layers: `layers.llm.Attention` (`LMArgs.attention_scale` = 1), `CrossAttention`, `MLP`
(upstream's fused `gate_up_proj` is split into `gate_proj` / `up_proj` by convert.py), `RMSNorm`,
the rotate-half RoPE and the attention core. The encoder runs self-attention without a mask: one
unpadded text per row (the CFG row is the same length, all ids 0), as upstream's all-ones mask.

Taps (`taps=Taps()`), upstream module paths: `model.encoder.embedding`,
`model.encoder.layers.{i}.self_attention` / `.mlp` / `model.encoder.layers.{i}`,
`model.encoder.norm`, `model.decoder.embeddings`, `model.decoder.layers.{i}.self_attention` /
`.cross_attention` / `.mlp` / `model.decoder.layers.{i}`, `model.decoder.norm`, `logits`
(B, T, C, V) float32.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_impl.dia.config import DiaConfig, DiaDecoderConfig, DiaEncoderConfig
from mlx_impl.layers.attention import KVCache, causal_mask
from mlx_impl.layers.linear import Linear
from mlx_impl.layers.llm import MLP, Attention, CrossAttention, RMSNorm
from mlx_impl.taps import NO_TAPS, Taps


def _ids(x, what: str, ndim: int, vocab: int) -> mx.array:
    ids = x.astype(mx.int32) if isinstance(x, mx.array) else mx.array(np.asarray(x, np.int32))
    if ids.ndim != ndim:
        raise ValueError(f"{what}: expected {ndim} axes, got shape {tuple(ids.shape)}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ValueError(f"{what}: ids must be in [0, {vocab}), got [{int(ids.min())}, "
                         f"{int(ids.max())}]")
    return ids


class EncoderLayer(nn.Module):
    def __init__(self, cfg: DiaEncoderConfig):
        super().__init__()
        self.pre_sa_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.self_attention = Attention(cfg.lm_args)
        self.post_sa_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size)

    def __call__(self, x: mx.array, taps: Taps, name: str) -> mx.array:
        a = taps(f"{name}.self_attention", self.self_attention(self.pre_sa_norm(x), KVCache()))
        x = x + a
        m = taps(f"{name}.mlp", self.mlp(self.post_sa_norm(x)))
        return taps(name, x + m)


class Encoder(nn.Module):
    def __init__(self, cfg: DiaEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = [EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)]
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def __call__(self, ids: mx.array, taps: Taps = NO_TAPS, name: str = "model.encoder"
                 ) -> mx.array:
        """ids (B, S) -> (B, S, hidden)."""
        if ids.shape[1] > self.cfg.max_position_embeddings:
            raise ValueError(f"{ids.shape[1]} text ids exceed the encoder's "
                             f"{self.cfg.max_position_embeddings} positions; shorten the text")
        x = taps(f"{name}.embedding", self.embedding(ids))
        for i, layer in enumerate(self.layers):
            x = layer(x, taps, f"{name}.layers.{i}")
        return taps(f"{name}.norm", self.norm(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: DiaDecoderConfig):
        super().__init__()
        self.pre_sa_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.self_attention = Attention(cfg.lm_args)
        self.pre_ca_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.cross_attention = CrossAttention(
            cfg.hidden_size, cfg.cross_hidden_size, cfg.cross_num_attention_heads,
            cfg.cross_num_key_value_heads, cfg.cross_head_dim, scale=1.0)
        self.pre_mlp_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size)

    def __call__(self, x: mx.array, kv, cache: KVCache, mask, taps: Taps, name: str) -> mx.array:
        a = taps(f"{name}.self_attention", self.self_attention(self.pre_sa_norm(x), cache, mask))
        x = x + a
        c = taps(f"{name}.cross_attention", self.cross_attention(self.pre_ca_norm(x), kv))
        x = x + c
        m = taps(f"{name}.mlp", self.mlp(self.pre_mlp_norm(x)))
        return taps(name, x + m)


class MultiChannelEmbedding(nn.Module):
    """`DiaMultiChannelEmbedding`: parameter `embed` (channels * vocab, hidden); the channel
    offsets are a buffer (underscore: not a parameter)."""

    def __init__(self, cfg: DiaDecoderConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size * cfg.num_channels, cfg.hidden_size)
        self._offsets = mx.arange(cfg.num_channels, dtype=mx.int32) * cfg.vocab_size

    def __call__(self, codes: mx.array) -> mx.array:  # (B, T, C) -> (B, T, hidden)
        return mx.sum(self.embed(codes + self._offsets), axis=2)


class Decoder(nn.Module):
    def __init__(self, cfg: DiaDecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = MultiChannelEmbedding(cfg)
        self.layers = [DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)]
        self.norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)

    def __call__(self, codes: mx.array, kv: list, cache: list[KVCache], taps: Taps = NO_TAPS,
                 name: str = "model.decoder") -> mx.array:
        """codes (B, T, C) -> (B, T, hidden); `cache` is appended to."""
        t = codes.shape[1]
        offset = cache[0].offset
        if offset + t > self.cfg.max_position_embeddings:
            raise ValueError(f"{offset + t} decoder positions exceed the model's "
                             f"{self.cfg.max_position_embeddings}; lower max_tokens")
        mask = causal_mask(t, offset) if t > 1 else None
        x = taps(f"{name}.embeddings", self.embeddings(codes))
        for i, layer in enumerate(self.layers):
            x = layer(x, kv[i], cache[i], mask, taps, f"{name}.layers.{i}")
        return taps(f"{name}.norm", self.norm(x))


class _Model(nn.Module):
    def __init__(self, cfg: DiaConfig):
        super().__init__()
        self.encoder = Encoder(cfg.encoder_config)
        self.decoder = Decoder(cfg.decoder_config)


class DiaModel(nn.Module):
    """`DiaForConditionalGeneration`'s parameters: `model.encoder`, `model.decoder`,
    `logits_dense` (convert.py's names)."""

    def __init__(self, cfg: DiaConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.config, self.dtype = cfg, dtype
        dec = cfg.decoder_config
        self.model = _Model(cfg)
        self.logits_dense = Linear(dec.hidden_size, dec.num_channels * dec.vocab_size,
                                   bias=False)

    def encode(self, text_ids, taps: Taps = NO_TAPS) -> mx.array:
        """text ids (B, S) -> encoder output (B, S, hidden_enc)."""
        ids = _ids(text_ids, "text ids", 2, self.config.encoder_config.vocab_size)
        return self.model.encoder(ids, taps)

    def cross_kv(self, encoded: mx.array) -> list:
        """Each decoder layer's cross-attention keys/values of the encoder output, once."""
        return [layer.cross_attention.project_kv(encoded) for layer in self.model.decoder.layers]

    def new_cache(self) -> list[KVCache]:
        return [KVCache() for _ in self.model.decoder.layers]

    def decode(self, codes, kv: list, cache: list[KVCache], taps: Taps = NO_TAPS,
               last_only: bool = False) -> mx.array:
        """codes (B, T, C) -> logits (B, T, C, V) float32 (`last_only`: (B, 1, C, V))."""
        dec = self.config.decoder_config
        ids = _ids(codes, "decoder codes", 3, dec.vocab_size)
        if ids.shape[2] != dec.num_channels:
            raise ValueError(f"decoder codes need {dec.num_channels} channels, got "
                             f"{ids.shape[2]}")
        h = self.model.decoder(ids, kv, cache, taps)
        if last_only:
            h = h[:, -1:]
        b, t, _ = h.shape
        logits = self.logits_dense(h).astype(mx.float32).reshape(b, t, dec.num_channels, -1)
        return taps("logits", logits)

    def forward(self, text_ids, codes, taps: Taps = NO_TAPS) -> mx.array:
        """Teacher-forced pass: text ids (B, S), decoder codes (B, T, C) -> logits (B, T, C, V)."""
        encoded = self.encode(text_ids, taps)
        return self.decode(codes, self.cross_kv(encoded), self.new_cache(), taps)
