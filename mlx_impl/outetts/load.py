"""Load OuteTTS from disk.

- `load(path, dtype) -> OrpheusLM` over an `OuteTTSConfig`: a transformers
  `LlamaForCausalLM.save_pretrained` folder, converted as Orpheus's (`mlx_impl.orpheus.convert`:
  the same Llama parameter names; the model class is the shared `DecoderLM` wrapper).
- `load_tts(path, dtype) -> OuteTTS`: a model folder with `lm/` (that folder) and `dac/` (a
  transformers `DacModel.save_pretrained` folder, `mlx_impl.dac.load`). Model ids resolve to
  such a folder through `mlx_impl.tts.models` (a local cache folder; nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import make_loader, require_parts
from mlx_impl.orpheus.convert import convert
from mlx_impl.orpheus.load import _read
from mlx_impl.orpheus.model import OrpheusLM
from mlx_impl.outetts.config import OuteTTSConfig

load = make_loader(
    "OuteTTS LM",
    "transformers `LlamaForCausalLM.save_pretrained` (config.json + model.safetensors)",
    _read, OuteTTSConfig.from_dict, OrpheusLM, convert, convert_takes_config=True)


def load_tts(path: str | Path, dtype: str | mx.Dtype = "float32"):
    from mlx_impl.dac.load import load as load_dac
    from mlx_impl.outetts.tts import OuteTTS

    folder = require_parts(path, "an OuteTTS", {
        "lm": "a LlamaForCausalLM save_pretrained folder",
        "dac": "a DacModel save_pretrained folder"})
    return OuteTTS(load(folder / "lm", dtype), load_dac(folder / "dac", "float32"))
