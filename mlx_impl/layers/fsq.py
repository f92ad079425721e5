"""Finite scalar quantization (FSQ) as the S3 speech tokenizer v2 does it (inference: encode).

Upstream: s3tokenizer 0.3.0, `s3tokenizer/model_v2.py` `FSQCodebook.encode`:

    h = project_down(x).float()          # Linear(dim, 8), with bias
    h = round(tanh(h) * 0.9990000128746033) + 1   # each of the 8 values -> a digit in {0, 1, 2}
    index = sum_i h_i * 3**i                      # 3**8 = 6561 codes, digit 0 least significant

(upstream writes the exponents as `arange(2 ** level)`: with level 3 that is 8, the projection
width; here `n_dims` says so directly.) `round` is half-to-even in both torch and MLX; with the
0.999 factor the rounded values are -1, 0 or 1. A digit flips only where tanh(h) * 0.999 lies
within float32 rounding of +-0.5; `margins` gives that distance so tests can tell such ties from
errors. The index is summed in int32 (exact) rather than in float32 (exact too below 2**24).
There is no decoder: upstream ships no up-projection.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

SCALE = 0.9990000128746033  # upstream's literal: float32(0.999) written as a double


class FSQCodebook(nn.Module):
    """`project_down` (dim -> n_dims) then per-dimension rounding to `level` values."""

    def __init__(self, dim: int, n_dims: int = 8, level: int = 3):
        super().__init__()
        if level != 3:
            raise ValueError(f"only 3-level FSQ (round(tanh) in {{-1, 0, 1}}) exists upstream, "
                             f"got level={level}")
        self.project_down = nn.Linear(dim, n_dims)
        self.n_dims, self.level = n_dims, level

    @property
    def codebook_size(self) -> int:
        return self.level ** self.n_dims

    def bounded(self, x: mx.array) -> mx.array:  # (..., dim) -> (..., n_dims) float32
        """tanh(project_down(x)) * 0.999, the value that is rounded."""
        return mx.tanh(self.project_down(x).astype(mx.float32)) * SCALE

    def digits(self, x: mx.array) -> mx.array:  # (..., dim) -> (..., n_dims) int32 in [0, level)
        return (mx.round(self.bounded(x)) + 1).astype(mx.int32)

    def encode(self, x: mx.array) -> mx.array:  # (..., dim) -> (...) int32 in [0, level**n_dims)
        powers = mx.array([self.level ** i for i in range(self.n_dims)], dtype=mx.int32)
        return (self.digits(x) * powers).sum(axis=-1)

    def margins(self, x: mx.array) -> mx.array:  # (..., dim) -> (...) float32
        """Per frame, the smallest distance of a bounded value to a rounding boundary (+-0.5)."""
        return mx.min(mx.abs(mx.abs(self.bounded(x)) - 0.5), axis=-1)


def index_to_digits(codes: mx.array, n_dims: int = 8, level: int = 3) -> mx.array:
    """Inverse of the index: (...) int -> (..., n_dims) digits in [0, level), least significant
    first (what `FSQCodebook.digits` gives)."""
    out, c = [], codes.astype(mx.int32)
    for _ in range(n_dims):
        out.append(c % level)
        c = c // level
    return mx.stack(out, axis=-1)
