"""NeMo-style log-mel features for Parakeet (numpy; device-neutral, float64 inside).

Upstream: transformers 5.24.0 `ParakeetFeatureExtractor` (NeMo `AudioToMelSpectrogramPreprocessor`
with normalize="per_feature"), for one clip:
1. pre-emphasis y[0] = x[0], y[n] = x[n] - 0.97 x[n-1];
2. STFT: n_fft 512, hop 160, a 400-sample symmetric Hann window (`periodic=False`) centred in the
   512-sample frame, the signal zero-padded by n_fft/2 on both sides (`center=True`,
   `pad_mode="constant"`); frames = 1 + N // hop;
3. power spectrum |X|^2, slaney-normalised slaney-scale mel filters (0 Hz .. sr/2), then
   log(mel + 2**-24);
4. per-feature normalisation over the first N // hop frames ("valid" frames: the last, centred
   frame is excluded, as upstream's `features_lengths`): (x - mean) / (std + 1e-5), std with
   Bessel's correction; frames past the valid length are set to 0.

Deviations: computed in float64 and returned as float32 (upstream: float32 torch.stft), so values
differ by float32 rounding (measured in tests/test_parakeet.py). For constant input (digital
silence) upstream's float32 mean misses the constant by ~2e-6 and the normalisation amplifies
that residue to about -0.16 in every bin; here the features are ~0 (|x| < 1e-8). Upstream
divides by zero (NaN)
for clips of fewer than 2 valid frames; here that is a ValueError.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 160
WIN_LENGTH = 400
PREEMPHASIS = 0.97
LOG_GUARD = 2.0 ** -24
NORM_EPS = 1e-5


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3.0)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, lin)


def mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular slaney-normalised filters on the slaney scale, float64
    (librosa `filters.mel(htk=False, norm="slaney")` semantics)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    slopes = edges[None, :] - fft_freqs[:, None]  # (n_freq, n_mels + 2)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    fb = np.maximum(0.0, np.minimum(down, up))  # (n_freq, n_mels)
    fb *= 2.0 / (edges[2:] - edges[:-2])  # equal area per filter
    return fb.T


def valid_frames(n_samples: int) -> int:
    """Frames normalised and fed as valid to the model (upstream `features_lengths`)."""
    return (n_samples + N_FFT // 2 * 2 - N_FFT) // HOP_LENGTH


def log_mel(audio: np.ndarray, n_mels: int) -> tuple[np.ndarray, int]:
    """Normalised log-mel features of one mono 16 kHz clip.

    Returns (features (n_frames, n_mels) float32 with n_frames = 1 + N // 160, valid frames).
    """
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got {x.shape}; average the "
                         "channels first (mlx_impl.audio_io.load_audio does)")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio has NaN/inf samples; clean or re-export the audio")
    n_valid = valid_frames(len(x))
    if n_valid < 2:
        raise ValueError(f"audio of {len(x)} samples is too short: Parakeet's per-feature "
                         f"normalisation needs at least {2 * HOP_LENGTH} samples "
                         f"({2 * HOP_LENGTH / SAMPLE_RATE * 1000:.0f} ms at {SAMPLE_RATE} Hz)")
    x = x.astype(np.float64)
    x = np.concatenate([x[:1], x[1:] - PREEMPHASIS * x[:-1]])
    pad = N_FFT // 2
    x = np.pad(x, (pad, pad))
    n_frames = 1 + (len(x) - N_FFT) // HOP_LENGTH
    idx = np.arange(N_FFT)[None, :] + HOP_LENGTH * np.arange(n_frames)[:, None]
    window = np.zeros(N_FFT)
    left = (N_FFT - WIN_LENGTH) // 2
    window[left:left + WIN_LENGTH] = np.hanning(WIN_LENGTH)  # symmetric Hann
    spec = np.fft.rfft(x[idx] * window, axis=-1)
    power = spec.real ** 2 + spec.imag ** 2  # (n_frames, n_freq)
    mel = np.log(power @ mel_filters(n_mels).T + LOG_GUARD)  # (n_frames, n_mels)
    v = mel[:n_valid]
    mean = v.mean(axis=0)
    std = np.sqrt(((v - mean) ** 2).sum(axis=0) / (n_valid - 1))
    out = (mel - mean) / (std + NORM_EPS)
    out[n_valid:] = 0.0
    return out.astype(np.float32), n_valid
