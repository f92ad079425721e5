"""Load Orpheus from disk.

- `load(path, dtype) -> OrpheusLM`: a transformers `LlamaForCausalLM.save_pretrained` folder
  (config.json + model.safetensors), read by `weights.hf_safetensors.read_pretrained` (numpy),
  converted by `convert.py`, set strictly by `mlx_impl.loading.make_loader`.
- `load_tts(path, dtype) -> OrpheusTTS`: a model folder with `lm/` (that folder) and `snac/`
  (a `snac` package folder, `mlx_impl.snac.load`). Model ids are resolved to such a folder by
  `mlx_impl.tts.models` (a local cache folder; nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import LoadError, make_loader, require_parts
from mlx_impl.orpheus.config import OrpheusConfig
from mlx_impl.orpheus.convert import convert
from mlx_impl.orpheus.model import OrpheusLM
from weights.hf_safetensors import read_pretrained


class _Read:
    def __init__(self, config: dict, state: dict):
        self.config, self.state = config, state


def _read(path: Path) -> _Read:
    return _Read(*read_pretrained(path, "LlamaForCausalLM", "llama", LoadError))


load = make_loader(
    "Orpheus LM",
    "transformers `LlamaForCausalLM.save_pretrained` (config.json + model.safetensors)",
    _read, OrpheusConfig.from_dict, OrpheusLM, convert, convert_takes_config=True)


def load_tts(path: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.orpheus.tts import OrpheusTTS
    from mlx_impl.snac.load import load as load_snac

    folder = require_parts(path, "an Orpheus", {
        "lm": "a LlamaForCausalLM save_pretrained folder",
        "snac": "config.json + pytorch_model.bin"})
    return OrpheusTTS(load(folder / "lm", dtype), load_snac(folder / "snac", "float32"))
