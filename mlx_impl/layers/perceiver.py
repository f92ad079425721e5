"""Perceiver resampler (inference): a fixed set of learned latents cross-attending to a sequence.

Upstream: spark-tts-lib 0.2.1 `modules/speaker/perceiver_encoder.py` (`PerceiverResampler`,
from lucidrains' perceiver-resampler as used by Tortoise / XTTS; IndexTTS has the same block).

- `proj_context`: Linear(dim_context -> dim) when the widths differ;
- `depth` x [cross-attention whose keys/values are the latents concatenated BEFORE the
  context (`cross_attn_include_queries`), `heads` x `dim_head`, no biases, softmax scale
  dim_head^-0.5, no mask; then a GEGLU feed-forward: Linear(dim -> 2 inner), the first half
  times GELU(second half), Linear(inner -> dim), inner = int(dim * mult * 2 / 3)], each with a
  residual add;
- the output norm `RMSNorm` of lucidrains: `F.normalize(x) * sqrt(dim) * gamma` (x / max(||x||,
  1e-12), not mean-square based).
Attribute names are upstream's: `layers.{i}.0` (`to_q`, `to_kv`, `to_out`) and `layers.{i}.1`
(the feed-forward `Sequential`, whose Linears `.0` / `.2` are `proj_in` / `proj_out` here), `latents`, `norm.gamma`.
"""

from __future__ import annotations

import math

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.activations import gelu
from mlx_impl.layers.attention import scaled_dot_product_attention
from mlx_impl.layers.vq_factorized import l2_normalize


class CrossAttention(nn.Module):
    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = dim_head * heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def __call__(self, x: mx.array, context: mx.array) -> mx.array:  # (B, N, D), (B, S, D)
        context = mx.concatenate([x, context], axis=1)
        b, n, _ = x.shape
        q = self.to_q(x)
        k, v = mx.split(self.to_kv(context), 2, axis=-1)

        def heads(t):
            return t.reshape(b, t.shape[1], self.heads, self.dim_head).transpose(0, 2, 1, 3)

        out = scaled_dot_product_attention(heads(q), heads(k), heads(v), self.dim_head ** -0.5)
        return self.to_out(out.transpose(0, 2, 1, 3).reshape(b, n, -1))


class FeedForward(nn.Module):
    """GEGLU feed-forward; upstream's `Sequential` keys `0` / `2` are `proj_in` / `proj_out`."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = int(dim * mult * 2 / 3)
        self.proj_in = nn.Linear(dim, inner * 2)
        self.proj_out = nn.Linear(inner, dim)

    def __call__(self, x: mx.array) -> mx.array:
        a, gate = mx.split(self.proj_in(x), 2, axis=-1)
        return self.proj_out(gelu(gate) * a)


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = math.sqrt(dim)
        self.gamma = mx.ones((dim,))

    def __call__(self, x: mx.array) -> mx.array:
        return l2_normalize(x) * self.scale * self.gamma


class PerceiverResampler(nn.Module):
    def __init__(self, dim: int, depth: int = 2, dim_context: int | None = None,
                 num_latents: int = 32, dim_head: int = 64, heads: int = 8, ff_mult: int = 4):
        super().__init__()
        dim_context = dim if dim_context is None else dim_context
        if dim_context != dim:
            self.proj_context = nn.Linear(dim_context, dim)
        self.latents = mx.zeros((num_latents, dim))
        self.layers = [[CrossAttention(dim, dim_head, heads), FeedForward(dim, ff_mult)]
                       for _ in range(depth)]
        self.norm = RMSNorm(dim)

    def __call__(self, x: mx.array) -> mx.array:  # (B, S, dim_context) -> (B, num_latents, dim)
        if "proj_context" in self:
            x = self.proj_context(x)
        latents = mx.broadcast_to(self.latents, (x.shape[0], *self.latents.shape))
        for attn, ff in self.layers:
            latents = attn(latents, x) + latents
            latents = ff(latents) + latents
        return self.norm(latents)
