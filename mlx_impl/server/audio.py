"""Uploaded audio in, synthesized audio out.

In: the upload's bytes go to a temporary file (its suffix from the client's file name, so
ffmpeg can tell formats apart) and through `mlx_impl.audio_io.load_audio`, the loader the CLIs
use: libsndfile (soundfile) for wav/flac/ogg, the ffmpeg command for the rest (mp3, m4a, webm,
...). Anything it refuses (empty, truncated, not audio, NaN samples) is a ValueError with the
reason, which the server answers with 400.

Out (`encode`), 16-bit mono at the model's rate:
- wav, flac: soundfile (libsndfile), PCM_16, the same samples as pcm;
- pcm: raw signed 16-bit little-endian samples, no header (OpenAI's `pcm`), numpy;
- mp3: ffmpeg's libmp3lame, 128 kb/s; opus: ffmpeg's libopus in an Ogg container, 64 kb/s
  (at 48 kHz when the model's rate is not one Opus codes: 8/12/16/24/48 kHz); aac: ffmpeg's
  native AAC encoder in ADTS frames, 128 kb/s.
`speed` (OpenAI's 0.25-4.0) changes tempo without changing pitch with ffmpeg's `atempo` filter
(chained, since one `atempo` takes 0.5-100).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import tempfile

import numpy as np

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
                 "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}
ENCODER = {"wav": "soundfile (libsndfile)", "flac": "soundfile (libsndfile)", "pcm": "numpy",
           "mp3": "ffmpeg libmp3lame", "opus": "ffmpeg libopus", "aac": "ffmpeg aac"}
_FFMPEG_ARGS = {"mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
                "opus": ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"],
                "aac": ["-c:a", "aac", "-b:a", "128k", "-f", "adts"]}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def decode_upload(data: bytes, filename: str | None) -> np.ndarray:
    """16 kHz mono float32 samples of an uploaded file; ValueError when it is not audio."""
    from mlx_impl.audio_io import load_audio

    if not data:
        raise ValueError("the uploaded file is empty (0 bytes); send an audio file")
    match = re.search(r"\.([A-Za-z0-9]{1,5})$", filename or "")
    suffix = "." + match.group(1).lower() if match else ""
    fd, path = tempfile.mkstemp(prefix="mlx-audio-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return load_audio(path)
        except ValueError as e:
            # the temporary path means nothing to the client
            raise ValueError(str(e).replace(path, repr(filename or "the upload"))) from None
    finally:
        os.unlink(path)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_stream_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length: the RIFF and data sizes are
    0xFFFFFFFF, the convention readers (ffmpeg, libsndfile) take as 'until the end'."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise RuntimeError("ffmpeg is not installed; it encodes mp3/opus/aac and applies speed "
                           "(Debian: apt install ffmpeg; macOS: brew install ffmpeg)")
    return path


def _run_ffmpeg(args: list[str], data: bytes) -> bytes:
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", *args]
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({' '.join(cmd)}): {r.stderr.decode(errors='replace')}")
    return r.stdout


def atempo_chain(speed: float) -> str:
    """ffmpeg's filter for a tempo factor: atempo takes [0.5, 100], so 0.25 is 0.5 twice."""
    if not 0.25 <= speed <= 4.0:
        raise ValueError(f"speed must be in [0.25, 4.0], got {speed}")
    parts = []
    while speed < 0.5:
        parts.append(0.5)
        speed /= 0.5
    parts.append(speed)
    return ",".join(f"atempo={p:.6g}" for p in parts)


def change_speed(audio: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """Tempo x `speed` at the same pitch (ffmpeg atempo); the input when speed is 1."""
    if speed == 1.0:
        return audio
    out = _run_ffmpeg(["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
                       "-af", atempo_chain(speed), "-f", "f32le", "pipe:1"],
                      np.ascontiguousarray(audio, dtype="<f4").tobytes())
    return np.frombuffer(out, dtype="<f4").copy()


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """(N,) float32 -> the bytes of a `fmt` file (module docstring: which library does which)."""
    if fmt == "pcm":
        return pcm16(audio)
    if fmt in ("wav", "flac"):
        import soundfile as sf

        buf = io.BytesIO()
        # the pcm samples themselves (soundfile's own float scaling differs by one step)
        sf.write(buf, np.frombuffer(pcm16(audio), "<i2"), sample_rate, subtype="PCM_16",
                 format=fmt.upper())
        return buf.getvalue()
    if fmt in _FFMPEG_ARGS:
        rate = [] if fmt != "opus" or sample_rate in _OPUS_RATES else ["-ar", "48000"]
        # bitexact: no random Ogg serial number, no version tag: the same audio gives the same
        # bytes (a fixed seed gives the same response)
        return _run_ffmpeg(["-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
                            *rate, *_FFMPEG_ARGS[fmt], "-fflags", "+bitexact",
                            "-flags:a", "+bitexact", "pipe:1"], pcm16(audio))
    raise ValueError(f"unknown audio format {fmt!r}; choose one of {', '.join(FORMATS)}")
