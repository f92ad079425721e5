"""Spectral building blocks, one implementation each: Hann window, STFT / inverse STFT, mel
filterbanks. Every model front end and vocoder head builds on these (tests/test_layers_spectral.py
checks each against torch, torchaudio, librosa and openai-whisper).

Upstream semantics:
- `hann_window(n, periodic)`: torch 2.13 `torch.hann_window`: `0.5 - 0.5 cos(2 pi k / d)` with
  d = n (periodic) or n - 1 (symmetric, = `numpy.hanning`); n = 1 gives [1]. Computed in float64
  and rounded once (torch evaluates the cosine in float32: 1-2 fp32 ulp apart).
- `stft`: torch 2.13 `torch.stft(..., return_complex=True)`: frames of n_fft samples every hop,
  times the window (zero-padded to n_fft in the middle when win_length < n_fft), FFT. Padding:
  "center" (torch `center=True`: n_fft // 2 on both sides), "none" (`center=False`), or "same"
  (Vocos `padding="same"` and BigVGAN's `meldataset`: (n_fft - hop) // 2 on both sides, no
  centring, so N samples give N // hop frames when hop divides N); `pad_mode` "reflect" (torch's,
  the edge sample not repeated) or "constant" (zeros). `normalized` scales by n_fft ** -0.5;
  `onesided=False` returns all n_fft bins.
- `istft`: torch 2.13 `torch.istft` (real output): inverse FFT of each frame, times the window,
  overlap-add, divided by the overlap-added squared window (the envelope); "center" trims n_fft // 2
  from both ends, then the signal is cut or zero-padded to `length`; an envelope below 1e-11 in the
  kept range is an error (NOLA), as in torch. "same" is vocos 0.1.0 `spectral_ops.ISTFT`: the same
  overlap-add with (win_length - hop) // 2 trimmed from both ends (frames * hop samples).
  `onesided=False` reads the first n_fft // 2 + 1 bins of a full spectrum, as torch does for a
  real output.
- `mel_filters`: librosa 0.11 `filters.mel` (Slaney scale, `norm="slaney"` area normalisation:
  Whisper, BigVGAN, Parakeet) and torchaudio 2.11 `functional.melscale_fbanks` (HTK scale,
  `norm=None`: Vocos): n_mels + 2 corners equally spaced in mel between f_min and f_max,
  triangles over the FFT bin frequencies k * sr / n_fft. torchaudio takes its bins from
  `linspace(0, sr // 2, n_fft // 2 + 1)`, the same grid when sr and n_fft are even (every model
  here). Computed in float64 and cast to `dtype` (torchaudio computes in float32: ~1e-6 apart).

Array types: `stft` takes an mx.array (the MLX path, float32) or a numpy array (numpy's FFT in
the array's precision: Parakeet's float64 front end, since MLX has no float64 FFT). Windows and
filterbanks are numpy constants (float32 unless `dtype` says otherwise); pass them to MLX as
`mx.array(...)` once. Layouts: audio (N,) or (B, N); spectra (..., frames, freqs) (torch:
(..., freqs, frames)); filterbanks (n_mels, n_freqs), librosa's orientation (torchaudio's is the
transpose).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

PADDINGS = ("center", "same", "none")
PAD_MODES = ("reflect", "constant")
MEL_SCALES = ("slaney", "htk")
NOLA_EPS = 1e-11  # torch.istft's and Vocos' envelope floor


# ---- window ------------------------------------------------------------------------------------

def hann_window(n: int, periodic: bool = True, dtype=np.float32) -> np.ndarray:
    """(n,) Hann window, `torch.hann_window(n, periodic)`; float64 maths, rounded once to dtype."""
    if n < 0:
        raise ValueError(f"window length must be >= 0, got {n}")
    if n == 1:
        return np.ones(1, dtype)
    k = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * math.pi * k / (n if periodic else n - 1))).astype(dtype)


def _full_window(window, win_length: int, n_fft: int, like):
    """The window zero-padded to n_fft in the middle, as torch.stft; `like` picks mx or numpy."""
    if win_length > n_fft:
        raise ValueError(f"win_length {win_length} > n_fft {n_fft}")
    if window is None:  # torch's default: rectangular
        window = np.ones(win_length, np.float32)
    if tuple(window.shape) != (win_length,):
        raise ValueError(f"window has shape {tuple(window.shape)}, expected ({win_length},)")
    left = (n_fft - win_length) // 2
    widths = [(left, n_fft - win_length - left)]
    if isinstance(like, mx.array):
        return mx.pad(mx.array(window), widths)
    return np.pad(np.asarray(window), widths)


# ---- STFT --------------------------------------------------------------------------------------

def _pad_amount(padding: str, n_fft: int, hop: int) -> int:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return {"center": n_fft // 2, "same": (n_fft - hop) // 2, "none": 0}[padding]


def _pad_last(x, pad: int, mode: str):
    """Pad the last axis by `pad` on both sides: torch's reflect (edge not repeated) or zeros."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {mode!r}")
    n = x.shape[-1]
    if mode == "reflect" and pad >= n:
        raise ValueError(f"reflect padding of {pad} needs more than {pad} samples, got {n}; "
                         f"pass longer audio or pad_mode='constant'")
    if pad == 0:
        return x
    if isinstance(x, np.ndarray):
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode=mode)
    if mode == "constant":
        return mx.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)])
    # slices, not a gather: a 30-s Whisper window is 480k samples
    return mx.concatenate([x[..., 1:pad + 1][..., ::-1], x, x[..., n - pad - 1:n - 1][..., ::-1]],
                          axis=-1)


def _frames(x, n_fft: int, hop: int):
    """(..., N) -> (..., frames, n_fft) overlapping frames, frames = 1 + (N - n_fft) // hop."""
    n = x.shape[-1]
    if n < n_fft:
        raise ValueError(f"audio of {n} samples (after padding) is shorter than n_fft={n_fft}")
    n_frames = 1 + (n - n_fft) // hop
    if isinstance(x, np.ndarray):
        return np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :]
    lead = list(x.shape[:-1])  # as_strided reads the row-contiguous buffer (copied if needed)
    return mx.as_strided(x, shape=[*lead, n_frames, n_fft], strides=[n] * len(lead) + [hop, 1])


def pad_signal(x, n_fft: int, hop_length: int, padding: str = "center",
               pad_mode: str = "reflect"):
    """The signal that `stft` frames: `x` padded on its last axis as `padding` says."""
    return _pad_last(x, _pad_amount(padding, n_fft, hop_length), pad_mode)


def stft(x, n_fft: int, hop_length: int, win_length: int | None = None, window=None, *,
         padding: str = "center", pad_mode: str = "reflect", normalized: bool = False,
         onesided: bool = True):
    """(N,) or (B, N) -> complex (frames, freqs) or (B, frames, freqs), freqs = n_fft // 2 + 1
    (n_fft when not onesided). mx.array in -> mx.array out; numpy in -> numpy out."""
    if x.ndim not in (1, 2):
        raise ValueError(f"expected audio (samples,) or (batch, samples), got shape {x.shape}")
    if hop_length < 1:
        raise ValueError(f"hop_length must be >= 1, got {hop_length}")
    win = _full_window(window, win_length or n_fft, n_fft, x)
    x = pad_signal(x, n_fft, hop_length, padding, pad_mode)
    xp = np if isinstance(x, np.ndarray) else mx
    spec = (xp.fft.rfft if onesided else xp.fft.fft)(_frames(x, n_fft, hop_length) * win, axis=-1)
    return spec * (n_fft ** -0.5) if normalized else spec


# ---- inverse STFT ------------------------------------------------------------------------------

def _overlap_add(frames: mx.array, hop: int) -> mx.array:
    """(B, T, n) frames -> (B, (T - 1) * hop + n) summed, as torch's F.fold."""
    n = frames.shape[-1]
    if n % hop == 0:
        # frames cut into r = n / hop segments of hop samples: segment k of frame t lands in
        # output block t + k, so the sum is r shifted copies (a transposed conv with an identity
        # kernel did the same ~300x slower on the CPU: 2.9 s for 3750 frames of 256)
        r, (b, t) = n // hop, frames.shape[:2]
        seg = frames.reshape(b, t, r, hop)
        y = sum(mx.pad(seg[:, :, k], [(0, 0), (k, r - 1 - k), (0, 0)]) for k in range(r))
        return y.reshape(b, (t + r - 1) * hop)
    eye = mx.eye(n, dtype=frames.dtype)[None]  # (out=1, k=n, in=n): y[t*hop + k] += frame_t[k]
    return mx.conv_transpose1d(frames, eye, stride=hop)[..., 0]


def istft(spec: mx.array, n_fft: int, hop_length: int, win_length: int | None = None,
          window=None, *, padding: str = "center", length: int | None = None,
          normalized: bool = False, onesided: bool = True) -> mx.array:
    """complex (B, frames, freqs) -> (B, N) real, as `torch.istft` ("center", "none") or Vocos'
    `ISTFT` ("same", N = frames * hop)."""
    n_freqs = n_fft // 2 + 1 if onesided else n_fft
    if spec.ndim != 3 or spec.shape[-1] != n_freqs:
        raise ValueError(f"expected a spectrum (batch, frames, {n_freqs}), got {spec.shape}")
    win_length = win_length or n_fft
    pad = _pad_amount(padding, n_fft, hop_length)
    if padding == "same":
        if win_length != n_fft:
            raise ValueError(f"Vocos' same-padded iSTFT needs win_length == n_fft, got "
                             f"{win_length} and {n_fft}")
        if length is not None:
            raise ValueError("length= applies to padding 'center' or 'none'; 'same' gives "
                             "frames * hop samples")
    win = _full_window(window, win_length, n_fft, spec)
    if not onesided:  # a real signal's spectrum: the first half carries it all (torch)
        spec = spec[..., :n_fft // 2 + 1]
    if normalized:
        spec = spec * (n_fft ** 0.5)
    y = _overlap_add(mx.fft.irfft(spec, n=n_fft, axis=-1) * win, hop_length)
    sq = mx.broadcast_to((win * win)[None, None], (1, spec.shape[1], n_fft))
    env = _overlap_add(sq, hop_length)[0]
    end = y.shape[1] - pad
    if length is not None:
        end = min(pad + length, y.shape[1])
    y, env = y[:, pad:end], env[pad:end]
    if mx.min(mx.abs(env)).item() < NOLA_EPS:
        raise ValueError("the window's overlap-added square has zeros (NOLA condition fails); "
                         "use a window and hop whose frames overlap")
    y = y / env
    if length is not None and y.shape[1] < length:
        y = mx.pad(y, [(0, 0), (0, length - y.shape[1])])
    return y


# ---- mel filterbanks ---------------------------------------------------------------------------

_F_SP = 200.0 / 3  # Slaney: 66.67 Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(f, mel_scale: str = "slaney") -> np.ndarray:
    """Hz -> mel, float64: Slaney (linear below 1 kHz, logarithmic above) or HTK."""
    f = np.asarray(f, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(m, mel_scale: str = "slaney") -> np.ndarray:
    """mel -> Hz, float64, the inverse of `hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, _F_SP * m)


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                f_max: float | None = None, *, mel_scale: str = "slaney",
                norm: str | None = "slaney", dtype=np.float32) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular mel filterbank. Defaults are librosa's
    `filters.mel(sr, n_fft, n_mels)`; torchaudio's `melscale_fbanks` default (Vocos) is
    `mel_scale="htk", norm=None`, transposed."""
    if mel_scale not in MEL_SCALES:
        raise ValueError(f"mel_scale must be one of {MEL_SCALES}, got {mel_scale!r}")
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    if n_mels < 1 or n_fft < 2 or sample_rate <= 0:
        raise ValueError(f"mel_filters needs sample_rate > 0, n_fft >= 2, n_mels >= 1; got "
                         f"{sample_rate}, {n_fft}, {n_mels}")
    f_max = sample_rate / 2.0 if f_max is None else f_max
    bins = np.arange(n_fft // 2 + 1, dtype=np.float64) * (sample_rate / n_fft)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, mel_scale), hz_to_mel(f_max, mel_scale),
                                  n_mels + 2), mel_scale)  # (n_mels + 2,) corners in Hz
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]  # (n_mels + 2, n_freqs)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    fb = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":  # each triangle scaled to unit area: 2 / (its width in Hz)
        fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.astype(dtype)


__all__ = ["hann_window", "hz_to_mel", "istft", "mel_filters", "mel_to_hz", "pad_signal", "stft"]
