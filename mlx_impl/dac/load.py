"""Load the MLX DAC from a checkpoint on disk: `load(path, dtype) -> DacModel`.

The checkpoint is a transformers `DacModel.save_pretrained` folder (config.json +
model.safetensors), read by `weights.dac` (numpy only), converted by `mlx_impl.dac.convert` and
set strictly by `mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.loading import make_loader
from mlx_impl.dac.config import DacConfig
from mlx_impl.dac.convert import convert
from mlx_impl.dac.model import DacModel
from weights.dac import load as read_weights

load = make_loader(
    "DAC",
    "a transformers `DacModel.save_pretrained` folder (config.json + "
    "model.safetensors)",
    read_weights, DacConfig.from_dict, DacModel, convert)
