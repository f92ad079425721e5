"""Pre-norm transformer layer with rotary attention, optional layer scale and a sliding causal
window, plus its streaming KV cache.

Upstream: transformers 5.24.0 `models/mimi/modeling_mimi.py` (`MimiTransformerLayer`,
`MimiAttention`, `MimiMLP`, `MimiLayerScale`, `MimiTransformerModel`) with the mask of
`masking_utils.create_sliding_window_causal_mask`: query position p sees key position k iff
`k <= p` and `k > p - sliding_window` (the window counts the query itself).

    y = x + ls_attn * attn(LN1(x));  out = y + ls_mlp * fc2(gelu(fc1(LN2(y))))

- Attention: q/k/v/o projections (`bias` optional), RoPE on q and k at absolute positions
  (`mlx_impl.layers.rope`), then the shared core `attention.scaled_dot_product_attention`
  (grouped KV heads read in place, never repeated; scores `(q / sqrt(head_dim)) @ k^T` plus the
  window mask, softmax in float32; `mx.fast` off the CPU).
- Layer scale: a per-channel `scale` multiplying each branch (None: no layer scale).
- `SlidingKVCache` keeps the last `sliding_window - 1` keys/values after each call (all a later
  query can see) and the absolute position, so frame-by-frame calls equal one call on the whole
  sequence.
Attribute names equal upstream's checkpoint keys (`self_attn.q_proj`, `mlp.fc1`,
`input_layernorm`, `post_attention_layernorm`, `self_attn_layer_scale.scale`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.activations import gelu
from mlx_impl.layers.attention import scaled_dot_product_attention
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.layers.rope import RotaryEmbedding
from mlx_impl.taps import NO_TAPS, Taps


@dataclass(frozen=True)
class TransformerOptions:
    dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    norm_eps: float
    rope_theta: float
    sliding_window: int | None  # None: plain causal attention
    layer_scale: float | None  # initial value of the layer scales; None: no layer scale
    bias: bool = False  # biases of the attention projections


class SlidingKVCache:
    """Keys/values of the positions a future query can still see; `offset` = positions seen.

    keys, values  # (B, H_kv, S, D), S <= sliding_window - 1 between calls
    """

    def __init__(self, window: int | None):
        self.window = window
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        """Append k, v (B, H, T, D); return all held keys/values and the position of the first."""
        if self.keys is not None:
            k = mx.concatenate([self.keys, k], axis=2)
            v = mx.concatenate([self.values, v], axis=2)
        start = self.offset - (0 if self.keys is None else self.keys.shape[2])
        self.offset += k.shape[2] - (0 if self.keys is None else self.keys.shape[2])
        keep = k.shape[2] if self.window is None else min(k.shape[2], self.window - 1)
        self.keys, self.values = k[:, :, k.shape[2] - keep:], v[:, :, v.shape[2] - keep:]
        return k, v, start


def window_mask(q_start: int, n_q: int, k_start: int, n_k: int, window: int | None) -> mx.array:
    """Additive mask (n_q, n_k): query at q_start + i sees key k_start + j iff j-position <= the
    query's and (with a window) > query - window."""
    q = mx.arange(n_q)[:, None] + q_start
    k = mx.arange(n_k)[None, :] + k_start
    ok = k <= q
    if window is not None:
        ok = ok & (k > q - window)
    return mx.where(ok, mx.array(0.0, mx.float32), mx.array(-mx.inf, mx.float32))


class Attention(nn.Module):
    def __init__(self, o: TransformerOptions):
        super().__init__()
        self.o = o
        self.q_proj = nn.Linear(o.dim, o.n_heads * o.head_dim, bias=o.bias)
        self.k_proj = nn.Linear(o.dim, o.n_kv_heads * o.head_dim, bias=o.bias)
        self.v_proj = nn.Linear(o.dim, o.n_kv_heads * o.head_dim, bias=o.bias)
        self.o_proj = nn.Linear(o.n_heads * o.head_dim, o.dim, bias=o.bias)

    def __call__(self, x: mx.array, rope: RotaryEmbedding, offset: int,
                 cache: SlidingKVCache | None) -> mx.array:  # (B, T, C) -> (B, T, C)
        o = self.o
        b, t, _ = x.shape

        def heads(y, n):  # (B, T, n * D) -> (B, n, T, D)
            return y.reshape(b, t, n, o.head_dim).transpose(0, 2, 1, 3)

        q = rope(heads(self.q_proj(x), o.n_heads), offset)
        k = rope(heads(self.k_proj(x), o.n_kv_heads), offset)
        v = heads(self.v_proj(x), o.n_kv_heads)
        k_start = offset
        if cache is not None:
            k, v, k_start = cache.update(k, v)
        mask = window_mask(offset, t, k_start, k.shape[2], o.sliding_window)
        out = scaled_dot_product_attention(q, k, v, o.head_dim ** -0.5, mask)  # (B, H, T, D)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, t, o.n_heads * o.head_dim))


class MLP(nn.Module):
    def __init__(self, o: TransformerOptions):
        super().__init__()
        self.fc1 = nn.Linear(o.dim, o.ffn_dim, bias=False)
        self.fc2 = nn.Linear(o.ffn_dim, o.dim, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(gelu(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float):
        super().__init__()
        self.scale = mx.full((dim,), init)

    def __call__(self, x: mx.array) -> mx.array:
        return self.scale * x


class TransformerLayer(nn.Module):
    def __init__(self, o: TransformerOptions):
        super().__init__()
        self.self_attn = Attention(o)
        self.mlp = MLP(o)
        self.input_layernorm = LayerNorm(o.dim, eps=o.norm_eps)
        self.post_attention_layernorm = LayerNorm(o.dim, eps=o.norm_eps)
        self.use_layer_scale = o.layer_scale is not None
        if self.use_layer_scale:
            self.self_attn_layer_scale = LayerScale(o.dim, o.layer_scale)
            self.mlp_layer_scale = LayerScale(o.dim, o.layer_scale)

    def __call__(self, x: mx.array, rope: RotaryEmbedding, offset: int,
                 cache: SlidingKVCache | None = None) -> mx.array:
        h = self.self_attn(self.input_layernorm(x), rope, offset, cache)
        x = x + (self.self_attn_layer_scale(h) if self.use_layer_scale else h)
        h = self.mlp(self.post_attention_layernorm(x))
        return x + (self.mlp_layer_scale(h) if self.use_layer_scale else h)


class Transformer(nn.Module):
    """A stack of `TransformerLayer`s sharing one rotary table (`layers.{i}` keys)."""

    def __init__(self, o: TransformerOptions, n_layers: int):
        super().__init__()
        self.o = o
        self.layers = [TransformerLayer(o) for _ in range(n_layers)]
        self._rope = RotaryEmbedding(o.head_dim, o.rope_theta)

    def make_cache(self) -> list[SlidingKVCache]:
        return [SlidingKVCache(self.o.sliding_window) for _ in self.layers]

    def __call__(self, x: mx.array, cache: list[SlidingKVCache] | None = None,
                 taps: Taps = NO_TAPS, name: str = "transformer") -> mx.array:  # (B, T, C)
        offset = 0 if cache is None else cache[0].offset
        for i, layer in enumerate(self.layers):
            x = layer(x, self._rope, offset, None if cache is None else cache[i])
            x = taps(f"{name}.layers.{i}", x)
        return x
