"""Factorised, L2-normalised residual vector quantizer (inference), channels-last.

Upstream: transformers 5.24.0 `models/dac/modeling_dac.py` (`DacVectorQuantize`,
`DacResidualVectorQuantizer`) and `snac` 1.2.1 `snac/vq.py` (`VectorQuantize`,
`ResidualVectorQuantize`), both from Descript's `dac/nn/quantize.py` (ViT-VQGAN tricks).

One stage (`FactorizedVQ`):
- optional average pooling of the time axis by `stride` (SNAC's multi-scale codes; torch
  `avg_pool1d(z, stride, stride)`: the remainder frames are dropped);
- `in_proj`, a 1x1 conv (D -> d, weight norm folded at conversion) to the low-dimensional
  code space ("factorised codes");
- nearest codeword by cosine similarity: latents and codebook rows L2-normalised (torch
  `F.normalize`: x / max(||x||, 1e-12)), then the argmax of upstream's own distance expression,
  kept operation for operation so that float32 rounding, and so near-ties, fall the same way:
  `distance="descript"` (snac, Descript's dac): -(|e|^2 - 2 e.c + |c|^2);
  `distance="transformers-dac"`: -(|e|^2 - 2 e.c) + |c|^2 (transformers flips the sign of the
  codebook term; |c|^2 = 1 after normalisation, so only rounding differs). Ties go to the lowest
  index (torch `max(dim)` and `mx.argmax` both return the first maximum);
- the *un-normalised* codebook row of the code, `out_proj` (d -> D), repeated `stride` times in
  time (torch `repeat_interleave`).
Encoding keeps upstream's straight-through form `z_e + (z_q - z_e)` (a no-op in exact arithmetic,
not in float32), so the encoder-side quantized latents equal upstream's to the last bit pattern
of the arithmetic; decoding from codes uses `z_q` directly, as upstream's `from_codes`.

The residual quantizer (`ResidualFactorizedVQ`) runs the stages on what the previous ones left
(`residual - out_i`) and sums the stage outputs; `encode(n_quantizers)` uses the first stages
only (DAC's variable bitrate). Attribute names (`quantizers.{i}.in_proj`, `.out_proj`,
`.codebook.weight`) equal both upstream checkpoints' keys.

Layout: activations (B, T, D); codes (B, n_q, T) for equal-rate stages (DAC) or one (B, T_i)
array per stage (SNAC, whose stages run at T / stride_i frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
from mlx import nn

DISTANCES = ("descript", "transformers-dac")
NORMALIZE_EPS = 1e-12  # torch F.normalize's default


def l2_normalize(x: mx.array) -> mx.array:
    """torch `F.normalize(x, dim=-1)`: x / max(||x||_2, 1e-12)."""
    norm = mx.sqrt((x * x).sum(axis=-1, keepdims=True))
    return x / mx.maximum(norm, NORMALIZE_EPS)


def nearest_code(latents: mx.array, codebook: mx.array, distance: str) -> mx.array:
    """latents (..., d), codebook (n, d) -> (...) int32 index of the closest row by cosine."""
    shape = latents.shape[:-1]
    e = l2_normalize(latents.reshape(-1, latents.shape[-1]).astype(mx.float32))
    c = l2_normalize(codebook.astype(mx.float32))
    e2 = (e * e).sum(axis=1, keepdims=True)  # (N, 1)
    c2 = (c * c).sum(axis=1)[None, :]  # (1, n)
    dot2 = (2 * e) @ c.T  # upstream: `2 * encodings @ codebook.t()` = (2 e) @ c^T
    if distance == "descript":
        score = -((e2 - dot2) + c2)
    elif distance == "transformers-dac":
        score = -(e2 - dot2) + c2
    else:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    return mx.argmax(score, axis=-1).astype(mx.int32).reshape(shape)


def avg_pool_time(x: mx.array, stride: int) -> mx.array:
    """torch `avg_pool1d(x, stride, stride)` over the time axis of x (B, T, D)."""
    if stride == 1:
        return x
    B, T, D = x.shape
    n = T // stride
    if n == 0:
        raise ValueError(f"{T} frames are fewer than the quantizer stride {stride}; pass longer audio")
    return x[:, : n * stride].reshape(B, n, stride, D).mean(axis=2)


def repeat_time(x: mx.array, stride: int) -> mx.array:
    """torch `repeat_interleave(stride, dim=-1)` on the time axis of x (B, T, D)."""
    return x if stride == 1 else mx.repeat(x, stride, axis=1)


@dataclass(frozen=True)
class StageOutput:
    quantized: mx.array  # (B, T, D) stage output after out_proj (and time repeat)
    codes: mx.array  # (B, T / stride) int32
    latents: mx.array  # (B, T / stride, d) projected latents (in_proj output)


class Codebook(nn.Module):
    """`nn.Embedding(codebook_size, codebook_dim)`: parameter `weight` (n, d)."""

    def __init__(self, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.weight = mx.zeros((codebook_size, codebook_dim))


class FactorizedVQ(nn.Module):
    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, stride: int = 1,
                 distance: str = "descript"):
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
        self.codebook_size, self.codebook_dim = codebook_size, codebook_dim
        self.stride, self.distance = stride, distance
        self.in_proj = nn.Conv1d(input_dim, codebook_dim, 1)  # weight (d, 1, D)
        self.out_proj = nn.Conv1d(codebook_dim, input_dim, 1)  # weight (D, 1, d)
        self.codebook = Codebook(codebook_size, codebook_dim)

    def encode(self, z: mx.array) -> StageOutput:  # z (B, T, D)
        z = avg_pool_time(z, self.stride)
        z_e = self.in_proj(z)  # (B, T', d)
        codes = nearest_code(z_e, self.codebook.weight, self.distance)
        z_q = self.codebook.weight[codes].astype(z_e.dtype)
        z_q = z_e + (z_q - z_e)  # upstream's straight-through form, same float32 rounding
        out = repeat_time(self.out_proj(z_q), self.stride)
        return StageOutput(out, codes, z_e)

    def decode(self, codes: mx.array) -> mx.array:  # codes (B, T') -> (B, T' * stride, D)
        z_q = self.codebook.weight[codes]
        return repeat_time(self.out_proj(z_q), self.stride)


class ResidualFactorizedVQ(nn.Module):
    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int,
                 strides: tuple[int, ...], distance: str = "descript"):
        super().__init__()
        self.input_dim, self.codebook_size, self.codebook_dim = input_dim, codebook_size, codebook_dim
        self.strides = tuple(strides)
        self.quantizers = [FactorizedVQ(input_dim, codebook_size, codebook_dim, s, distance)
                           for s in self.strides]

    @property
    def n_codebooks(self) -> int:
        return len(self.quantizers)

    def encode(self, z: mx.array, n_quantizers: int | None = None):
        """z (B, T, D) -> (quantized (B, T, D), [codes_i (B, T_i)], [latents_i (B, T_i, d)]).

        The quantized sum is upstream's: `0 + out_0 + out_1 + ...` in stage order."""
        n = self.n_codebooks if n_quantizers is None else n_quantizers
        if not 1 <= n <= self.n_codebooks:
            raise ValueError(f"n_quantizers={n}; this quantizer has 1 to {self.n_codebooks} stages")
        if z.shape[-1] != self.input_dim:
            raise ValueError(f"quantizer input has {z.shape[-1]} channels, expected {self.input_dim}")
        quantized, residual, codes, latents = None, z, [], []
        for vq in self.quantizers[:n]:
            st = vq.encode(residual)
            quantized = st.quantized if quantized is None else quantized + st.quantized
            residual = residual - st.quantized
            codes.append(st.codes)
            latents.append(st.latents)
        return quantized, codes, latents

    def decode(self, codes: list[mx.array]) -> mx.array:
        """[codes_i (B, T_i)] of the first len(codes) stages -> (B, T, D), summed in stage order."""
        self.check_codes(codes)
        out = None
        for vq, c in zip(self.quantizers, codes):
            q = vq.decode(c)
            out = q if out is None else out + q
        return out

    def check_codes(self, codes: list[mx.array]) -> None:
        """Raise a clear error for codes no stage can decode (count, shape, dtype, range)."""
        if not 1 <= len(codes) <= self.n_codebooks:
            raise ValueError(f"got codes for {len(codes)} stages; this model has 1 to "
                             f"{self.n_codebooks}")
        frames = None
        for i, (c, s) in enumerate(zip(codes, self.strides)):
            if c.ndim != 2:
                raise ValueError(f"codes of stage {i} must be (batch, frames), got shape {c.shape}")
            if not mx.issubdtype(c.dtype, mx.integer):
                raise ValueError(f"codes must be integers, got dtype {c.dtype} at stage {i}")
            if c.size == 0:
                raise ValueError(f"codes of stage {i} are empty (shape {c.shape}); encode some "
                                 "audio first")
            if c.shape[0] != codes[0].shape[0]:
                raise ValueError(f"stage {i} has batch {c.shape[0]}, stage 0 has {codes[0].shape[0]}")
            n = c.shape[1] * s
            if frames is not None and n != frames:
                want = [frames // st for st in self.strides[: len(codes)]]
                raise ValueError(f"stage {i} has {c.shape[1]} frames at stride {s}; with the "
                                 f"strides {list(self.strides)} the stages need {want} frames")
            frames = n
            lo, hi = mx.min(c).item(), mx.max(c).item()
            if lo < 0 or hi >= self.codebook_size:
                raise ValueError(f"codes out of range at stage {i}: values span [{lo}, {hi}], "
                                 f"codebooks have {self.codebook_size} entries (valid 0.."
                                 f"{self.codebook_size - 1})")
