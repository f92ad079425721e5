"""Position encodings."""

from __future__ import annotations

import numpy as np


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """Sinusoidal positions as openai-whisper's `sinusoids`: [sin | cos] halves, (length, channels).

    Computed in float32 with the same operation order as upstream (torch float32), so the table
    matches the checkpoints' stored `encoder.positional_embedding` to the last bit or so.
    """
    if channels % 2:
        raise ValueError(f"sinusoids need an even channel count, got {channels}")
    log_timescale_increment = np.float32(np.log(max_timescale) / (channels // 2 - 1))
    inv_timescales = np.exp(-log_timescale_increment * np.arange(channels // 2, dtype=np.float32))
    scaled_time = np.arange(length, dtype=np.float32)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled_time), np.cos(scaled_time)], axis=1).astype(np.float32)
