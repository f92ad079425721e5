"""ConvNeXt block with layer scale and the adaptive (class-conditioned) layer norm, as Vocos.

Upstream: vocos 0.1.0 `vocos/modules.py` (`ConvNeXtBlock`, `AdaLayerNorm`).

- `AdaLayerNorm(num_embeddings, dim)`: layer norm without affine, then `x * scale[id] + shift[id]`
  with `scale` / `shift` embedding tables (`nn.Embedding`) picked by a conditioning id (Vocos:
  the EnCodec bandwidth index).
- `ConvNeXtBlock`: depthwise Conv1d (kernel 7, zero padding 3) -> layer norm (plain or adaptive,
  eps 1e-6) -> Linear `pwconv1` -> exact GELU -> Linear `pwconv2` -> `gamma *` (layer scale,
  absent when `layer_scale_init_value <= 0`) -> residual add.

Layout: (B, T, C) throughout (upstream keeps (B, C, T) between blocks); the depthwise kernel is
MLX's (C, k, 1) (torch: (C, 1, k)). Attribute names equal upstream's (`dwconv`, `norm`, `pwconv1`,
`pwconv2`, `gamma`, `scale.weight`, `shift.weight`) so checkpoint keys map one to one.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.activations import gelu
from mlx_impl.layers.norm import LayerNorm, layer_norm
from mlx_impl.layers.torch_conv import depthwise_conv1d


class AdaLayerNorm(nn.Module):
    """Layer norm whose scale and shift are rows of embedding tables picked by `cond_id`."""

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.num_embeddings, self.dim, self.eps = num_embeddings, dim, eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        self.scale.weight = mx.ones((num_embeddings, dim))
        self.shift.weight = mx.zeros((num_embeddings, dim))

    def __call__(self, x: mx.array, cond_id: int | mx.array) -> mx.array:  # x (B, T, C)
        ids = mx.array(cond_id) if not isinstance(cond_id, mx.array) else cond_id
        ids = ids.astype(mx.int32)
        if ids.size and (mx.min(ids).item() < 0 or mx.max(ids).item() >= self.num_embeddings):
            raise ValueError(f"conditioning id {ids.tolist()} out of range: this layer has "
                             f"{self.num_embeddings} embeddings (ids 0..{self.num_embeddings - 1})")
        scale, shift = self.scale(ids), self.shift(ids)  # () -> (C,); (B,) -> (B, C)
        if ids.ndim == 1:
            scale, shift = scale[:, None], shift[:, None]  # (B, 1, C) broadcast over time
        return layer_norm(x, None, None, self.eps) * scale + shift


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float,
                 adanorm_num_embeddings: int | None = None):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.adanorm = bool(adanorm_num_embeddings)
        self.norm = (AdaLayerNorm(adanorm_num_embeddings, dim, eps=1e-6) if self.adanorm
                     else LayerNorm(dim, eps=1e-6))
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        if layer_scale_init_value > 0:
            self.gamma = layer_scale_init_value * mx.ones((dim,))

    def __call__(self, x: mx.array, cond_id: int | mx.array | None = None) -> mx.array:
        residual = x  # (B, T, C)
        x = depthwise_conv1d(mx.pad(x, [(0, 0), (3, 3), (0, 0)]), self.dwconv.weight) \
            + self.dwconv.bias  # the module's k=7 'same' conv, on MLX's fast CPU path
        if self.adanorm:
            if cond_id is None:
                raise ValueError("this ConvNeXt block is conditioned (AdaLayerNorm): pass cond_id "
                                 "(the bandwidth index)")
            x = self.norm(x, cond_id)
        else:
            x = self.norm(x)
        x = self.pwconv2(gelu(self.pwconv1(x)))
        if "gamma" in self:
            x = self.gamma * x
        return residual + x


class CondAdaLayerNorm(nn.Module):
    """Layer norm whose scale and shift are Linear projections of a condition VECTOR
    (spark-tts-lib 0.2.1 `modules/blocks/vocos.py` `AdaLayerNorm`; Vocos' is the embedding-id
    form above): `layer_norm(x) * scale(c)[:, None] + shift(c)[:, None]`, eps 1e-6."""

    def __init__(self, condition_dim: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Linear(condition_dim, dim)
        self.shift = nn.Linear(condition_dim, dim)

    def __call__(self, x: mx.array, cond: mx.array) -> mx.array:  # x (B, T, C), cond (B, D)
        if cond is None or cond.ndim != 2 or cond.shape[0] != x.shape[0]:
            raise ValueError(f"the adaptive layer norm needs a condition (batch, dim) for "
                             f"{x.shape[0]} rows, got {None if cond is None else cond.shape}")
        return layer_norm(x, None, None, self.eps) * self.scale(cond)[:, None] \
            + self.shift(cond)[:, None]


class CondConvNeXtBlock(ConvNeXtBlock):
    """`ConvNeXtBlock` with the vector-conditioned `CondAdaLayerNorm` (Spark's BiCodec decoder);
    `cond` (B, condition_dim) takes the place of `cond_id`."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float,
                 condition_dim: int):
        super().__init__(dim, intermediate_dim, layer_scale_init_value)
        self.adanorm = True
        self.norm = CondAdaLayerNorm(condition_dim, dim, eps=1e-6)
