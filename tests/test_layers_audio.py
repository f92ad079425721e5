"""Parity of the MLX log-mel front end against openai-whisper's `log_mel_spectrogram` (torch).
Its parts (Hann window, STFT, Slaney filterbank, checked against the stored `mel_filters.npz`)
are tested op by op in tests/test_layers_spectral.py.

Tolerances (measured, MLX 0.32.4 / torch 2.13.0 CPU):
- log-mel: both fp32 pipelines deviate from a float64 computation by up to ~4.4e-5 (torch) and
  ~3.9e-5 (ours), always in bins whose mel power is ~1e-8 of the peak (fp32 FFT rounding is
  absolute, so log10 of tiny bins carries it); ours - torch reached 5.0e-5 (128 bins, chirp) and
  3.5e-5 (JFK clip); mean abs difference ~1e-7. Checked as atol 1e-4 on every value plus a
  mean-abs bound of 1e-6, so a systematic error cannot hide under the per-value tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch
import whisper.audio as wa

import mlx_impl  # noqa: F401  (preloads OpenBLAS if nothing imported mlx yet)
from mlx_impl.layers.audio import log_mel_spectrogram, power_spectrum
from weights.whisper_audio import N_FRAMES, N_SAMPLES, pad_or_trim
from tests.helpers import assert_close

SPEECH = Path(__file__).resolve().parent.parent.parent / "shared" / "speech"


def assert_log_mel_close(name: str, got, want) -> None:
    """Every value within 1e-4, and the mean abs error within 1e-6 (see the module docstring)."""
    assert_close(name, got, want, atol=1e-4)
    mean_abs = float(np.mean(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))
    assert mean_abs <= 1e-6, f"{name}: mean_abs {mean_abs:.3g} exceeds 1e-6 (a systematic error)"


def speech_like(n: int = N_SAMPLES, seed: int = 0) -> np.ndarray:
    """A 16 kHz chirp (100 Hz rising 300 Hz/s) with 3 Hz amplitude modulation plus white noise."""
    t = np.arange(n) / 16000
    rng = np.random.default_rng(seed)
    tone = 0.3 * np.sin(2 * np.pi * (100 * t + 150 * t**2)) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_power_spectrum_matches_torch():
    a = speech_like(16000)
    st = torch.stft(
        torch.from_numpy(a), 400, 160, window=torch.hann_window(400), return_complex=True
    )
    want = (st.abs() ** 2).numpy().T  # (n_frames, n_freqs)
    got = np.asarray(power_spectrum(mx.array(a)))
    # power values up to ~1e3; fp32 FFT rounding: relative ~1e-6 of the frame's peak
    assert_close("power_spectrum", got, want, atol=2e-6 * float(want.max()))


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_whisper_speech_like(n_mels):
    a = speech_like()
    want = wa.log_mel_spectrogram(torch.from_numpy(a), n_mels).numpy().T
    got = np.asarray(log_mel_spectrogram(mx.array(a), n_mels))
    assert got.shape == (3000, n_mels)
    assert_log_mel_close(f"log_mel({n_mels}) chirp", got, want)


@pytest.mark.parametrize("padding", [0, 1234, N_SAMPLES])
def test_log_mel_padding_matches_whisper(padding):
    a = speech_like(50_000, seed=1)
    want = wa.log_mel_spectrogram(torch.from_numpy(a), 80, padding=padding).numpy().T
    got = np.asarray(log_mel_spectrogram(mx.array(a), 80, padding=padding))
    assert_log_mel_close(f"log_mel padding={padding}", got, want)


def test_pad_or_trim_matches_whisper():
    """One pad_or_trim (weights.whisper_audio) for numpy and mx arrays, any axis."""
    for n in (1000, N_SAMPLES, N_SAMPLES + 7):
        a = speech_like(n, seed=2)
        want = wa.pad_or_trim(a)
        got_mx = pad_or_trim(mx.array(a))
        assert isinstance(got_mx, mx.array)
        assert_close(f"pad_or_trim mx n={n}", np.asarray(got_mx), want, atol=0.0)
        assert_close(f"pad_or_trim numpy n={n}", pad_or_trim(a), want, atol=0.0)
    for frames in (1234, N_FRAMES + 5):  # mel frames (frames, n_mels), as transcribe pads them
        mel = speech_like(frames * 80, seed=3).reshape(frames, 80)
        want = wa.pad_or_trim(torch.from_numpy(mel), N_FRAMES, axis=0).numpy()
        assert_close(f"pad_or_trim mel frames={frames}",
                     np.asarray(pad_or_trim(mx.array(mel), N_FRAMES, axis=0)), want, atol=0.0)


def test_log_mel_real_speech():
    if not (SPEECH / "manifest.jsonl").exists():
        pytest.skip(f"real speech clips not found at {SPEECH} (see its README: CI has it)")
    import soundfile as sf

    rows = [
        json.loads(line)
        for line in (SPEECH / "manifest.jsonl").read_text().splitlines()
        if line.strip()
    ]
    row = next(r for r in rows if r["id"] == "jfk_inaugural_1961")
    audio, sr = sf.read(SPEECH / row["file"], dtype="float32")
    assert sr == 16000
    want = wa.log_mel_spectrogram(torch.from_numpy(audio), 80, padding=N_SAMPLES).numpy().T
    got = np.asarray(log_mel_spectrogram(mx.array(audio), 80, padding=N_SAMPLES))
    assert_log_mel_close("log_mel jfk", got, want)


def test_log_mel_rejects_bad_input():
    with pytest.raises(ValueError, match="mono"):
        log_mel_spectrogram(mx.zeros((2, 16000)))
    with pytest.raises(ValueError, match="padding"):
        log_mel_spectrogram(mx.zeros((16000,)), padding=-1)
    with pytest.raises(ValueError, match="reflect padding"):
        log_mel_spectrogram(mx.zeros((100,)))


def test_long_input_is_computed_in_blocks_with_the_same_result(monkeypatch):
    """Past CHUNK_FRAMES the log-mel is built block by block (bounded memory on hour-long input);
    frames are local, so every block boundary must give the one-shot values."""
    import mlx_impl.layers.audio as A

    rng = np.random.default_rng(5)
    audio = (0.1 * rng.standard_normal(16000 * 7 + 123)).astype(np.float32)
    one_shot = np.array(A.log_mel_spectrogram(mx.array(audio), 80))
    monkeypatch.setattr(A, "CHUNK_FRAMES", 250)  # 700 frames -> blocks of 250, 250, 200
    blocked = np.array(A.log_mel_spectrogram(mx.array(audio), 80))
    assert blocked.shape == one_shot.shape == (len(audio) // 160, 80)
    diff = float(np.max(np.abs(blocked - one_shot)))
    # identical up to the matmul's row blocking (measured 0.0 with OpenBLAS)
    assert diff <= 1e-6, f"blocked log-mel differs from one-shot by {diff:.3g}"
