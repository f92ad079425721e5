"""Rotary position embeddings, "rotate half" (GPT-NeoX / Llama / transformers) layout.

Upstream: transformers 5.24.0 `LlamaRotaryEmbedding` + `apply_rotary_pos_emb` (the default rope
type, also used by Mistral/Voxtral, Mimi and Qwen2): inv_freq = 1 / base ** (arange(0, d, 2) / d),
angles = position * inv_freq in float32, emb = [angles | angles], and
q' = q * cos(emb) + rotate_half(q) * sin(emb) with rotate_half([a | b]) = [-b | a].

The cos/sin tables are computed once per length in numpy, so they do not depend on the device's
transcendental accuracy. The angles are rounded to float32 exactly as torch rounds them (a float32
product of position and inverse frequency): at position 1000 that rounding moves an angle by up
to ~6e-5 rad, and computing it in float64 instead differs from the reference by that much
(measured 6.9e-5 on rotated values). cos/sin of those float32 angles are then taken in float64.
`rotary_dims < head_dim` rotates only the first `rotary_dims` channels (partial rotary).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def inverse_frequencies(rotary_dims: int, base: float) -> np.ndarray:
    """(rotary_dims // 2,) float32, in torch's operation order (int arange -> float32 / dims)."""
    exponents = np.arange(0, rotary_dims, 2, dtype=np.int64).astype(np.float32) / np.float32(rotary_dims)
    # torch's float32 pow is (nearly) correctly rounded; numpy's float32 pow is not: it gave
    # base**x 2 ulp away at 2 of 32 entries for base 1e4, 64 dims (2e-4 on rotated values at
    # position 1916, measured vs s3tokenizer v2). The power in float64 rounded once matches torch
    # there exactly (and at all but 0-4 entries over bases 1e4-1e8, 32-256 dims).
    power = (np.float64(base) ** exponents.astype(np.float64)).astype(np.float32)
    return (np.float32(1.0) / power).astype(np.float32)


def cos_sin(positions: np.ndarray, rotary_dims: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin tables (T, rotary_dims) float32 for integer `positions` (T,)."""
    inv = inverse_frequencies(rotary_dims, base)
    angles = np.asarray(positions).astype(np.float32)[:, None] * inv[None, :]  # float32, as torch
    angles = np.concatenate([angles, angles], axis=-1).astype(np.float64)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rotate_half(x: mx.array) -> mx.array:
    half = x.shape[-1] // 2
    return mx.concatenate([-x[..., half:], x[..., :half]], axis=-1)


class RotaryEmbedding:
    """Applies RoPE to (B, H, T, D) queries/keys at positions offset..offset+T-1.

    Not an nn.Module: it holds no parameters (the tables are computed buffers, kept out of the
    parameter tree so checkpoints map one to one). Tables grow on demand.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, rotary_dims: int | None = None):
        self.head_dim = head_dim
        self.rotary_dims = head_dim if rotary_dims is None else rotary_dims
        if self.rotary_dims % 2 or self.rotary_dims > head_dim:
            raise ValueError(f"rotary_dims must be even and <= head_dim ({head_dim}), "
                             f"got {self.rotary_dims}")
        self.base = float(base)
        self._cos = self._sin = None  # (L, rotary_dims) float32, L = cached length

    def tables(self, offset: int, length: int, dtype=mx.float32) -> tuple[mx.array, mx.array]:
        end = offset + length
        if self._cos is None or self._cos.shape[0] < end:
            size = max(end, 2 * (0 if self._cos is None else self._cos.shape[0]), 256)
            cos, sin = cos_sin(np.arange(size), self.rotary_dims, self.base)
            self._cos, self._sin = mx.array(cos), mx.array(sin)
        return self._cos[offset:end].astype(dtype), self._sin[offset:end].astype(dtype)

    def __call__(self, x: mx.array, offset: int = 0) -> mx.array:  # (B, H, T, D) -> same
        cos, sin = self.tables(offset, x.shape[-2], x.dtype)
        r = self.rotary_dims
        if r == x.shape[-1]:
            return x * cos + rotate_half(x) * sin
        head, tail = x[..., :r], x[..., r:]
        return mx.concatenate([head * cos + rotate_half(head) * sin, tail], axis=-1)
