"""Op-level parity of mlx_impl.layers.spectral against torch, torchaudio, librosa, vocos and
openai-whisper: one line per op, float32 on the CPU (float64 for the numpy STFT path).

Run with `-s` to see one line per comparison: name, max abs and rel error, worst index.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import mlx.core as mx
import numpy as np
import pytest
import torch
import torchaudio
import whisper
from transformers.audio_utils import mel_filter_bank
from vocos.spectral_ops import ISTFT as VocosISTFT

import mlx_impl  # noqa: F401  (preloads the BLAS before mlx)
from mlx_impl.layers.spectral import hann_window, hz_to_mel, istft, mel_filters, mel_to_hz, stft
from tests.helpers import assert_close

# FFT rounding, torch (pocketfft) vs MLX, float32: sums of n_fft products of O(1) values;
# measured <= 1.2e-5 over the cases below (n_fft <= 1024, unit-variance noise)
STFT_ATOL = 2e-5
ISTFT_ATOL = 1e-5  # measured <= 7.2e-7 (unit-variance spectra, n_fft <= 1024)
F64_ATOL = 1e-11  # numpy float64 vs torch float64: measured <= 1.5e-14


def check(name: str, got, want, atol: float, rtol: float = 0.0) -> None:
    """One comparison: prints name | max_abs | max_rel | worst index, raises past atol + rtol."""
    g, w = np.asarray(got), np.asarray(want)
    if np.iscomplexobj(g) or np.iscomplexobj(w):
        check(f"{name}.real", g.real, w.real, atol, rtol)
        check(f"{name}.imag", g.imag, w.imag, atol, rtol)
        return
    if g.shape == w.shape and g.size:
        err = np.abs(g.astype(np.float64) - w.astype(np.float64))
        rel = err / np.maximum(np.abs(w.astype(np.float64)), 1e-30)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
        print(f"{name:<58} max_abs {err.max():.2e}  max_rel {rel.max():.2e}  worst {worst}")
    assert_close(name, g, w, atol=atol, rtol=rtol)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _noise(shape, seed=0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _spectrum(batch, freqs, frames, seed=0) -> np.ndarray:  # torch layout (B, freqs, frames)
    return (_noise((batch, freqs, frames), seed) + 1j * _noise((batch, freqs, frames), seed + 1)
            ).astype(np.complex64)


def _torch_stft(x, n_fft, hop, win, window, padding, mode, normalized=False, onesided=True):
    t = torch.from_numpy(x)
    if padding == "same":  # Vocos / BigVGAN: reflect-pad (n_fft - hop) // 2, then no centring
        p = (n_fft - hop) // 2
        t = torch.nn.functional.pad(t[None] if t.ndim == 1 else t[:, None], (p, p),
                                    mode=mode).squeeze(-2)
    out = torch.stft(t, n_fft, hop, win, torch.from_numpy(window), center=padding == "center",
                     pad_mode=mode, normalized=normalized, onesided=onesided, return_complex=True)
    return _np(out).swapaxes(-1, -2)  # (..., frames, freqs)


# ---- Hann window ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7, 400, 512, 1024])
@pytest.mark.parametrize("periodic", [True, False])
def test_hann_window(n, periodic):
    # torch evaluates the cosine in float32, ours in float64 rounded once: 2 fp32 ulp apart at
    # most (measured 1.8e-7 at 0.77); against float64 ours is within 0.5 ulp (3e-8)
    want64 = np.hanning(n) if not periodic else 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    if n == 1:
        want64 = np.ones(1)
    check(f"hann({n}, periodic={periodic}) vs torch", hann_window(n, periodic),
          _np(torch.hann_window(n, periodic=periodic)), atol=3e-7)
    check(f"hann({n}, periodic={periodic}) vs float64", hann_window(n, periodic), want64,
          atol=3e-8)
    check(f"hann({n}, periodic={periodic}) float64", hann_window(n, periodic, np.float64),
          want64, atol=1e-15)


# ---- STFT -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,n_fft,hop,win,padding,mode", [
    (4000, 1024, 256, 1024, "center", "reflect"),   # Vocos mel front end
    (4800, 400, 160, 400, "center", "reflect"),     # Whisper
    (1001, 512, 128, 400, "center", "reflect"),     # window shorter than n_fft
    (999, 256, 100, 256, "none", "reflect"),
    (700, 256, 64, 256, "center", "constant"),
    (4000, 1024, 256, 1024, "same", "reflect"),     # Vocos "same" / BigVGAN
    (3001, 1024, 256, 800, "same", "reflect"),      # BigVGAN with win_size < n_fft
])
def test_stft(n, n_fft, hop, win, padding, mode):
    x, w = _noise((2, n)), hann_window(win)
    want = _torch_stft(x, n_fft, hop, win, w, padding, mode)
    got = np.array(stft(mx.array(x), n_fft, hop, win, w, padding=padding, pad_mode=mode))
    check(f"stft n={n} n_fft={n_fft} hop={hop} win={win} {padding} {mode}", got, want, STFT_ATOL)


def test_stft_one_dimensional():
    x, w = _noise(3000, 1), hann_window(400)
    check("stft 1-D", np.array(stft(mx.array(x), 400, 160, window=w)),
          _torch_stft(x, 400, 160, 400, w, "center", "reflect"), STFT_ATOL)


def test_stft_normalized():
    x, w = _noise((2, 2000), 2), hann_window(256)
    check("stft normalized", np.array(stft(mx.array(x), 256, 64, window=w, normalized=True)),
          _torch_stft(x, 256, 64, 256, w, "center", "reflect", normalized=True), STFT_ATOL)


def test_stft_two_sided():
    x, w = _noise((2, 2000), 3), hann_window(256)
    got = np.array(stft(mx.array(x), 256, 64, window=w, onesided=False))
    check("stft onesided=False", got,
          _torch_stft(x, 256, 64, 256, w, "center", "reflect", onesided=False), STFT_ATOL)


def test_stft_rectangular_default_window():
    x = _noise((1, 1500), 4)
    check("stft window=None", np.array(stft(mx.array(x), 128, 32)),
          _torch_stft(x, 128, 32, 128, np.ones(128, np.float32), "center", "reflect"), STFT_ATOL)


def test_stft_strided_input():
    """A transposed (non-contiguous) input frames the same as its contiguous copy."""
    x = _noise((1500, 2), 5)
    got = np.array(stft(mx.array(x).T, 128, 32, window=hann_window(128)))
    check("stft of x.T", got, _torch_stft(np.ascontiguousarray(x.T), 128, 32, 128,
                                          hann_window(128), "center", "reflect"), STFT_ATOL)


@pytest.mark.parametrize("padding,mode", [("center", "constant"), ("center", "reflect"),
                                          ("same", "reflect"), ("none", "reflect")])
def test_stft_numpy_float64(padding, mode):
    """The numpy path (Parakeet's float64 front end: 512-bin frames, a 400-sample symmetric
    window) against torch in float64."""
    x, w = _noise(5000, 6, np.float64), hann_window(400, periodic=False, dtype=np.float64)
    got = stft(x, 512, 160, 400, w, padding=padding, pad_mode=mode)
    assert isinstance(got, np.ndarray) and got.dtype == np.complex128
    check(f"stft numpy float64 {padding} {mode}", got,
          _torch_stft(x, 512, 160, 400, w, padding, mode), F64_ATOL)


# ---- inverse STFT -----------------------------------------------------------------------------

@pytest.mark.parametrize("frames,n_fft,hop,win,length", [
    (20, 1024, 256, 1024, None), (33, 512, 128, 400, 4000), (12, 256, 64, 256, 500),
    (25, 400, 160, 400, None),   # hop does not divide n_fft: the transposed-conv overlap-add
    (25, 400, 100, 400, 2000),
])
def test_istft_center(frames, n_fft, hop, win, length):
    spec, w = _spectrum(2, n_fft // 2 + 1, frames), hann_window(win)
    want = _np(torch.istft(torch.from_numpy(spec), n_fft, hop, win, torch.from_numpy(w),
                           center=True, length=length))
    got = np.array(istft(mx.array(spec.swapaxes(1, 2)), n_fft, hop, win, w, length=length))
    check(f"istft n_fft={n_fft} hop={hop} win={win} length={length}", got, want, ISTFT_ATOL)


def test_istft_no_centre():
    # torch's center=False keeps the first and last samples, so the window must not vanish
    # there (NOLA): a Hamming window
    spec, w = _spectrum(2, 129, 30, 2), _np(torch.hamming_window(256))
    want = _np(torch.istft(torch.from_numpy(spec), 256, 64, 256, torch.from_numpy(w),
                           center=False))
    got = np.array(istft(mx.array(spec.swapaxes(1, 2)), 256, 64, 256, w, padding="none"))
    check("istft padding=none", got, want, ISTFT_ATOL)


def test_istft_normalized_and_two_sided():
    x, w = _noise((2, 3000), 3), hann_window(256)
    full = torch.stft(torch.from_numpy(x), 256, 64, 256, torch.from_numpy(w), normalized=True,
                      onesided=False, return_complex=True)
    want = _np(torch.istft(full, 256, 64, 256, torch.from_numpy(w), normalized=True,
                           onesided=False, length=3000))
    got = np.array(istft(mx.array(_np(full).swapaxes(1, 2)), 256, 64, 256, w, length=3000,
                         normalized=True, onesided=False))
    check("istft normalized onesided=False", got, want, ISTFT_ATOL)
    check("stft -> istft round trip", got, x, ISTFT_ATOL)


@pytest.mark.parametrize("frames,n_fft,hop", [(30, 1024, 256), (17, 1280, 320), (9, 64, 16)])
def test_istft_same_matches_vocos(frames, n_fft, hop):
    spec = _spectrum(2, n_fft // 2 + 1, frames, 4)
    want = _np(VocosISTFT(n_fft, hop, n_fft, padding="same")(torch.from_numpy(spec)))
    got = np.array(istft(mx.array(spec.swapaxes(1, 2)), n_fft, hop, n_fft, hann_window(n_fft),
                         padding="same"))
    assert got.shape == (2, frames * hop)
    check(f"istft same n_fft={n_fft} hop={hop}", got, want, ISTFT_ATOL)


def test_spectral_bad_input():
    w = hann_window(1024)
    with pytest.raises(ValueError, match="reflect padding of 512 needs more than 512 samples"):
        stft(mx.zeros((1, 100)), 1024, 256, window=w)
    with pytest.raises(ValueError, match=r"\(samples,\) or \(batch, samples\)"):
        stft(mx.zeros((1, 1, 100)), 64, 16)
    with pytest.raises(ValueError, match="shorter than n_fft=64"):
        stft(mx.zeros((1, 40)), 64, 16, padding="none")
    with pytest.raises(ValueError, match="padding must be one of"):
        stft(mx.zeros((1, 400)), 64, 16, padding="valid")
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        stft(mx.zeros((1, 400)), 64, 16, pad_mode="edge")
    with pytest.raises(ValueError, match=r"window has shape \(1024,\), expected \(800,\)"):
        stft(mx.zeros((1, 4000)), 1024, 256, 800, w)
    with pytest.raises(ValueError, match="win_length == n_fft"):
        istft(mx.zeros((1, 3, 513), dtype=mx.complex64), 1024, 256, 800, padding="same")
    with pytest.raises(ValueError, match="NOLA"):  # Hann edges are 0: nothing covers sample 0
        istft(mx.ones((1, 3, 33), dtype=mx.complex64), 64, 16, window=hann_window(64),
              padding="none")
    with pytest.raises(ValueError, match=r"spectrum \(batch, frames, 33\)"):
        istft(mx.zeros((1, 3, 32), dtype=mx.complex64), 64, 16)


# ---- mel filterbanks --------------------------------------------------------------------------

@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [
    (16000, 400, 80, 0.0, None),      # Whisper
    (16000, 400, 128, 0.0, None),     # Whisper large-v3, Voxtral, S3 tokenizer
    (24000, 1024, 100, 0.0, None),    # BigVGAN v2 24 kHz
    (22050, 1024, 80, 0.0, 8000.0),   # BigVGAN v1 22 kHz (fmax 8 kHz)
    (44100, 2048, 128, 0.0, None),    # BigVGAN v2 44 kHz
    (16000, 512, 64, 125.0, 7600.0),
])
@pytest.mark.parametrize("norm", ["slaney", None])
def test_mel_filters_slaney_match_librosa(sr, n_fft, n_mels, fmin, fmax, norm):
    want = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, norm=norm,
                               dtype=np.float64)
    got = mel_filters(sr, n_fft, n_mels, fmin, fmax, norm=norm, dtype=np.float64)
    # float64 both sides, the same formulas: measured max abs 0 (bit-equal) on every case
    check(f"slaney mel sr={sr} n_fft={n_fft} n_mels={n_mels} norm={norm}", got, want, atol=1e-15)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_whisper_asset(n_mels):
    with np.load(Path(whisper.__file__).parent / "assets" / "mel_filters.npz") as f:
        stored = f[f"mel_{n_mels}"]
    got = mel_filters(16000, 400, n_mels)
    assert got.dtype == np.float32
    # the asset is librosa's float32 result: measured 1 fp32 ulp at most (rel 1.19e-7)
    check(f"mel_filters(16000, 400, {n_mels}) vs whisper asset", got, stored, atol=0.0,
          rtol=2.5e-7)


@pytest.mark.parametrize("n_mels", [32, 80, 128])
def test_mel_filters_match_transformers(n_mels):
    """Parakeet's filterbank: transformers' `mel_filter_bank` (float64, linspace bins)."""
    want = mel_filter_bank(num_frequency_bins=257, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=8000.0, sampling_rate=16000, norm="slaney",
                           mel_scale="slaney").T
    # float64 both sides: measured max abs 4.5e-16
    check(f"slaney mel 16000/512/{n_mels} vs transformers",
          mel_filters(16000, 512, n_mels, dtype=np.float64), want, atol=1e-15)


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [
    (24000, 1024, 100, 0.0, 12000.0),  # vocos-mel-24khz
    (16000, 64, 8, 0.0, 8000.0), (22050, 512, 80, 30.0, 8000.0)])
@pytest.mark.parametrize("mel_scale,norm", [("htk", None), ("htk", "slaney"), ("slaney", None)])
def test_mel_filters_match_torchaudio(sr, n_fft, n_mels, fmin, fmax, mel_scale, norm):
    want = _np(torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr,
                                                     norm=norm, mel_scale=mel_scale)).T
    got = mel_filters(sr, n_fft, n_mels, fmin, fmax, mel_scale=mel_scale, norm=norm)
    # torchaudio computes in float32 (linspace and 10 ** m rounding), ours in float64 then
    # rounded: measured max 8.5e-6 on weights <= 1 (sr 24000, n_fft 1024); the Slaney-normed
    # weights are ~1e-3, so the same relative error is far smaller there (8.2e-8)
    check(f"{mel_scale} mel norm={norm} sr={sr} n_fft={n_fft} n_mels={n_mels} vs torchaudio",
          got, want, atol=1e-5)


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_mel_scale_matches_librosa(mel_scale):
    f = np.array([0.0, 1.0, 440.0, 999.9, 1000.0, 1000.1, 4000.0, 11025.0, 24000.0])
    htk = mel_scale == "htk"
    check(f"hz_to_mel {mel_scale}", hz_to_mel(f, mel_scale), librosa.hz_to_mel(f, htk=htk),
          atol=1e-12)
    m = hz_to_mel(f, mel_scale)
    check(f"mel_to_hz {mel_scale}", mel_to_hz(m, mel_scale), librosa.mel_to_hz(m, htk=htk),
          atol=1e-9)
    check(f"mel_to_hz(hz_to_mel) {mel_scale}", mel_to_hz(m, mel_scale), f, atol=1e-9)


def test_mel_filters_bad_arguments():
    with pytest.raises(ValueError, match="mel_scale must be one of"):
        mel_filters(16000, 400, 80, mel_scale="bark")
    with pytest.raises(ValueError, match="norm must be None or 'slaney'"):
        mel_filters(16000, 400, 80, norm="area")
    with pytest.raises(ValueError, match="n_mels >= 1"):
        mel_filters(16000, 400, 0)
