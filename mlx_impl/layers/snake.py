"""Snake and SnakeBeta periodic activations (channels-last).

Upstream forms (all compute `x + 1 / (b + 1e-9) * sin(a * x) ** 2` per channel):
- DAC / SNAC / transformers `DacModel` (`Snake1d`): a = b = alpha, stored as is, shape (1, C, 1).
- BigVGAN v2 (`bigvgan.activations.Snake`/`SnakeBeta`, transformers Qwen2.5-Omni `SnakeBeta`):
  with `alpha_logscale=True` the parameters are stored as logs and exponentiated on every call:
  a = exp(alpha), b = exp(beta) (SnakeBeta) or b = a (Snake).

Parameters here are (C,) (converters squeeze upstream's (1, C, 1)); the 1e-9 is upstream's guard
against division by zero, added before the reciprocal in the same order.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

EPS = 1e-9


def snake(x: mx.array, alpha: mx.array, beta: mx.array | None = None) -> mx.array:
    """x (..., C); alpha, beta (C,): x + sin(alpha x)^2 / (beta + 1e-9), beta defaulting to alpha."""
    b = alpha if beta is None else beta
    return x + mx.reciprocal(b + EPS) * mx.square(mx.sin(alpha * x))


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
