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

Variants:
- Llama-3 frequency scaling (`Llama3Scaling`, transformers `rope_type: "llama3"`,
  `modeling_rope_utils._compute_llama3_parameters`): wavelengths above
  original_max_position_embeddings / low_freq_factor are divided by `factor`, those below
  original / high_freq_factor kept, those between blended. Reproduced in float32 in torch's
  operation order (`a / tensor` is `tensor.reciprocal() * a` there), so the scaled inverse
  frequencies equal upstream's bit for bit. `scaling_from_config` reads a transformers
  `rope_parameters` / `rope_scaling` dict.
- Interleaved (GPT-J / torchtune / `mx.fast.rope(traditional=True)`) layout, `interleaved=True`:
  channel pairs (2i, 2i+1) rotate by angle i, as transformers' GPT-J `rotate_every_two`.
- Off the CPU (Metal/CUDA) the rotation is `mx.fast.rope` with these inverse frequencies (angles
  and cos/sin then come from the device's float32 math: measured 7.2e-7 from the tables on
  rotated values of |x| <= 9 at positions 1980-2019, through MLX's CPU implementation of the
  op); the CPU keeps the tables (closest to torch).
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Llama3Scaling:
    """transformers' `rope_type: "llama3"` parameters (Llama 3.1/3.2: 8, 1, 4, 8192)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int

    def __post_init__(self):
        if self.high_freq_factor <= self.low_freq_factor:
            raise ValueError(f"llama3 rope scaling needs high_freq_factor > low_freq_factor, got "
                             f"{self.high_freq_factor} <= {self.low_freq_factor}")

    def apply(self, inv: np.ndarray) -> np.ndarray:
        """Scaled (n,) float32 inverse frequencies, in upstream's float32 operation order."""
        f32 = np.float32
        old = f32(self.original_max_position_embeddings)
        low_wavelen = self.original_max_position_embeddings / self.low_freq_factor
        high_wavelen = self.original_max_position_embeddings / self.high_freq_factor
        wavelen = (f32(1) / inv) * f32(2 * np.pi)
        scaled = np.where(wavelen > f32(low_wavelen), inv / f32(self.factor), inv)
        smooth = ((f32(1) / wavelen) * old - f32(self.low_freq_factor)) / f32(
            self.high_freq_factor - self.low_freq_factor)
        smoothed = (f32(1) - smooth) * scaled / f32(self.factor) + smooth * scaled
        medium = ~(wavelen < f32(high_wavelen)) & ~(wavelen > f32(low_wavelen))
        return np.where(medium, smoothed, scaled).astype(np.float32)


def scaling_from_config(rope: dict | None) -> Llama3Scaling | None:
    """The scaling of a transformers `rope_parameters` (or legacy `rope_scaling`) dict: None for
    the default rope; an unsupported `rope_type` is an error naming the supported ones."""
    if not rope:
        return None
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "default":
        return None
    if kind == "llama3":
        return Llama3Scaling(float(rope["factor"]), float(rope["low_freq_factor"]),
                             float(rope["high_freq_factor"]),
                             int(rope["original_max_position_embeddings"]))
    raise ValueError(f"rope_type {kind!r} is not implemented; supported: 'default', 'llama3' "
                     "(add it to mlx_impl/layers/rope.py with a test against transformers)")


def cos_sin(positions: np.ndarray, rotary_dims: int, base: float,
            scaling: Llama3Scaling | None = None,
            interleaved: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin tables (T, rotary_dims) float32 for integer `positions` (T,): each angle twice,
    as [a | a] (rotate-half) or [a0 a0 a1 a1 ...] (interleaved)."""
    inv = inverse_frequencies(rotary_dims, base)
    if scaling is not None:
        inv = scaling.apply(inv)
    angles = np.asarray(positions).astype(np.float32)[:, None] * inv[None, :]  # float32, as torch
    if interleaved:
        angles = np.repeat(angles, 2, axis=-1).astype(np.float64)
    else:
        angles = np.concatenate([angles, angles], axis=-1).astype(np.float64)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rotate_half(x: mx.array) -> mx.array:
    half = x.shape[-1] // 2
    return mx.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rotate_every_two(x: mx.array) -> mx.array:
    """[x0 x1 x2 x3 ...] -> [-x1 x0 -x3 x2 ...] (the interleaved layout's rotate_half)."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return mx.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)


class RotaryEmbedding:
    """Applies RoPE to (B, H, T, D) queries/keys at positions offset..offset+T-1.

    Not an nn.Module: it holds no parameters (the tables are computed buffers, kept out of the
    parameter tree so checkpoints map one to one). Tables grow on demand.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, rotary_dims: int | None = None,
                 scaling: Llama3Scaling | None = None, interleaved: bool = False):
        self.head_dim = head_dim
        self.rotary_dims = head_dim if rotary_dims is None else rotary_dims
        if self.rotary_dims % 2 or self.rotary_dims > head_dim:
            raise ValueError(f"rotary_dims must be even and <= head_dim ({head_dim}), "
                             f"got {self.rotary_dims}")
        self.base = float(base)
        self.scaling = scaling
        self.interleaved = interleaved
        self._cos = self._sin = None  # (L, rotary_dims) float32, L = cached length
        self._periods = None  # (rotary_dims // 2,) 1 / inverse frequency, for mx.fast.rope

    def tables(self, offset: int, length: int, dtype=mx.float32) -> tuple[mx.array, mx.array]:
        end = offset + length
        if self._cos is None or self._cos.shape[0] < end:
            size = max(end, 2 * (0 if self._cos is None else self._cos.shape[0]), 256)
            cos, sin = cos_sin(np.arange(size), self.rotary_dims, self.base, self.scaling,
                               self.interleaved)
            self._cos, self._sin = mx.array(cos), mx.array(sin)
        return self._cos[offset:end].astype(dtype), self._sin[offset:end].astype(dtype)

    def _fast(self, x: mx.array, offset: int) -> mx.array:
        if self._periods is None:
            inv = inverse_frequencies(self.rotary_dims, self.base)
            if self.scaling is not None:
                inv = self.scaling.apply(inv)
            self._periods = mx.array((1.0 / inv.astype(np.float64)).astype(np.float32))
        return mx.fast.rope(x, self.rotary_dims, traditional=self.interleaved, base=None,
                            scale=1.0, offset=offset, freqs=self._periods)

    def __call__(self, x: mx.array, offset: int = 0) -> mx.array:  # (B, H, T, D) -> same
        if mx.default_device() != mx.cpu:
            return self._fast(x, offset)
        cos, sin = self.tables(offset, x.shape[-2], x.dtype)
        rotate = rotate_every_two if self.interleaved else rotate_half
        r = self.rotary_dims
        if r == x.shape[-1]:
            return x * cos + rotate(x) * sin
        head, tail = x[..., :r], x[..., r:]
        return mx.concatenate([head * cos + rotate(head) * sin, tail], axis=-1)
