"""NeMo-style log-mel features for Parakeet (numpy, float64 inside: the numpy path of
`mlx_impl.layers.spectral`'s STFT, window and filterbank).

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
divides by zero (NaN) for clips of fewer than 2 valid frames; here that is a ValueError.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.spectral import hann_window, stft
from mlx_impl.layers.spectral import mel_filters as spectral_mel_filters

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 160
WIN_LENGTH = 400
PREEMPHASIS = 0.97
LOG_GUARD = 2.0 ** -24
NORM_EPS = 1e-5
WINDOW = hann_window(WIN_LENGTH, periodic=False, dtype=np.float64)  # symmetric Hann


def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, N_FFT // 2 + 1) float64 Slaney-scale, Slaney-normalised filters, 0 Hz .. sr/2."""
    return spectral_mel_filters(SAMPLE_RATE, N_FFT, n_mels, dtype=np.float64)


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
    spec = stft(x, N_FFT, HOP_LENGTH, WIN_LENGTH, WINDOW, pad_mode="constant")  # numpy float64
    power = spec.real ** 2 + spec.imag ** 2  # (n_frames, n_freq)
    mel = np.log(power @ mel_filters(n_mels).T + LOG_GUARD)  # (n_frames, n_mels)
    v = mel[:n_valid]
    mean = v.mean(axis=0)
    std = np.sqrt(((v - mean) ** 2).sum(axis=0) / (n_valid - 1))
    out = (mel - mean) / (std + NORM_EPS)
    out[n_valid:] = 0.0
    return out.astype(np.float32), n_valid
