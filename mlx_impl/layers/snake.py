"""Snake and SnakeBeta periodic activations (channels-last).

Upstream forms (all compute `x + 1 / (b + 1e-9) * sin(a * x) ** 2` per channel):
- DAC / SNAC / transformers `DacModel` (`Snake1d`): a = b = alpha, stored as is, shape (1, C, 1).
- BigVGAN v2 (`bigvgan.activations.Snake`/`SnakeBeta`, transformers Qwen2.5-Omni `SnakeBeta`):
  with `alpha_logscale=True` the parameters are stored as logs and exponentiated on every call:
  a = exp(alpha), b = exp(beta) (SnakeBeta) or b = a (Snake).

Parameters here are (C,) (converters squeeze upstream's (1, C, 1)); the 1e-9 is upstream's guard
against division by zero, added before the reciprocal in the same order.

On the CPU, where the C++ extension `mlx_impl._cpu_ext` is built, `snake` is its one fused op
(`snake`: alpha x, sin, square, times the reciprocal, plus x, in that order, with a vectorised
float32 sin; MLX 0.32.4's CPU `mx.sin` is one scalar libm call per element). Measured on a
2-core AVX-512 host shared with other jobs (load ~3-4), back to back: (1, 441000, 64) float32
0.10-0.13 s against 0.66-0.73 s composed; dac-44khz on a 10 s clip, encode 12.5 s vs 23.5 s and
decode 27.6 s vs 68.5 s. Elsewhere (Metal, CUDA, or no extension) the composed MLX ops run;
`mlx_impl._cpu_ext.cpu_kernels_info()` says which.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl import _cpu_ext

EPS = 1e-9


def _as(a: mx.array, dtype: mx.Dtype) -> mx.array:
    return a if a.dtype == dtype else a.astype(dtype)


def snake(x: mx.array, alpha: mx.array, beta: mx.array | None = None) -> mx.array:
    """x (..., C); alpha, beta (C,): x + sin(alpha x)^2 / (beta + 1e-9), beta defaulting to alpha."""
    b = alpha if beta is None else beta
    inv_beta = mx.reciprocal(b + EPS)
    if mx.default_device() == mx.cpu:
        # a module built before the op existed has no `snake`: composed until rebuilt
        fused = getattr(_cpu_ext.kernels(), "snake", None)
        dtype = mx.result_type(x, alpha, inv_beta)  # the composed form's result dtype
        fits = x.ndim >= 1 and alpha.shape == inv_beta.shape == (x.shape[-1],)
        if fused is not None and fits and dtype in (mx.float32, mx.float16, mx.bfloat16):
            _cpu_ext.record("snake", "extension")
            return fused(_as(x, dtype), _as(alpha, mx.float32), _as(inv_beta, mx.float32))
        _cpu_ext.record("snake", "composed")
    else:
        _cpu_ext.record("snake", "native")
    return x + inv_beta * mx.square(mx.sin(alpha * x))


class Snake(nn.Module):
    def __init__(self, channels: int, logscale: bool = False):
        super().__init__()
        self.logscale = logscale
        # Initial values as upstream (ones, or zeros for log scale); converted weights replace them.
        self.alpha = mx.zeros((channels,)) if logscale else mx.ones((channels,))

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, T, C)
        alpha = mx.exp(self.alpha) if self.logscale else self.alpha
        return snake(x, alpha)


class SnakeBeta(nn.Module):
    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        init = mx.zeros if logscale else mx.ones
        self.alpha = init((channels,))
        self.beta = init((channels,))

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, T, C)
        if self.logscale:
            return snake(x, mx.exp(self.alpha), mx.exp(self.beta))
        return snake(x, self.alpha, self.beta)
