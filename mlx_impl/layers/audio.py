"""Whisper's log-mel front end in MLX.

Upstream: openai-whisper 20250625, `whisper/audio.py` (`log_mel_spectrogram`, `mel_filters`), which
uses `torch.stft(audio, 400, 160, window=torch.hann_window(400), return_complex=True)` (center=True,
reflect padding, periodic Hann window), drops the last frame, takes |X|**2, projects on the Slaney
mel filterbank stored in `whisper/assets/mel_filters.npz` (librosa 0.x `filters.mel(sr=16000,
n_fft=400, n_mels=...)`), then log10(max(., 1e-10)), floors at (global max - 8), and maps
x -> (x + 4) / 4.

Built on `mlx_impl.layers.spectral` (Hann window, STFT, mel filterbank); the constants
(SAMPLE_RATE, N_FFT, HOP_LENGTH, N_SAMPLES, ...) and `pad_or_trim` live in `weights.whisper_audio`.

Deviations, none numerical beyond fp32 rounding:
- The filterbank is computed (`spectral.mel_filters`, float64 then float32, as librosa does), not
  loaded; it equals the stored one to within 1 fp32 ulp (tests/test_layers_spectral.py).
- The output is channels-last, (n_frames, n_mels), the layout MLX's Conv1d takes; upstream
  returns (n_mels, n_frames).
"""

from __future__ import annotations

import mlx.core as mx

from weights.whisper_audio import HOP_LENGTH, N_FFT, SAMPLE_RATE
from mlx_impl.layers.spectral import hann_window, mel_filters, pad_signal, stft

CHUNK_FRAMES = 6000  # 60 s of frames per block when computing a long log-mel
WINDOW = hann_window(N_FFT)  # periodic, float32


def power_spectrum(signal: mx.array, padding: str = "center") -> mx.array:
    """|STFT|**2 with Whisper's frame, hop and window: (n_samples,) -> (frames, N_FFT // 2 + 1)."""
    spec = stft(signal.astype(mx.float32), N_FFT, HOP_LENGTH, window=WINDOW, padding=padding)
    # mx.square, not ** 2: MLX's CPU power() calls pow per element (37 vs 2 ms for a 30-s window)
    return mx.square(mx.real(spec)) + mx.square(mx.imag(spec))


def log_mel_spectrogram(
    audio: mx.array,  # (n_samples,) 16 kHz mono
    n_mels: int = 80,
    padding: int = 0,
    filters: mx.array | None = None,  # (n_mels, n_fft // 2 + 1); computed when None
) -> mx.array:
    """Whisper's log-mel spectrogram, channels-last: (n_frames, n_mels), n_frames = n // 160.

    `padding` zero samples are appended first (openai-whisper's `padding=` argument; pass
    N_SAMPLES to get a full 30 s window after the audio, as `transcribe` does).
    """
    if audio.ndim != 1:
        raise ValueError(
            f"expected 16 kHz mono audio of shape (n_samples,), got shape {audio.shape}; "
            f"average or pick a channel first"
        )
    if padding < 0:
        raise ValueError(f"padding must be >= 0 samples, got {padding}")
    if padding > 0:
        audio = mx.pad(audio, [(0, padding)])
    if filters is None:
        filters = mx.array(mel_filters(SAMPLE_RATE, N_FFT, n_mels))
    elif filters.shape != (n_mels, N_FFT // 2 + 1):
        raise ValueError(
            f"filters have shape {filters.shape}, expected ({n_mels}, {N_FFT // 2 + 1})"
        )
    n_frames = audio.shape[0] // HOP_LENGTH  # upstream drops the STFT's last frame
    if n_frames <= CHUNK_FRAMES:
        log_spec = _log_mel(power_spectrum(audio)[:-1], filters)
    else:
        # Long inputs: the STFT frames, spectrum and power of a whole hour take ~2.9 GB at once;
        # frame blocks need only their own samples (+ n_fft - hop of overlap), so compute the log
        # mel block by block and keep just the (n_frames, n_mels) result (32 KB per second).
        # Only the final clamp needs the global maximum.
        x = pad_signal(audio.astype(mx.float32), N_FFT, HOP_LENGTH)  # reflect, n_fft // 2
        blocks = []
        for f0 in range(0, n_frames, CHUNK_FRAMES):
            f1 = min(f0 + CHUNK_FRAMES, n_frames)
            block = x[f0 * HOP_LENGTH:(f1 - 1) * HOP_LENGTH + N_FFT]
            block = _log_mel(power_spectrum(block, padding="none"), filters)
            mx.eval(block)
            blocks.append(block)
        log_spec = mx.concatenate(blocks)
    log_spec = mx.maximum(log_spec, mx.max(log_spec) - 8.0)
    return (log_spec + 4.0) / 4.0


def _log_mel(power: mx.array, filters: mx.array) -> mx.array:
    return mx.log10(mx.maximum(power @ filters.T, 1e-10))  # (frames, n_mels)
