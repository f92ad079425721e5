"""Audio loading for speech models: any file or array -> float32 mono at the model's rate.

numpy, scipy and soundfile only; ffmpeg (the command-line tool) is used, when installed, for
formats libsndfile cannot read (mp3 on old libsndfile, m4a/aac, video containers, ...).

Upstream counterpart: openai-whisper 20250625 `whisper/audio.py` `load_audio` (its constants and
`pad_or_trim` are in `weights.whisper_audio`, shared with the torch side).
Deviations from upstream:
- Files are decoded by soundfile at their own rate and resampled here with a polyphase filter
  (`scipy.signal.resample_poly`, Kaiser window, beta 5) instead of by ffmpeg's resampler to 16-bit
  PCM, so samples differ slightly from upstream's (no 16-bit quantisation, a different filter).
  Files that soundfile cannot read go through ffmpeg to a 32-bit float wav at their own rate and
  then the same path.
- Channels are averaged (upstream: ffmpeg's `-ac 1` down-mix, also an average for stereo).
- Bad input raises with the problem and the fix instead of returning garbage or an ffmpeg log:
  missing or empty files, non-audio files, audio without samples, NaN/inf samples.

Pure silence (all zeros) is valid input and is returned as zeros; a model then decides that
nothing was said (Whisper: no-speech probability).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from weights.whisper_audio import SAMPLE_RATE

FFMPEG_INSTALL_HINT = ("install ffmpeg (Debian/Ubuntu: apt install ffmpeg; macOS: brew install "
                       "ffmpeg; conda: conda install -c conda-forge ffmpeg) or convert the file to "
                       "wav/flac first")


def load_audio(source: str | os.PathLike | np.ndarray, sr: int = SAMPLE_RATE, *,
               sample_rate: int | None = None) -> np.ndarray:
    """Audio as a float32 mono waveform at `sr` Hz, shape (samples,).

    source: a path (wav, flac, ogg and whatever else libsndfile reads; other formats through
        ffmpeg when it is installed), or an array of samples: float in [-1, 1] nominal (not
        clipped), or int16/int32 PCM (scaled by 2**15 / 2**31). A 2-D array is
        (frames, channels), the layout soundfile returns; its channels are averaged. A
        (channels, frames) array must be transposed first (it is refused when it has more
        columns than rows, which a (frames, channels) clip never has).
    sr: the rate to return.
    sample_rate: the rate of an array `source`; None means the array is already at `sr` (as
        upstream assumes for arrays). Not allowed with a path: a file carries its own rate.
    """
    _check_rate("sr", sr)
    if isinstance(source, np.ndarray) and sample_rate is None:
        sample_rate = sr
    mono, rate = load_audio_native(source, sample_rate=sample_rate)
    return resample(mono, rate, sr).astype(np.float32)


def load_audio_native(source: str | os.PathLike | np.ndarray, *,
                      sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """(float64 mono samples (N,), their rate) at the source's own rate, with `load_audio`'s
    checks; an array `source` needs its `sample_rate`."""
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise ValueError("an audio array needs its rate; pass sample_rate=")
        _check_rate("sample_rate", sample_rate)
        data = _array_samples(source)
        where = "audio array"
    elif isinstance(source, (str, os.PathLike)):
        if sample_rate is not None:
            raise ValueError(f"sample_rate={sample_rate} was passed with a file path; a file "
                             f"carries its own rate. Pass sample_rate= only with an array")
        data, sample_rate = _read_file(Path(source))
        where = f"audio file {source}"
    else:
        raise TypeError(f"expected a path or a numpy array of samples, got {type(source).__name__}")

    if data.shape[0] == 0:
        raise ValueError(f"{where} contains no samples (0 frames); pass audio with content")
    _check_finite(data, where)
    return data.mean(axis=1, dtype=np.float64), int(sample_rate)


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Resample along the last axis with a polyphase filter at the exact rational ratio
    new_sr / orig_sr (reduced by their gcd); length ceil(n * new_sr / orig_sr)."""
    if orig_sr == new_sr:
        return np.asarray(x)
    g = math.gcd(int(orig_sr), int(new_sr))
    return resample_poly(x, int(new_sr) // g, int(orig_sr) // g, axis=-1)


def _check_rate(name: str, rate) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer, float)) or rate <= 0 \
            or rate != int(rate):
        raise ValueError(f"{name} must be a positive whole number of Hz, got {rate!r}")


def _array_samples(array: np.ndarray) -> np.ndarray:
    """(frames, channels) float64 from a 1-D or 2-D float or int PCM array."""
    if array.dtype.kind == "f":
        data = array.astype(np.float64)
    elif array.dtype == np.int16:
        data = array.astype(np.float64) / 2**15
    elif array.dtype == np.int32:
        data = array.astype(np.float64) / 2**31
    else:
        raise ValueError(f"audio array has dtype {array.dtype}; pass float samples in [-1, 1] "
                         f"or int16/int32 PCM")
    if data.ndim == 1:
        return data[:, None]
    if data.ndim == 2:
        if data.shape[1] > data.shape[0]:
            raise ValueError(f"audio array of shape {data.shape} has more channels than frames; "
                             f"expected (frames, channels) as soundfile returns. If it is "
                             f"(channels, frames), pass array.T")
        return data
    raise ValueError(f"audio array must be 1-D (samples,) or 2-D (frames, channels), "
                     f"got shape {data.shape}")


def _check_finite(data: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(data)
    if bad.any():
        first = tuple(int(v) for v in np.argwhere(bad)[0])
        frame, channel = first
        raise ValueError(f"{where} has {int(bad.sum())} NaN/inf samples (first at frame "
                         f"{frame}, channel {channel}: {data[first]}); clean or re-export "
                         f"the audio")


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    """(frames, channels) float64 and the file's rate."""
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}; pass the path of an audio file")
    if path.stat().st_size == 0:
        raise ValueError(f"audio file is empty (0 bytes): {path}")
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
        return data, int(rate)
    except sf.LibsndfileError as e:  # not a format libsndfile knows
        soundfile_error = str(e)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ValueError(f"not an audio file soundfile can read: {path} ({soundfile_error}). "
                         f"If it is audio in another format (mp3, m4a, ...), {FFMPEG_INSTALL_HINT}")
    return _read_with_ffmpeg(ffmpeg, path, soundfile_error)


def _read_with_ffmpeg(ffmpeg: str, path: Path, soundfile_error: str) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to a float wav at the source's own rate and channels, then read it."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "decoded.wav"
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
               "-vn", "-acodec", "pcm_f32le", "-f", "wav", str(wav)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not wav.exists():
            detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ValueError(f"not an audio file soundfile or ffmpeg can read: {path} "
                             f"(soundfile: {soundfile_error}; ffmpeg: {detail})")
        data, rate = sf.read(str(wav), dtype="float64", always_2d=True)
    return data, int(rate)
