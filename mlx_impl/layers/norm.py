"""Layer normalisation matching torch's `F.layer_norm` to fp32 rounding.

MLX's CPU reductions sum the last axis sequentially in fp32, so on rows of mean 5, std 3
`mx.fast.layer_norm` ends up to 6.7e-6 from float64 at C=512 (torch: 1.2e-6; outputs up to ~10).
On the CPU the mean and the variance are therefore summed in two levels
(`activations.sum_last`: blocks of <= 64, then the block sums) and the statistics are two-pass
(mean, then mean of squared deviations), as torch's: ours is then 1.5e-6 / 1.6e-6 / 1.0e-6 from
float64 at C = 384 / 512 / 37, and at most 2.4e-6 from torch. It is also no slower:
(1500, 512) takes 1.8 ms vs 2.2 ms for `mx.fast.layer_norm` (2 cores of an idle x86 host).
Elsewhere (Metal/CUDA reductions are tree-shaped) `mx.fast.layer_norm` is used.

Where the C++ extension `mlx_impl._cpu_ext` is built, float32 layer norms with weight and bias
run its one-op kernel instead: the same two-pass statistics summed in double (0.9-1.2e-6 from
float64 at C = 384-1280, as torch's fp32), and one op instead of ~10, which matters for
one-row decoding steps (0.17 ms -> ~0.02 ms per call; whisper-base runs 19 per token).

The computation runs in float32 and is cast back to the input dtype, as openai-whisper's
`LayerNorm` does for fp16 models (`super().forward(x.float()).type(x.dtype)`).
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl import _cpu_ext
from mlx_impl.layers.activations import sum_last


def _mean_last(x: mx.array) -> mx.array:
    return sum_last(x) / x.shape[-1]


def layer_norm(
    x: mx.array,  # (..., C)
    weight: mx.array | None,  # (C,)
    bias: mx.array | None,  # (C,)
    eps: float = 1e-5,
) -> mx.array:
    """torch's `F.layer_norm(x, (C,), weight, bias, eps)`, computed in float32."""
    if weight is not None and weight.shape != (x.shape[-1],):
        raise ValueError(
            f"layer_norm weight has shape {weight.shape}, expected ({x.shape[-1]},) to match "
            f"the last axis of x {x.shape}"
        )
    if mx.default_device() != mx.cpu:
        # The fused kernel accumulates half-precision input in float32 and rounds once: the same
        # result as casting up and back, without four extra ops per call (measured on MLX-CUDA:
        # they cost ~1.8 ms per fp16 decoder step of whisper-base).
        return mx.fast.layer_norm(x, weight, bias, eps)
    if x.dtype == mx.float32 and weight is not None and bias is not None:
        ext = _cpu_ext.kernels()
        if ext is not None and weight.dtype == mx.float32 and bias.dtype == mx.float32:
            _cpu_ext.record("layer_norm", "extension")
            return ext.layer_norm(x, weight, bias, eps)
    _cpu_ext.record("layer_norm", "composed")
    dtype = x.dtype
    xf = x.astype(mx.float32)
    w = None if weight is None else weight.astype(mx.float32)
    b = None if bias is None else bias.astype(mx.float32)
    d = xf - _mean_last(xf)
    y = d * mx.rsqrt(_mean_last(d * d) + eps)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y.astype(dtype)


class LayerNorm(nn.Module):
    """`torch.nn.LayerNorm(dims, eps)` with parameters `weight` and `bias` (upstream key names)."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.dims = dims
        self.eps = eps
        if affine:
            self.weight = mx.ones((dims,))
            self.bias = mx.zeros((dims,))

    def _extra_repr(self) -> str:
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x: mx.array) -> mx.array:
        if x.shape[-1] != self.dims:
            raise ValueError(f"LayerNorm({self.dims}) got input with last axis {x.shape[-1]}")
        return layer_norm(x, self.get("weight"), self.get("bias"), self.eps)


def instance_norm(x: mx.array, eps: float = 1e-5) -> mx.array:
    """torch's `F.instance_norm` without running stats, channels-last: x (B, T, C) normalised
    over T per (batch, channel), biased variance, two-pass statistics in float32 summed in blocks
    (`activations.sum_last`; a sequential fp32 sum over 4000 frames of mean 3 drifts 4e-6)."""
    dtype = x.dtype
    xf = x.astype(mx.float32).transpose(0, 2, 1)  # (B, C, T): the blocked sum runs over T
    d = xf - _mean_last(xf)
    y = d * mx.rsqrt(_mean_last(d * d) + eps)
    return y.transpose(0, 2, 1).astype(dtype)
