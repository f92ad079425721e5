"""Audio loading: formats, resampling, channel mixing, and the errors for bad input."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from mlx_impl import audio_io
from mlx_impl.audio_io import load_audio
from weights.whisper_audio import N_SAMPLES, SAMPLE_RATE, pad_or_trim
from tests.helpers import assert_close

HAS_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg not installed")


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def test_wav_at_16k_is_read_exactly(tmp_path):
    x = (sine(300, 16000, 0.5) * 32767).astype(np.int16)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    got = load_audio(path)
    assert got.dtype == np.float32 and got.shape == (8000,)
    assert_close("16k int16 wav", got, x / 32768.0, atol=0)


@pytest.mark.parametrize("fmt,subtype,atol", [
    ("wav", "PCM_16", 1e-3), ("wav", "FLOAT", 1e-3), ("flac", "PCM_24", 1e-3),
    # Vorbis is lossy: measured max error 8.1e-3 on this tone (PCM/float: 3.5e-4)
    ("ogg", "VORBIS", 2e-2),
])
def test_stereo_44k_resampled_to_16k_mono(tmp_path, fmt, subtype, atol):
    rate, seconds = 44100, 1.0
    left, right = sine(440, rate, seconds, 0.6), sine(440, rate, seconds, 0.2)
    path = tmp_path / f"a.{fmt}"
    sf.write(path, np.stack([left, right], axis=1), rate, subtype=subtype)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.shape == (16000,)
    # the mean of the channels is a 0.4-amplitude 440 Hz tone; ignore the filter's edge ramp
    want = sine(440, 16000, seconds, 0.4)
    # resample_poly (Kaiser beta 5, 160/441): measured max error 3.3e-4 (float) to 3.5e-4 (PCM_16)
    # inside the edges, against the exact tone
    assert_close(f"{fmt}/{subtype} 44.1k stereo -> 16k mono", got[200:-200], want[200:-200], atol)


def test_array_input_resampled_mixed_and_int_pcm():
    tone = sine(200, 48000, 0.5, 0.5)
    got = load_audio(tone.astype(np.float32), sample_rate=48000)
    assert got.shape == (8000,)
    assert_close("48k array -> 16k", got[100:-100], sine(200, 16000, 0.5, 0.5)[100:-100], 1e-3)
    stereo = np.stack([tone, -tone * 0.5], axis=1)  # (frames, channels)
    assert_close("channel mean", load_audio(stereo, sample_rate=48000)[100:-100],
                 sine(200, 16000, 0.5, 0.125)[100:-100], 1e-3)
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    assert_close("int16 scaling", load_audio(pcm), [0, 0.5, -1, 32767 / 32768], atol=0)
    assert_close("already 16 kHz", load_audio(tone[:1000]), tone[:1000], atol=1e-7)


def test_resample_ratio_and_length():
    x = np.ones(44100)
    assert audio_io.resample(x, 44100, 16000).shape == (16000,)
    assert audio_io.resample(np.ones(1001), 22050, 16000).shape == (int(np.ceil(1001 * 320 / 441)),)
    y = audio_io.resample(sine(100, 8000, 0.5), 8000, 16000)
    assert_close("8k -> 16k tone", y[100:-100], sine(100, 16000, 0.5)[100:-100], 1e-3)


def test_silence_is_valid():
    got = load_audio(np.zeros(16000, dtype=np.float32))
    assert_close("silence", got, np.zeros(16000), atol=0)


@needs_ffmpeg
def test_other_formats_through_ffmpeg(tmp_path):
    wav = tmp_path / "src.wav"
    sf.write(wav, sine(440, 22050, 1.0, 0.5), 22050)
    m4a = tmp_path / "a.m4a"  # AAC in MP4: libsndfile cannot read it
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), str(m4a)],
                   check=True)
    got = load_audio(m4a)
    # AAC adds encoder delay/priming, so compare level, not samples: RMS of a 0.5 sine is 0.354
    rms = float(np.sqrt(np.mean(got[2000:-2000] ** 2)))
    assert abs(got.shape[0] - 16000) < 1000, got.shape
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.02, rms


@needs_ffmpeg
def test_real_clip_equals_upstream_load_audio(shared_clips):
    import whisper.audio  # the reference: ffmpeg to 16-bit PCM at 16 kHz

    clip = shared_clips[0]
    got = load_audio(clip["path"])
    want = whisper.audio.load_audio(str(clip["path"]))
    # a 16 kHz 16-bit wav: both are the int16 samples / 32768, bit for bit
    assert_close(f"{clip['id']} vs whisper.audio.load_audio", got, want, atol=0)


def test_pad_or_trim():
    x = np.arange(10, dtype=np.float32)
    assert_close("pad", pad_or_trim(x, 13), [*range(10), 0, 0, 0], atol=0)
    assert_close("trim", pad_or_trim(x, 4), [0, 1, 2, 3], atol=0)
    assert pad_or_trim(x).shape == (N_SAMPLES,)
    m = np.ones((3, 5))
    assert_close("axis 0", pad_or_trim(m, 4, axis=0),
                 np.vstack([np.ones((3, 5)), np.zeros((1, 5))]), atol=0)
    assert SAMPLE_RATE * 30 == N_SAMPLES


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"audio file is empty \(0 bytes\)"):
        load_audio(empty)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    match = "not an audio file soundfile or ffmpeg can read" if HAS_FFMPEG \
        else "not an audio file soundfile can read"
    with pytest.raises(ValueError, match=match):
        load_audio(text)
    no_frames = tmp_path / "zero.wav"
    sf.write(no_frames, np.zeros((0, 1)), 16000)
    with pytest.raises(ValueError, match=r"contains no samples \(0 frames\)"):
        load_audio(no_frames)
    with pytest.raises(ValueError, match="not a file"):
        load_audio(tmp_path)
    nan_wav = tmp_path / "nan.wav"
    data = np.zeros(100)
    data[[7, 50]] = [np.nan, np.inf]
    sf.write(nan_wav, data, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"has 2 NaN/inf samples \(first at frame 7, channel 0"):
        load_audio(nan_wav)


def test_array_errors():
    with pytest.raises(ValueError, match="contains no samples"):
        load_audio(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"has 1 NaN/inf samples \(first at frame 3, channel 1"):
        load_audio(np.array([[0, 0], [0, 0], [0, 0], [0, np.inf]]), sample_rate=16000)
    with pytest.raises(ValueError, match=r"\(2, 1000\) has more channels than frames.*array\.T"):
        load_audio(np.zeros((2, 1000)), sample_rate=16000)
    with pytest.raises(ValueError, match="must be 1-D"):
        load_audio(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="dtype uint8"):
        load_audio(np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="sample_rate must be a positive whole number"):
        load_audio(np.zeros(10), sample_rate=0)
    with pytest.raises(ValueError, match="sample_rate=8000 was passed with a file path"):
        load_audio("x.wav", sample_rate=8000)
    with pytest.raises(TypeError, match="expected a path or a numpy array"):
        load_audio([0.0, 1.0])
