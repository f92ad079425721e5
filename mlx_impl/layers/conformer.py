"""Conformer building blocks: relative-position multi-head attention (Transformer-XL style, with
its shift), the convolution module (GLU, depthwise conv, batch norm in eval mode), the macaron
feed-forward, and the block that chains them.

Upstream: transformers 5.24.0 `models/parakeet/modeling_parakeet.py` (`ParakeetEncoderBlock`,
`ParakeetEncoderAttention`, `ParakeetEncoderConvolutionModule`, `ParakeetEncoderFeedForward`,
`ParakeetEncoderRelPositionalEncoding`), itself NVIDIA NeMo's FastConformer layer. Attribute
names equal upstream's parameter names, so converted weights load with a transpose only.

Layouts are channels-last: x (B, T, C). Masks are boolean, True = attend.
Deviations: none known. Masked positions are handled as upstream does (the scores of masked pairs
are set to the float32 minimum, or fp16's finite minimum in fp16, so a fully masked query row
attends uniformly, and its output is never read by valid positions).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.layers.activations import softmax
from mlx_impl.layers.torch_conv import depthwise_conv1d
from mlx_impl.taps import NO_TAPS, Taps

BATCH_NORM_EPS = 1e-5  # torch nn.BatchNorm1d default, as upstream builds it
LAYER_NORM_EPS = 1e-5  # torch nn.LayerNorm default, as upstream builds it
ROPE_BASE = 10000.0
F32_MIN = float(np.finfo(np.float32).min)


def silu(x: mx.array) -> mx.array:
    return x * mx.sigmoid(x)


def relative_positions(length: int, n_state: int) -> np.ndarray:
    """Sinusoids for relative positions length-1, ..., -(length-1): (2*length-1, n_state) float32,
    sin and cos interleaved (sin at even channels), computed in float32 as upstream does."""
    inv_freq = (1.0 / (np.float32(ROPE_BASE) ** (np.arange(0, n_state, 2, dtype=np.float32)
                                                  / np.float32(n_state)))).astype(np.float32)
    pos = np.arange(length - 1, -length, -1).astype(np.float32)
    freqs = pos[:, None] * inv_freq[None, :]  # (2T-1, C/2)
    return np.stack([np.sin(freqs), np.cos(freqs)], axis=-1).reshape(len(pos), n_state)


def rel_shift(x: mx.array) -> mx.array:
    """(B, H, T, 2T-1) scores against positions T-1..-(T-1) -> (B, H, T, T) with
    out[..., i, j] = x[..., i, T-1-i+j] (relative position i-j), by upstream's pad-and-reshape
    trick (Transformer-XL appendix B)."""
    b, h, t, p = x.shape
    x = mx.pad(x, [(0, 0), (0, 0), (0, 0), (1, 0)])  # (B, H, T, 2T)
    x = x.reshape(b, h, p + 1, t)[:, :, 1:]  # (B, H, 2T-1, T)
    return x.reshape(b, h, t, p)[..., :t]


class RelPositionMultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int, bias: bool = True):
        super().__init__()
        self.n_head, self.head_dim = n_head, n_state // n_head
        self.q_proj = nn.Linear(n_state, n_state, bias=bias)
        self.k_proj = nn.Linear(n_state, n_state, bias=bias)
        self.v_proj = nn.Linear(n_state, n_state, bias=bias)
        self.o_proj = nn.Linear(n_state, n_state, bias=bias)
        self.relative_k_proj = nn.Linear(n_state, n_state, bias=False)  # W_{k,R}
        self.bias_u = mx.zeros((n_head, self.head_dim))  # global content bias
        self.bias_v = mx.zeros((n_head, self.head_dim))  # global positional bias

    def __call__(self, x: mx.array, pos: mx.array, mask: mx.array | None = None) -> mx.array:
        """x (B, T, C); pos (2T-1, C) relative-position sinusoids; mask (B, 1, T, T) bool."""
        b, t, _ = x.shape
        h, d = self.n_head, self.head_dim
        scale = d ** -0.5

        def heads(y):  # (B, T, C) -> (B, H, T, d)
            return y.reshape(b, -1, h, d).transpose(0, 2, 1, 3)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        p = self.relative_k_proj(pos).reshape(-1, h, d).transpose(1, 2, 0)  # (H, d, 2T-1)
        bd = rel_shift((q + self.bias_v[:, None, :]) @ p) * scale  # (B, H, T, T)
        ac = ((q + self.bias_u[:, None, :]) @ k.transpose(0, 1, 3, 2)) * scale
        scores = ac + bd
        if mask is not None:
            # Upstream fills bd with the float32 minimum before adding ac; filling the sum gives
            # the same fp32 values (|ac| is far below ulp(F32_MIN)) and, in fp16, uses fp16's
            # finite minimum: F32_MIN would round to -inf there and turn a fully masked (padding)
            # query row into NaN (measured: 64 NaNs in encoder.layers.0.self_attn, weather clip).
            scores = mx.where(mask, scores, max(F32_MIN, float(mx.finfo(scores.dtype).min)))
        w = softmax(scores, axis=-1)
        out = (w @ v).transpose(0, 2, 1, 3).reshape(b, t, h * d)
        return self.o_proj(out)


class BatchNorm1d(nn.Module):
    """Batch norm in eval mode (running statistics), over the last (channel) axis."""

    def __init__(self, channels: int, eps: float = BATCH_NORM_EPS):
        super().__init__()
        self.eps = eps
        self.weight = mx.ones((channels,))
        self.bias = mx.zeros((channels,))
        self.running_mean = mx.zeros((channels,))
        self.running_var = mx.ones((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        return (x - self.running_mean) * mx.rsqrt(self.running_var + self.eps) * self.weight \
            + self.bias


class ConformerConvolution(nn.Module):
    """pointwise conv (C -> 2C) -> GLU -> depthwise conv (k, 'same') -> batch norm -> SiLU ->
    pointwise conv. The pointwise convs are linears here (kernel 1; the converter squeezes it)."""

    def __init__(self, channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.pointwise_conv1 = nn.Linear(channels, 2 * channels, bias=bias)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size,
                                        padding=(kernel_size - 1) // 2, groups=channels, bias=bias)
        self.norm = BatchNorm1d(channels)
        self.pointwise_conv2 = nn.Linear(channels, channels, bias=bias)

    def __call__(self, x: mx.array, valid: mx.array | None = None) -> mx.array:
        """x (B, T, C); valid (B, T) bool: frames past the length are zeroed before the
        depthwise conv, so padding never leaks into valid frames."""
        x = self.pointwise_conv1(x)
        a, g = mx.split(x, 2, axis=-1)
        x = a * mx.sigmoid(g)  # GLU over channels
        if valid is not None:
            x = mx.where(valid[..., None], x, 0.0)
        conv = self.depthwise_conv  # the module's 'same' depthwise conv, on the fast CPU path
        pad = (conv.weight.shape[1] - 1) // 2
        x = depthwise_conv1d(mx.pad(x, [(0, 0), (pad, pad), (0, 0)]), conv.weight)
        if "bias" in conv:
            x = x + conv.bias
        x = silu(self.norm(x))
        return self.pointwise_conv2(x)


class FeedForward(nn.Module):
    def __init__(self, n_state: int, n_ff: int, bias: bool = True):
        super().__init__()
        self.linear1 = nn.Linear(n_state, n_ff, bias=bias)
        self.linear2 = nn.Linear(n_ff, n_state, bias=bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear2(silu(self.linear1(x)))


class ConformerBlock(nn.Module):
    """Macaron block: x + FF/2, + MHSA, + Conv, + FF/2, then LayerNorm (pre-norm sub-layers)."""

    def __init__(self, n_state: int, n_head: int, n_ff: int, kernel_size: int,
                 attention_bias: bool = True, convolution_bias: bool = True):
        super().__init__()
        self.feed_forward1 = FeedForward(n_state, n_ff, attention_bias)
        self.self_attn = RelPositionMultiHeadAttention(n_state, n_head, attention_bias)
        self.conv = ConformerConvolution(n_state, kernel_size, convolution_bias)
        self.feed_forward2 = FeedForward(n_state, n_ff, attention_bias)
        for name in ("norm_feed_forward1", "norm_self_att", "norm_conv", "norm_feed_forward2",
                     "norm_out"):
            setattr(self, name, nn.LayerNorm(n_state, eps=LAYER_NORM_EPS))

    def __call__(self, x: mx.array, pos: mx.array, mask: mx.array | None = None,
                 valid: mx.array | None = None, taps: Taps = NO_TAPS, name: str = "") -> mx.array:
        """x (B, T, C); pos (2T-1, C); mask (B, 1, T, T) and valid (B, T) bool, or None.
        Taps (sub-layer outputs before their residual add): {name}.feed_forward1, .self_attn,
        .conv, .feed_forward2, and {name} (the block output)."""

        def tap(key, value):
            return taps(f"{name}.{key}" if key else name, value)

        x = x + 0.5 * tap("feed_forward1", self.feed_forward1(self.norm_feed_forward1(x)))
        x = x + tap("self_attn", self.self_attn(self.norm_self_att(x), pos, mask))
        x = x + tap("conv", self.conv(self.norm_conv(x), valid))
        x = x + 0.5 * tap("feed_forward2", self.feed_forward2(self.norm_feed_forward2(x)))
        return tap("", self.norm_out(x))
