"""Anti-aliased activation (BigVGAN v2 "alias-free" Activation1d), channels-last.

Upstream: bigvgan 2.4.1 `alias_free_activation/torch/{filter,resample,act}.py`
(`kaiser_sinc_filter1d`, `LowPassFilter1d`, `UpSample1d`, `DownSample1d`, `Activation1d`),
after StyleGAN3's filtered nonlinearities.

- `kaiser_sinc_filter1d(cutoff, half_width, k)`: Kaiser window (beta from the Kaiser formula of
  the attenuation A = 2.285 (k/2 - 1) pi 4 half_width + 7.95) times 2 cutoff sinc(2 cutoff t),
  t centred (half-integer for even k), normalised to sum 1. Computed in float64 and cast to
  float32 (torch builds it in float32; they agree within ~1e-8, tests/test_layers_alias_free.py).
- `UpSample1d(ratio, k)`: replicate padding of k / ratio - 1 frames on both sides, a depthwise
  transposed conv with the filter at stride `ratio`, times `ratio`, then upstream's crop.
- `DownSample1d(ratio, k)`: replicate padding (k/2 - 1 for even k on the left, k/2 on the
  right), a depthwise conv with the filter at stride `ratio`.
- `Activation1d(act)`: up 2x -> act -> down 2x (upstream's defaults: ratios 2, kernels 12).
The filter is shared by every channel, so both depthwise convs are written as k scalar-weighted
strided slices (polyphase for the transposed one) rather than a grouped conv; the same products
are summed (in another order: fp32 rounding). No parameters (upstream's `filter` buffers are
recomputed here and never loaded).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.layers.conv import pad1d


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> np.ndarray:
    """(kernel_size,) float32 low-pass filter, as upstream's (which returns it as (1, 1, k))."""
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    A = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    if A > 50.0:
        beta = 0.1102 * (A - 8.7)
    elif A >= 21.0:
        beta = 0.5842 * (A - 21) ** 0.4 + 0.07886 * (A - 21.0)
    else:
        beta = 0.0
    window = np.kaiser(kernel_size, beta)  # = torch.kaiser_window(periodic=False)
    time = (np.arange(-half_size, half_size) + 0.5) if even else (np.arange(kernel_size) - half_size)
    if cutoff == 0:
        return np.zeros(kernel_size, dtype=np.float32)
    f = 2 * cutoff * window * np.sinc(2 * cutoff * time)
    return (f / f.sum()).astype(np.float32)


def _fir(x: mx.array, taps: np.ndarray, stride: int, n_out: int) -> mx.array:
    """y[t] = sum_j taps[j] x[t * stride + j] for t < n_out; x (B, T, C)."""
    y = None
    for j, w in enumerate(taps.tolist()):
        piece = x[:, j: j + (n_out - 1) * stride + 1: stride] * w
        y = piece if y is None else y + piece
    return y


class UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        self.ratio = ratio
        self.kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        self.pad = self.kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (self.kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (self.kernel_size - ratio + 1) // 2
        self._filter = kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, self.kernel_size)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, T * ratio, C)
        s, k = self.ratio, self.kernel_size
        x = pad1d(x, self.pad, self.pad, "replicate")
        B, T, C = x.shape
        n = -(-k // s)  # filter taps per phase
        f = np.zeros(n * s, dtype=np.float32)
        f[:k] = self._filter * s  # upstream multiplies the output by ratio
        # transposed conv output q * s + p = sum_m f[p + m s] x[q - m], q < T + n - 1
        xz = mx.pad(x, [(0, 0), (n - 1, n - 1), (0, 0)])
        phases = [_fir(xz, f[p::s][::-1], 1, T + n - 1) for p in range(s)]
        y = mx.stack(phases, axis=2).reshape(B, (T + n - 1) * s, C)
        full = (T - 1) * s + k  # torch's conv_transpose1d length
        return y[:, self.pad_left: full - self.pad_right]


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int | None = None):
        super().__init__()
        self.ratio = ratio
        self.kernel_size = int(6 * ratio // 2) * 2 if kernel_size is None else kernel_size
        even = self.kernel_size % 2 == 0
        self.pad_left = self.kernel_size // 2 - int(even)
        self.pad_right = self.kernel_size // 2
        self._filter = kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, self.kernel_size)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, ~T / ratio, C)
        x = pad1d(x, self.pad_left, self.pad_right, "replicate")
        n_out = (x.shape[1] - self.kernel_size) // self.ratio + 1
        return _fir(x, self._filter, self.ratio, n_out)


class Activation1d(nn.Module):
    """up (ratio 2) -> act -> down (ratio 2); the activation's parameters live under `act`."""

    def __init__(self, activation: nn.Module, up_ratio: int = 2, down_ratio: int = 2,
                 up_kernel_size: int = 12, down_kernel_size: int = 12):
        super().__init__()
        self.act = activation
        self.upsample = UpSample1d(up_ratio, up_kernel_size)
        self.downsample = DownSample1d(down_ratio, down_kernel_size)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, T, C)
        return self.downsample(self.act(self.upsample(x)))


__all__ = ["Activation1d", "DownSample1d", "UpSample1d", "kaiser_sinc_filter1d"]
