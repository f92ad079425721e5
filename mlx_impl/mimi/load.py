"""Load the MLX Mimi from a checkpoint on disk: `load(path, dtype) -> MimiModel`.

The checkpoint is a transformers `MimiModel.save_pretrained` folder (config.json +
model.safetensors), read by `weights.mimi` (numpy only), converted by `mlx_impl.mimi.convert`
and set strictly by `mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.loading import make_loader
from mlx_impl.mimi.config import MimiConfig
from mlx_impl.mimi.convert import convert
from mlx_impl.mimi.model import MimiModel
from weights.mimi import load as read_weights

load = make_loader(
    "Mimi",
    "a transformers `MimiModel.save_pretrained` folder (config.json + "
    "model.safetensors)",
    read_weights, MimiConfig.from_dict, MimiModel, convert,
    convert_takes_config=True)
