"""STFT / inverse STFT as torch computes them, plus Vocos' "same"-padded inverse.

Upstream: torch 2.13.0 `torch.stft` / `torch.istft` (onesided, `normalized=False`,
`return_complex=True`) and vocos 0.1.0 `vocos/spectral_ops.py` (`ISTFT` with `padding="same"`).

- `hann_window(n)`: periodic Hann, `0.5 - 0.5 cos(2 pi k / n)` (torch `hann_window(n)`).
- `stft`: frames of `n_fft` samples every `hop` (input reflect/zero-padded by n_fft // 2 on both
  sides when `center`), times the window (zero-padded to n_fft, centred, when shorter), real FFT.
- `istft`: inverse real FFT of each frame, times the window, overlap-add, divided by the
  overlap-added squared window (the envelope), `n_fft // 2` trimmed from both ends when `center`,
  then cut or zero-padded to `length`. Like torch, an envelope below 1e-11 anywhere in the kept
  range is an error (the window does not satisfy the NOLA condition).
- `istft_same`: Vocos' variant: the same overlap-add, then `(win_length - hop) // 2` trimmed from
  both ends (output length `frames * hop`), normalised by the envelope over that range.
Overlap-add (what torch's `F.fold` does) is a sum of n_fft / hop shifted copies when hop divides
n_fft, else a transposed convolution with an identity kernel.
Layouts: audio (B, N); spectra (B, frames, n_fft // 2 + 1) complex64 (torch: (B, freq, frames)).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from mlx_impl.layers.conv import pad1d

NOLA_EPS = 1e-11


def hann_window(n: int, periodic: bool = True) -> mx.array:
    denom = n if periodic else n - 1
    k = np.arange(n, dtype=np.float64)
    return mx.array((0.5 - 0.5 * np.cos(2 * math.pi * k / max(denom, 1))).astype(np.float32))


def _full_window(window: mx.array | None, win_length: int, n_fft: int) -> mx.array:
    if window is None:
        window = mx.ones((win_length,))
    if window.shape != (win_length,):
        raise ValueError(f"window has shape {window.shape}, expected ({win_length},)")
    if win_length > n_fft:
        raise ValueError(f"win_length {win_length} > n_fft {n_fft}")
    left = (n_fft - win_length) // 2
    return mx.pad(window, [(left, n_fft - win_length - left)])


def _check_audio(x: mx.array) -> mx.array:
    if x.ndim != 2:
        raise ValueError(f"expected audio (batch, samples), got shape {x.shape}")
    return x


def stft(x: mx.array, n_fft: int, hop: int, win_length: int | None = None,
         window: mx.array | None = None, center: bool = True,
         pad_mode: str = "reflect") -> mx.array:
    """(B, N) -> complex (B, frames, n_fft // 2 + 1)."""
    x = _check_audio(x)
    win = _full_window(window, win_length or n_fft, n_fft)
    if center:
        pad = n_fft // 2
        if pad_mode == "reflect" and pad >= x.shape[1]:
            raise ValueError(f"reflect padding of {pad} needs more than {pad} samples, got "
                             f"{x.shape[1]}; pass longer audio or pad_mode='constant'")
        x = pad1d(x[:, :, None], pad, pad, pad_mode)[:, :, 0]
    if x.shape[1] < n_fft:
        raise ValueError(f"audio of {x.shape[1]} samples is shorter than n_fft={n_fft}")
    n_frames = 1 + (x.shape[1] - n_fft) // hop
    idx = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
    frames = mx.take(x, mx.array(idx.astype(np.int32)), axis=1)  # (B, frames, n_fft)
    return mx.fft.rfft(frames * win, axis=-1)


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


def _envelope(win: mx.array, n_frames: int, hop: int) -> mx.array:
    sq = mx.broadcast_to((win * win)[None, None], (1, n_frames, win.shape[0]))
    return _overlap_add(sq, hop)[0]


def istft(spec: mx.array, n_fft: int, hop: int, win_length: int | None = None,
          window: mx.array | None = None, center: bool = True,
          length: int | None = None) -> mx.array:
    """complex (B, frames, n_fft // 2 + 1) -> (B, N), as `torch.istft`."""
    if spec.ndim != 3 or spec.shape[-1] != n_fft // 2 + 1:
        raise ValueError(f"expected a spectrum (batch, frames, {n_fft // 2 + 1}), got {spec.shape}")
    win = _full_window(window, win_length or n_fft, n_fft)
    frames = mx.fft.irfft(spec, n=n_fft, axis=-1) * win
    n_frames = spec.shape[1]
    y = _overlap_add(frames, hop)
    env = _envelope(win, n_frames, hop)
    start = n_fft // 2 if center else 0
    end = y.shape[1] - (n_fft // 2 if center else 0)
    if length is not None:
        end = min(start + length, y.shape[1])
    y, env = y[:, start:end], env[start:end]
    if mx.min(mx.abs(env)).item() < NOLA_EPS:
        raise ValueError("window overlap-add has zeros (NOLA condition fails); use a window and "
                         "hop with nonzero overlap-added square")
    y = y / env
    if length is not None and y.shape[1] < length:
        y = mx.pad(y, [(0, 0), (0, length - y.shape[1])])
    return y


def istft_same(spec: mx.array, n_fft: int, hop: int, win_length: int,
               window: mx.array | None = None) -> mx.array:
    """Vocos `ISTFT(padding="same")`: complex (B, frames, n_fft // 2 + 1) -> (B, frames * hop)."""
    if spec.ndim != 3 or spec.shape[-1] != n_fft // 2 + 1:
        raise ValueError(f"expected a spectrum (batch, frames, {n_fft // 2 + 1}), got {spec.shape}")
    if win_length != n_fft:
        raise ValueError(f"Vocos' same-padded iSTFT needs win_length == n_fft, got {win_length} "
                         f"and {n_fft}")
    if window is None:
        window = hann_window(win_length)
    if window.shape != (win_length,):
        raise ValueError(f"window has shape {window.shape}, expected ({win_length},)")
    pad = (win_length - hop) // 2
    frames = mx.fft.irfft(spec, n=n_fft, axis=-1) * window
    y = _overlap_add(frames, hop)
    env = _envelope(window, spec.shape[1], hop)
    y, env = y[:, pad: y.shape[1] - pad], env[pad: env.shape[0] - pad]
    if mx.min(env).item() <= NOLA_EPS:
        raise ValueError("window envelope has zeros (NOLA condition fails)")
    return y / env
