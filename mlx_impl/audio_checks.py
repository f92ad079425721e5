"""Input checks shared by the codecs' encoders (DAC, SNAC, Mimi, EnCodec): one message per fault.

Each names the problem and the fix: wrong sample rate, wrong layout or channel count, no samples,
fewer samples than one frame, integer samples.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def codec_audio(audio, sample_rate: int, expected_rate: int, dtype: mx.Dtype,
                channels: int | None = None, hop_length: int | None = None) -> mx.array:
    """Checked `audio` cast to `dtype`: (batch, samples) when `channels` is None (mono models),
    else (batch, samples, channels); at least `hop_length` samples when given."""
    if sample_rate != expected_rate:
        raise ValueError(f"expected {expected_rate} Hz audio, got {sample_rate} Hz; "
                         f"resample to {expected_rate} Hz first (e.g. "
                         f"mlx_impl.audio_io.load_audio(path, sr={expected_rate}))")
    audio = mx.array(audio) if isinstance(audio, np.ndarray) else audio
    if channels is None:
        if audio.ndim != 2:
            raise ValueError(f"expected mono audio (batch, samples), got shape {audio.shape}; "
                             "a clip x of shape (N,) is x[None]; down-mix stereo to mono")
    else:
        if audio.ndim != 3:
            raise ValueError(f"expected audio (batch, samples, channels), got shape "
                             f"{audio.shape}; a mono clip x of shape (N,) is x[None, :, None]")
        if audio.shape[2] != channels:
            raise ValueError(f"expected {channels}-channel audio, got {audio.shape[2]} channels "
                             f"(shape {audio.shape}); "
                             + ("down-mix to mono" if channels == 1
                                else "duplicate a mono channel or pass stereo"))
    if audio.shape[1] == 0:
        raise ValueError("audio contains no samples (length 0); pass audio with content")
    if hop_length is not None and audio.shape[1] < hop_length:
        raise ValueError(f"audio has {audio.shape[1]} samples, fewer than one frame "
                         f"({hop_length} samples at {expected_rate} Hz); pad it")
    if not mx.issubdtype(audio.dtype, mx.floating):
        raise ValueError(f"expected float audio in [-1, 1], got dtype {audio.dtype}")
    return audio.astype(dtype)
