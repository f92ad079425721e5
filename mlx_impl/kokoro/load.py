"""Load the MLX Kokoro from a folder on disk: `load(path, dtype) -> KokoroModel`.

The folder is kokoro's (config.json + kokoro.pth: {part: state dict}), read by
`weights.kokoro` (numpy only), converted by `mlx_impl.kokoro.convert` and set strictly by
`mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.kokoro.config import KokoroConfig
from mlx_impl.kokoro.convert import convert
from mlx_impl.kokoro.model import KokoroModel
from mlx_impl.loading import make_loader
from weights.kokoro import load as read_weights

load = make_loader(
    "Kokoro",
    "a kokoro folder (config.json + kokoro.pth, `python -m parity.tts_models build <id>`)",
    read_weights, KokoroConfig.from_dict, KokoroModel, convert)


def load_tts(path, dtype="float32"):
    """The `TextToSpeech` of a Kokoro folder (config.json, kokoro.pth, voices/)."""
    from pathlib import Path

    from mlx_impl.kokoro.tts import KokoroTTS

    return KokoroTTS(load(path, dtype), Path(path))
