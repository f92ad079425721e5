"""torch's `F.interpolate` on the time axis, channels-last, for the modes audio models use.

`linear(x, scale_factor)`: mode="linear", align_corners=False, a `scale_factor` given (not a
size), bit for bit as torch 2.13's CPU kernel computes it (`UpSampleKernel.cpp`, x86-64 build):
the output has floor(T * scale_factor) frames; output frame d reads the source position
src = r * (d + 0.5) - 0.5 (clamped at 0) with r = float32(1 / scale_factor) (torch uses the
given factor, not in/out, when one is passed), blending frames i0 = floor(src) and i0 + 1 (the
last frame repeats) as l0 * x[i0] + l1 * x[i1], l1 = src - i0, l0 = 1 - l1. torch's build
contracts both `r * (d + 0.5) - 0.5` and `l0 * x0 + (l1 * x1)` into fused multiply-adds (one
rounding each): measured, the unfused float32 arithmetic differs from torch in 1 ulp on 18 % of
the outputs of a x300 upsampling of values up to 3e4, and the fused form reproduces all of them.
That matters where the values are large phases fed to a sine (Kokoro's harmonic source: one ulp
at 3e4 rad is 2e-3 rad). The fused operations are computed in float64 numpy (a float32 product
is exact in float64, so one final rounding gives the fused result up to a double rounding of
the sum, which did not occur in the measurement), so `linear` evaluates its input.
`nearest(x, factor)`: mode="nearest" by an integer factor (each frame repeated).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np


def linear_positions(n_in: int, scale_factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index0, index1, lambda1 float32) of the output frames."""
    n_out = int(math.floor(n_in * scale_factor))
    if n_out < 1:
        raise ValueError(f"interpolating {n_in} frames by {scale_factor} gives no output frame")
    r = np.float64(np.float32(1.0 / scale_factor))
    d = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)).astype(np.float64)
    src = np.maximum((r * d - 0.5).astype(np.float32), np.float32(0))  # fused, one rounding
    i0 = src.astype(np.int64)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    l1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, i1, l1


def linear(x: mx.array, scale_factor: float) -> mx.array:  # (B, T, C) -> (B, floor(T s), C)
    i0, i1, l1 = linear_positions(x.shape[1], scale_factor)
    a = np.asarray(x.astype(mx.float32))
    l0 = (np.float32(1) - l1)[None, :, None].astype(np.float64)
    second = (l1[None, :, None] * a[:, i1]).astype(np.float32)  # rounded, then fused below
    out = (l0 * a[:, i0].astype(np.float64) + second).astype(np.float32)
    return mx.array(out).astype(x.dtype)


def nearest(x: mx.array, factor: int) -> mx.array:  # (B, T, C) -> (B, T * factor, C)
    return mx.repeat(x, factor, axis=1)
