"""torch's `F.interpolate` on the time axis, channels-last, for the modes audio models use.

`linear(x, scale_factor)`: mode="linear", align_corners=False, a `scale_factor` given (not a
size), as torch 2.13 computes it on the CPU: the output has floor(T * scale_factor) frames;
output frame d reads the source position src = r * (d + 0.5) - 0.5 (clamped at 0), with
r = float32(1 / scale_factor) (torch uses the given factor, not in/out, when one is passed), and
blends frames floor(src) and floor(src) + 1 (the last frame repeats) by the fraction. Positions
and weights are computed in float32 numpy, the arithmetic torch's kernel does in float.
`nearest(x, factor)`: mode="nearest" by an integer factor (each frame repeated).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np


def linear_positions(n_in: int, scale_factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index0, index1, lambda1) of the output frames: out = (1 - l1) x[i0] + l1 x[i1]."""
    n_out = int(math.floor(n_in * scale_factor))
    if n_out < 1:
        raise ValueError(f"interpolating {n_in} frames by {scale_factor} gives no output frame")
    r = np.float32(1.0 / scale_factor)
    src = r * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    src = np.maximum(src, np.float32(0))
    i0 = src.astype(np.int64)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    l1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, i1, l1


def linear(x: mx.array, scale_factor: float) -> mx.array:  # (B, T, C) -> (B, floor(T s), C)
    i0, i1, l1 = linear_positions(x.shape[1], scale_factor)
    lam1 = mx.array(l1)[None, :, None]
    lam0 = mx.array((np.float32(1) - l1).astype(np.float32))[None, :, None]
    return (lam0 * mx.take(x, mx.array(i0.astype(np.int32)), axis=1)
            + lam1 * mx.take(x, mx.array(i1.astype(np.int32)), axis=1))


def nearest(x: mx.array, factor: int) -> mx.array:  # (B, T, C) -> (B, T * factor, C)
    return mx.repeat(x, factor, axis=1)
