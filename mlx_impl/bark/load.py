"""Load Bark from disk.

- `load(path, dtype) -> BarkModel`: a transformers `BarkModel.save_pretrained` folder
  (config.json + generation_config.json + model.safetensors), read by
  `weights.hf_safetensors.read_pretrained` (numpy), converted by `convert.py`, set strictly by
  `mlx_impl.loading.make_loader`. The EnCodec inside (`codec_model.*`) is `mlx_impl.encodec`'s.
- `load_tts(path, dtype) -> BarkTTS`: the same folder, as a `TextToSpeech`. Model ids resolve to
  such a folder through `mlx_impl.tts.models` (a local cache; nothing is downloaded).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx

from mlx_impl.bark.config import BarkConfig
from mlx_impl.bark.convert import convert
from mlx_impl.bark.model import BarkModel
from mlx_impl.loading import LoadError, make_loader
from weights.hf_safetensors import read_pretrained


class _Read:
    def __init__(self, config: dict, state: dict):
        self.config, self.state = config, state


def _read(path: Path) -> _Read:
    config, state = read_pretrained(path, "BarkModel", "bark", LoadError)
    gen = Path(path) / "generation_config.json"
    if not gen.is_file():
        raise LoadError(f"{path} has no generation_config.json; Bark's token offsets and windows "
                        "live there (BarkModel.save_pretrained writes it from a "
                        "GenerationConfig with semantic_config / coarse_acoustics_config / "
                        "fine_acoustics_config)")
    config["generation"] = json.loads(gen.read_text())
    return _Read(config, state)


load = make_loader(
    "Bark", "transformers `BarkModel.save_pretrained` (config.json + generation_config.json + "
    "model.safetensors)", _read, BarkConfig.from_dict, BarkModel, convert,
    convert_takes_config=True)


def load_tts(path: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.bark.tts import BarkTTS

    return BarkTTS(load(path, dtype))
