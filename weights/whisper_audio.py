"""Whisper's audio constants and `pad_or_trim`, defined once for both sides.

Upstream: openai-whisper 20250625 `whisper/audio.py`. Here, in the neutral package (numpy and
the standard library only), so that the MLX front ends (`mlx_impl.layers.audio`), the Whisper,
Voxtral and S3 tokenizer packages, `mlx_impl.audio_io`, the parity specs and the torch reference
adapters read the same values without importing mlx or torch.
"""

from __future__ import annotations

import sys

import numpy as np

SAMPLE_RATE = 16000  # Hz, Whisper's input rate
N_FFT = 400  # STFT frame, 25 ms
HOP_LENGTH = 160  # STFT hop, 10 ms: one mel frame
CHUNK_LENGTH = 30  # seconds in one window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a window
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100


def pad_or_trim(array, length: int = N_SAMPLES, *, axis: int = -1):
    """Zero-pad at the end or cut `array` along `axis` to `length` (a 30-s window of samples by
    default; pass N_FRAMES and axis=0 for (frames, n_mels) mel), as openai-whisper's. Takes a
    numpy array (or anything numpy reads) or an mx.array, and returns the same type."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if type(array).__module__ == "mlx.core":
        # an mx.array: pad with mlx.core, which its caller has loaded; this module imports
        # no mlx, since the torch side uses it too
        xp = sys.modules["mlx.core"]
    else:
        array, xp = np.asarray(array), np
    axis = axis % array.ndim
    n = array.shape[axis]
    if n > length:
        return array[(slice(None),) * axis + (slice(0, length),)]
    if n < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - n)
        return xp.pad(array, widths)
    return array
