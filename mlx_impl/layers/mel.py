"""torchaudio-style magnitude mel spectrogram with log, as Vocos' `MelSpectrogramFeatures`.

Upstream: torchaudio 2.11 `transforms.MelSpectrogram` (`Spectrogram` + `MelScale`,
`functional.melscale_fbanks`) and vocos 0.1.0 `vocos/feature_extractors.py`
(`MelSpectrogramFeatures`, `modules.safe_log`).

- Filterbank: `spectral.mel_filters(mel_scale="htk", norm=None)`, torchaudio's default (HTK mel
  scale, no area normalisation), from f_min to f_max (default sr / 2); or a checkpoint's stored one.
- Spectrogram: periodic Hann window of n_fft, |STFT| (power=1), padding "center" (reflect padding
  of n_fft // 2) or Vocos' "same" (reflect padding of (n_fft - hop) // 2, no centring: frames =
  N // hop for N a multiple of hop); both are `spectral.stft` paddings.
- `log_mel`: log(clip(mel, 1e-7)) (Vocos `safe_log`).
Layout: audio (B, N) -> (B, frames, n_mels) (torchaudio: (B, n_mels, frames)).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_impl.layers.spectral import hann_window, mel_filters, stft

PADDINGS = ("center", "same")
LOG_CLIP = 1e-7


class MelSpectrogram:
    """Callable (B, N) audio -> (B, frames, n_mels) magnitude mel (no log). No parameters."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                 padding: str = "center", f_min: float = 0.0, f_max: float | None = None,
                 fb: np.ndarray | None = None):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.padding = n_mels, padding
        want = (n_fft // 2 + 1, n_mels)
        if fb is None:  # a checkpoint's stored filterbank (torchaudio's fp32 one) may be passed
            fb = mel_filters(sample_rate, n_fft, n_mels, f_min, f_max, mel_scale="htk",
                             norm=None).T
        if tuple(fb.shape) != want:
            raise ValueError(f"mel filterbank has shape {tuple(fb.shape)}, expected {want}")
        self.fb = mx.array(np.asarray(fb, dtype=np.float32))  # (n_freqs, n_mels)
        self.window = mx.array(hann_window(n_fft))

    def __call__(self, audio: mx.array) -> mx.array:
        if audio.ndim != 2:
            raise ValueError(f"expected audio (batch, samples), got shape {audio.shape}")
        pad = self.n_fft // 2 if self.padding == "center" else (self.n_fft - self.hop_length) // 2
        if audio.shape[1] <= pad:
            raise ValueError(f"audio of {audio.shape[1]} samples is too short for the reflect "
                             f"padding of {pad}; pass at least {pad + 1} samples")
        spec = stft(audio.astype(mx.float32), self.n_fft, self.hop_length, window=self.window,
                    padding=self.padding)
        return mx.abs(spec) @ self.fb  # (B, frames, n_mels)

    def n_frames(self, n_samples: int) -> int:
        if self.padding == "center":
            return n_samples // self.hop_length + 1
        pad = (self.n_fft - self.hop_length) // 2
        return 1 + (n_samples + 2 * pad - self.n_fft) // self.hop_length


def safe_log(x: mx.array, clip_val: float = LOG_CLIP) -> mx.array:
    return mx.log(mx.maximum(x, clip_val))


def log_mel(audio: mx.array, mel: MelSpectrogram) -> mx.array:
    """Vocos' features: log(clip(mel(audio), 1e-7)), (B, frames, n_mels)."""
    return safe_log(mel(audio))


__all__ = ["MelSpectrogram", "log_mel", "safe_log"]
