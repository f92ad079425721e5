"""BigVGAN's log-mel front end (bigvgan 2.4.1 `meldataset.mel_spectrogram`), channels-last.

Not `mlx_impl.layers.mel` (torchaudio/Vocos style): BigVGAN uses librosa's Slaney mel scale with
Slaney area normalisation, magnitude sqrt(re^2 + im^2 + 1e-9) (not |X|), and log(clamp(x, 1e-5)).
- Filterbank: `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)` (htk=False, norm="slaney"),
  written here in float64 and cast to float32 (upstream casts librosa's float32 result).
- Spectrogram: reflect padding of (n_fft - hop) / 2 on both sides, no centring, periodic Hann
  window of win_size (zero-padded to n_fft in the middle, as torch.stft), frames = 1 + (N + 2 pad
  - n_fft) // hop (= N // hop for N a multiple of hop).
Layout: audio (B, N) -> (B, frames, n_mels) (upstream: (B, n_mels, frames)).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_impl.layers.conv import pad1d
from mlx_impl.layers.stft import hann_window, stft

MAG_EPS = 1e-9
LOG_CLAMP = 1e-5
_F_SP = 200.0 / 3  # Slaney: linear 66.67 Hz per mel below 1 kHz
_MIN_LOG_HZ, _LOGSTEP = 1000.0, np.log(6.4) / 27.0


def hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    mel = f / _F_SP
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(f >= _MIN_LOG_HZ, min_log_mel + np.log(np.maximum(f, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(m >= min_log_mel, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - min_log_mel)), _F_SP * m)


def slaney_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32, librosa.filters.mel's matrix transposed."""
    fmax = sr / 2.0 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.T.astype(np.float32)


class BigVGANMel:
    """Callable (B, N) audio in [-1, 1] -> (B, frames, n_mels) log-mel. No parameters."""

    def __init__(self, sampling_rate: int, n_fft: int, hop_size: int, win_size: int, num_mels: int,
                 fmin: float = 0.0, fmax: float | None = None):
        self.n_fft, self.hop_size, self.win_size = n_fft, hop_size, win_size
        self.fb = mx.array(slaney_mel_filters(sampling_rate, n_fft, num_mels, fmin, fmax))
        self.window = hann_window(win_size)
        self.pad = (n_fft - hop_size) // 2

    def __call__(self, audio: mx.array) -> mx.array:
        if audio.ndim != 2:
            raise ValueError(f"expected audio (batch, samples), got shape {audio.shape}")
        if audio.shape[1] <= self.pad:
            raise ValueError(f"audio of {audio.shape[1]} samples is too short for the reflect "
                             f"padding of {self.pad}; pass at least {self.pad + 1} samples")
        x = pad1d(audio.astype(mx.float32)[:, :, None], self.pad, self.pad, "reflect")[:, :, 0]
        spec = stft(x, self.n_fft, self.hop_size, self.win_size, self.window, center=False)
        mag = mx.sqrt(mx.square(spec.real) + mx.square(spec.imag) + MAG_EPS)
        return mx.log(mx.maximum(mag @ self.fb, LOG_CLAMP))
