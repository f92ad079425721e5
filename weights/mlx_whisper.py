"""The checkpoint layout of mlx-whisper 0.4.3 (ml-explore's mlx-examples Whisper on PyPI), from the
canonical openai-whisper layout (numpy only): what its `load_models.load_model` reads from a
folder of config.json + weights.safetensors, as mlx-examples' `convert.py` writes it. Used by the
benchmarks (mlx-whisper as a peer engine) and the parity harness (`--port mlx-whisper`).
"""

from __future__ import annotations

import numpy as np


def mlx_whisper_layout(state: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Canonical (openai-whisper layout) state -> mlx_whisper 0.4.3 parameter names and layout."""
    out = {}
    for key, value in state.items():
        if key == "encoder.positional_embedding":
            continue  # mlx_whisper computes the encoder sinusoids; not a parameter there
        name = key.replace(".mlp.0.", ".mlp1.").replace(".mlp.2.", ".mlp2.")
        a = np.asarray(value)
        if key in ("encoder.conv1.weight", "encoder.conv2.weight"):
            a = a.transpose(0, 2, 1)  # torch (out, in, k) -> MLX channels-last (out, k, in)
        out[name] = np.ascontiguousarray(a.astype(dtype))
    return out

