"""torchaudio-style magnitude mel spectrogram with log, as Vocos' `MelSpectrogramFeatures`.

Upstream: torchaudio 2.11 `transforms.MelSpectrogram` (`Spectrogram` + `MelScale`,
`functional.melscale_fbanks`) and vocos 0.1.0 `vocos/feature_extractors.py`
(`MelSpectrogramFeatures`, `modules.safe_log`).

- Filterbank (`melscale_fbanks`): HTK mel scale `2595 log10(1 + f / 700)`, `n_mels + 2` points
  evenly spaced in mel from f_min to f_max (default sr / 2), triangles over the FFT bin
  frequencies `linspace(0, sr // 2, n_fft // 2 + 1)`, no area normalisation (norm=None).
  Computed in float64 and cast to float32 (torchaudio computes in float32; they agree within
  ~1e-7, tests/test_layers_vocos.py).
- Spectrogram: periodic Hann window of n_fft, |STFT| (power=1), `center=True` with reflect
  padding of n_fft // 2 ("center"), or Vocos' "same": reflect padding of (n_fft - hop) // 2 on
  both sides and no centring (frames = N // hop for N a multiple of hop).
- `log_mel`: log(clip(mel, 1e-7)) (Vocos `safe_log`).
Layout: audio (B, N) -> (B, frames, n_mels) (torchaudio: (B, n_mels, frames)).
"""

from __future__ import annotations


import mlx.core as mx
import numpy as np

from mlx_impl.layers.conv import pad1d
from mlx_impl.layers.stft import hann_window, stft

PADDINGS = ("center", "same")
LOG_CLIP = 1e-7


def hz_to_mel_htk(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz_htk(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int,
                    sample_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) float32 triangular HTK filterbank, torchaudio's norm=None."""
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(hz_to_mel_htk(f_min), hz_to_mel_htk(f_max), n_mels + 2)
    f_pts = mel_to_hz_htk(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


class MelSpectrogram:
    """Callable (B, N) audio -> (B, frames, n_mels) magnitude mel (no log). No parameters."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                 padding: str = "center", f_min: float = 0.0, f_max: float | None = None,
                 fb: np.ndarray | None = None):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.padding = n_mels, padding
        f_max = sample_rate / 2 if f_max is None else f_max
        want = (n_fft // 2 + 1, n_mels)
        if fb is None:  # a checkpoint's stored filterbank (torchaudio's fp32 one) may be passed
            fb = melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate)
        if tuple(fb.shape) != want:
            raise ValueError(f"mel filterbank has shape {tuple(fb.shape)}, expected {want}")
        self.fb = mx.array(np.asarray(fb, dtype=np.float32))  # (n_freqs, n_mels)
        self.window = hann_window(n_fft)

    def __call__(self, audio: mx.array) -> mx.array:
        if audio.ndim != 2:
            raise ValueError(f"expected audio (batch, samples), got shape {audio.shape}")
        if self.padding == "same":
            pad = (self.n_fft - self.hop_length) // 2
            if audio.shape[1] <= pad:
                raise ValueError(f"audio of {audio.shape[1]} samples is too short for the reflect "
                                 f"padding of {pad}; pass at least {pad + 1} samples")
            audio = pad1d(audio[:, :, None], pad, pad, "reflect")[:, :, 0]
        spec = stft(audio.astype(mx.float32), self.n_fft, self.hop_length, self.n_fft,
                    self.window, center=self.padding == "center", pad_mode="reflect")
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


__all__ = ["MelSpectrogram", "log_mel", "melscale_fbanks", "safe_log"]
