"""BigVGAN's log-mel front end (bigvgan 2.4.1 `meldataset.mel_spectrogram`), channels-last.

Not `mlx_impl.layers.mel` (torchaudio/Vocos style): BigVGAN uses librosa's Slaney mel scale with
Slaney area normalisation, magnitude sqrt(re^2 + im^2 + 1e-9) (not |X|), and log(clamp(x, 1e-5)).
- Filterbank: `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)` (htk=False, norm="slaney"),
  `mlx_impl.layers.spectral.mel_filters` in float64 cast to float32 (upstream casts librosa's
  float32 result).
- Spectrogram: `spectral.stft` with "same" padding: reflect padding of (n_fft - hop) / 2 on both
  sides, no centring, periodic Hann window of win_size (zero-padded to n_fft in the middle, as
  torch.stft), frames = 1 + (N + 2 pad - n_fft) // hop (= N // hop for N a multiple of hop).
Layout: audio (B, N) -> (B, frames, n_mels) (upstream: (B, n_mels, frames)).
"""

from __future__ import annotations

import mlx.core as mx

from mlx_impl.layers.spectral import hann_window, mel_filters, stft

MAG_EPS = 1e-9
LOG_CLAMP = 1e-5


class BigVGANMel:
    """Callable (B, N) audio in [-1, 1] -> (B, frames, n_mels) log-mel. No parameters."""

    def __init__(self, sampling_rate: int, n_fft: int, hop_size: int, win_size: int, num_mels: int,
                 fmin: float = 0.0, fmax: float | None = None):
        self.n_fft, self.hop_size, self.win_size = n_fft, hop_size, win_size
        self.fb = mx.array(mel_filters(sampling_rate, n_fft, num_mels, fmin, fmax).T)  # (F, mels)
        self.window = mx.array(hann_window(win_size))
        self.pad = (n_fft - hop_size) // 2

    def __call__(self, audio: mx.array) -> mx.array:
        if audio.ndim != 2:
            raise ValueError(f"expected audio (batch, samples), got shape {audio.shape}")
        if audio.shape[1] <= self.pad:
            raise ValueError(f"audio of {audio.shape[1]} samples is too short for the reflect "
                             f"padding of {self.pad}; pass at least {self.pad + 1} samples")
        spec = stft(audio.astype(mx.float32), self.n_fft, self.hop_size, self.win_size,
                    self.window, padding="same")
        mag = mx.sqrt(mx.square(spec.real) + mx.square(spec.imag) + MAG_EPS)
        return mx.log(mx.maximum(mag @ self.fb, LOG_CLAMP))
