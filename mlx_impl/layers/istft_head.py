"""Vocos' iSTFT head: Linear -> (log-magnitude, phase) -> complex spectrum -> inverse STFT.

Upstream: vocos 0.1.0 `vocos/heads.py` (`ISTFTHead`) and `vocos/spectral_ops.py` (`ISTFT`).

`out` (Linear dim -> n_fft + 2) gives per frame n_fft // 2 + 1 log-magnitudes then as many phases;
magnitude = min(exp(.), 100) (upstream's safeguard), spectrum = mag * (cos p + i sin p). The
inverse is `torch.istft(center=True)` for padding "center" (output (frames - 1) * hop samples) and
Vocos' same-padded overlap-add for "same" (frames * hop samples); both use a periodic Hann window
of n_fft and divide by the overlap-added squared window (`mlx_impl.layers.spectral.istft`).
Layout: (B, frames, dim) -> (B, samples). Taps (`taps=Taps()`): `head.out` (B, frames, n_fft + 2).
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.activations import exp
from mlx_impl.layers.spectral import hann_window, istft
from mlx_impl.taps import NO_TAPS, Taps

PADDINGS = ("center", "same")
MAX_MAGNITUDE = 1e2


class ISTFTHead(nn.Module):
    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.n_fft, self.hop_length, self.padding = n_fft, hop_length, padding
        self.out = nn.Linear(dim, n_fft + 2)
        self._window = mx.array(hann_window(n_fft))  # buffer, kept out of the parameter tree

    def spectrum(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """(B, frames, dim) -> complex (B, frames, n_fft // 2 + 1)."""
        y = taps("head.out", self.out(x))
        n = self.n_fft // 2 + 1
        mag = mx.minimum(exp(y[..., :n].astype(mx.float32)), MAX_MAGNITUDE)
        p = y[..., n:].astype(mx.float32)
        return (mag * mx.cos(p)) + 1j * (mag * mx.sin(p))

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        return istft(self.spectrum(x, taps), self.n_fft, self.hop_length, self.n_fft,
                     self._window, padding=self.padding)
