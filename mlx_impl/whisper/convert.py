"""Canonical Whisper weights (openai-whisper state-dict layout, numpy) -> MLX parameter tree.

The MLX modules carry upstream's attribute names, so conversion is no renames and two transposes:
conv kernels go from torch's (out, in, k) to MLX's channels-last (out, k, in). The stored encoder
positions are kept (openai-whisper loads them over its computed buffer) after a check that they
are Whisper's sinusoids.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.positions import sinusoids

CONV_KERNELS = ("encoder.conv1.weight", "encoder.conv2.weight")
POSITIONS = "encoder.positional_embedding"
# Largest |stored - computed| accepted for the sinusoid table: checkpoints stored in float16
# round values in [-1, 1] to within 2**-11 (measured 4.9e-4 on the tiny.en/base model.bin).
POSITIONS_ATOL = 2.0**-10


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the MLX parameter dict for a canonical (openai layout) Whisper state dict."""
    out = {}
    for name, value in state.items():
        if name == POSITIONS:
            check_positions(value)
        if name in CONV_KERNELS:
            if value.ndim != 3:
                raise ValueError(f"{name}: expected a conv kernel (out, in, k), got {value.shape}")
            value = value.transpose(0, 2, 1)  # torch (out, in, k) -> MLX channels-last (out, k, in)
        out[name] = value
    return out


def check_positions(table: np.ndarray) -> None:
    want = sinusoids(*table.shape)
    err = float(np.max(np.abs(table.astype(np.float32) - want)))
    if err > POSITIONS_ATOL:
        raise ValueError(
            f"encoder.positional_embedding differs from the sinusoid table by {err:.3g} "
            f"(> {POSITIONS_ATOL:.3g}): these weights do not use Whisper's encoder positions")
