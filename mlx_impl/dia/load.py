"""Load Dia from disk.

- `load(path, dtype) -> DiaModel`: a transformers `DiaForConditionalGeneration.save_pretrained`
  folder (config.json + model.safetensors), read by `weights.hf_safetensors.read_pretrained`
  (numpy), converted by `convert.py`, set strictly by `mlx_impl.loading.make_loader`.
- `load_tts(path, dtype) -> DiaTTS`: a model folder with `lm/` (that folder) and `dac/` (a
  transformers `DacModel.save_pretrained` folder, `mlx_impl.dac.load`, DAC 44.1 kHz). Model ids
  resolve to such a folder through `mlx_impl.tts.models` (a local cache; nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.dia.config import DiaConfig
from mlx_impl.dia.convert import convert
from mlx_impl.dia.model import DiaModel
from mlx_impl.loading import LoadError, make_loader, require_parts
from weights.hf_safetensors import read_pretrained


class _Read:
    def __init__(self, config: dict, state: dict):
        self.config, self.state = config, state


def _read(path: Path) -> _Read:
    return _Read(*read_pretrained(path, "DiaForConditionalGeneration", "dia", LoadError))


load = make_loader(
    "Dia", "transformers `DiaForConditionalGeneration.save_pretrained` (config.json + "
    "model.safetensors)", _read, DiaConfig.from_dict, DiaModel, convert)


def load_tts(path: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.dac.load import load as load_dac
    from mlx_impl.dia.tts import DiaTTS

    folder = require_parts(path, "a Dia", {
        "lm": "a DiaForConditionalGeneration save_pretrained folder",
        "dac": "a DacModel save_pretrained folder (44.1 kHz, 9 codebooks)"})
    model = load(folder / "lm", dtype)
    dac = load_dac(folder / "dac", "float32")
    n = model.config.decoder_config.num_channels
    if dac.cfg.n_codebooks != n:
        raise LoadError(f"{folder / 'dac'} has {dac.cfg.n_codebooks} codebooks, the Dia model "
                        f"{n} channels; pair it with a DAC of {n} codebooks")
    return DiaTTS(model, dac)
