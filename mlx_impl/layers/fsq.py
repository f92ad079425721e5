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

import math

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


class LevelFSQ:
    """Finite scalar quantization with per-dimension `levels` (Mentzer et al. 2023), inference,
    as lucidrains' vector-quantize-pytorch `FSQ` (copied into spark-tts-lib 0.2.1
    `modules/fsq/finite_scalar_quantization.py`): no parameters (projections live outside).

    bound(z) = tanh(z + atanh(offset / half_l)) * half_l - offset with half_l = (L - 1) *
    (1 + 1e-3) / 2 and offset 0.5 for even L (else 0); codes = round(bound(z)) / (L // 2)
    (half-to-even, as torch.round); index = sum_i (codes_i * (L_i // 2) + L_i // 2) * basis_i,
    basis = cumprod([1, L_0, L_1, ...]) (dimension 0 least significant); the float sum is exact
    (integers far below 2**24) and cast to int32 as upstream."""

    def __init__(self, levels: tuple[int, ...] | list[int], eps: float = 1e-3):
        self.levels = tuple(int(v) for v in levels)
        lv = mx.array(self.levels, dtype=mx.int32)
        self._half_l = (lv - 1).astype(mx.float32) * (1 + eps) / 2
        self._offset = mx.where(lv % 2 == 0, 0.5, 0.0).astype(mx.float32)
        self._shift = mx.arctanh(self._offset / self._half_l)
        self._half_width = (lv // 2).astype(mx.float32)
        basis = [1]
        for v in self.levels[:-1]:
            basis.append(basis[-1] * v)
        self._basis = mx.array(basis, dtype=mx.int32)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def bound(self, z: mx.array) -> mx.array:
        return mx.tanh(z + self._shift) * self._half_l - self._offset

    def quantize(self, z: mx.array) -> mx.array:  # (..., d) -> codes in [-1, 1]
        return mx.round(self.bound(z.astype(mx.float32))) / self._half_width

    def codes_to_indices(self, codes: mx.array) -> mx.array:  # (..., d) -> (...) int32
        zhat = codes * self._half_width + self._half_width
        return (zhat * self._basis.astype(mx.float32)).sum(axis=-1).astype(mx.int32)

    def encode(self, z: mx.array) -> tuple[mx.array, mx.array]:
        """z (..., d) -> (codes (..., d), indices (...))."""
        codes = self.quantize(z)
        return codes, self.codes_to_indices(codes)

    def indices_to_codes(self, indices: mx.array) -> mx.array:  # (...) int -> (..., d)
        i = indices.astype(mx.int32)[..., None]
        if indices.size and (mx.min(indices).item() < 0
                             or mx.max(indices).item() >= self.codebook_size):
            raise ValueError(f"FSQ indices must lie in [0, {self.codebook_size}), got "
                             f"[{mx.min(indices).item()}, {mx.max(indices).item()}]")
        level = (i // self._basis) % mx.array(self.levels, dtype=mx.int32)
        return (level.astype(mx.float32) - self._half_width) / self._half_width
