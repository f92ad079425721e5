"""Whisper's log-mel front end in MLX.

Upstream: openai-whisper 20250625, `whisper/audio.py` (`log_mel_spectrogram`, `mel_filters`), which
uses `torch.stft(audio, 400, 160, window=torch.hann_window(400), return_complex=True)` (center=True,
reflect padding, periodic Hann window), drops the last frame, takes |X|**2, projects on the Slaney
mel filterbank stored in `whisper/assets/mel_filters.npz` (librosa 0.x `filters.mel(sr=16000,
n_fft=400, n_mels=...)`), then log10(max(., 1e-10)), floors at (global max - 8), and maps
x -> (x + 4) / 4.

Deviations, none numerical beyond fp32 rounding:
- The filterbank is computed here (`mel_filters`, float64 then float32, as librosa does), not
  loaded; it equals the stored one to within 1 fp32 ulp (tests/test_layers_audio.py).
- The output is channels-last, (n_frames, n_mels), the layout MLX's Conv1d takes; upstream
  returns (n_mels, n_frames).
- The FFT is `mx.fft.rfft` over frames cut with `as_strided`; frames and window are fp32.
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a 30-second chunk
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 frames in a mel spectrogram input


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    mel = f / f_sp
    log_region = f >= min_log_hz
    mel[log_region] = min_log_mel + np.log(f[log_region] / min_log_hz) / logstep
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    f = f_sp * m
    log_region = m >= min_log_mel
    f[log_region] = min_log_hz * np.exp(logstep * (m[log_region] - min_log_mel))
    return f


def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular mel filterbank, (n_mels, n_fft // 2 + 1) fp32.

    Same definition as librosa's `filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)` (fmin=0,
    fmax=sr/2, htk=False, norm='slaney'): triangles whose corners are n_mels + 2 points equally
    spaced in mel, each scaled by 2 / (its width in Hz) so every filter has unit area.
    """
    if n_mels < 1 or n_fft < 2 or sr <= 0:
        raise ValueError(
            f"mel_filters needs sr > 0, n_fft >= 2, n_mels >= 1; got {sr}, {n_fft}, {n_mels}"
        )
    fft_freqs = np.arange(n_fft // 2 + 1, dtype=np.float64) * (sr / n_fft)
    mel_pts = np.linspace(
        _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sr / 2.0]))[0], n_mels + 2
    )
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)  # (n_mels + 1,)
    ramps = hz_pts[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_freqs)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return weights.astype(np.float32)


CHUNK_FRAMES = 6000  # 60 s of frames per block when computing a long log-mel


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window, as `torch.hann_window(n)`: 0.5 - 0.5 cos(2 pi k / n), k < n."""
    k = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)).astype(np.float32)


def pad_or_trim(audio: mx.array, length: int = N_SAMPLES) -> mx.array:
    """Zero-pad or cut the last axis to `length` samples (openai-whisper's `pad_or_trim`)."""
    n = audio.shape[-1]
    if n > length:
        return audio[..., :length]
    if n < length:
        widths = [(0, 0)] * (audio.ndim - 1) + [(0, length - n)]
        return mx.pad(audio, widths)
    return audio


def stft_input(audio: mx.array, n_fft: int = N_FFT) -> mx.array:
    """The signal `torch.stft(center=True, pad_mode='reflect')` frames: n_fft // 2 reflected
    samples on each side, fp32."""
    half = n_fft // 2
    n = audio.shape[0]
    if n <= half:
        raise ValueError(
            f"reflect padding needs more than n_fft // 2 = {half} samples, got {n}; "
            f"pad the audio (e.g. pad_or_trim) first"
        )
    x = audio.astype(mx.float32)
    return mx.concatenate([x[1 : half + 1][::-1], x, x[n - half - 1 : n - 1][::-1]])


def _power(padded: mx.array, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> mx.array:
    """|rfft|**2 of every Hann-windowed frame of an already padded signal."""
    n_frames = 1 + (padded.shape[0] - n_fft) // hop_length
    frames = mx.as_strided(padded, shape=(n_frames, n_fft), strides=(hop_length, 1))
    spec = mx.fft.rfft(frames * mx.array(hann_window(n_fft)), axis=-1)
    # mx.square, not ** 2: MLX's CPU power() calls pow per element (37 vs 2 ms for a 30-s window)
    return mx.square(mx.real(spec)) + mx.square(mx.imag(spec))


def stft_power(audio: mx.array, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> mx.array:
    """|STFT|**2 as `torch.stft(center=True, pad_mode='reflect')` with a periodic Hann window.

    audio (n_samples,) -> (1 + n_samples // hop_length, n_fft // 2 + 1), fp32.
    """
    return _power(stft_input(audio, n_fft), n_fft, hop_length)


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
        log_spec = _log_mel(stft_power(audio)[:-1], filters)
    else:
        # Long inputs: the STFT frames, spectrum and power of a whole hour take ~2.9 GB at once;
        # frame blocks need only their own samples (+ n_fft - hop of overlap), so compute the log
        # mel block by block and keep just the (n_frames, n_mels) result (32 KB per second).
        # Only the final clamp needs the global maximum.
        x = stft_input(audio)
        blocks = []
        for f0 in range(0, n_frames, CHUNK_FRAMES):
            f1 = min(f0 + CHUNK_FRAMES, n_frames)
            block = _log_mel(_power(x[f0 * HOP_LENGTH:(f1 - 1) * HOP_LENGTH + N_FFT]), filters)
            mx.eval(block)
            blocks.append(block)
        log_spec = mx.concatenate(blocks)
    log_spec = mx.maximum(log_spec, mx.max(log_spec) - 8.0)
    return (log_spec + 4.0) / 4.0


def _log_mel(power: mx.array, filters: mx.array) -> mx.array:
    return mx.log10(mx.maximum(power @ filters.T, 1e-10))  # (frames, n_mels)
