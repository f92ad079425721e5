"""Load the MLX Mimi from a checkpoint on disk: `load(path, dtype) -> MimiModel`.

The checkpoint is a transformers `MimiModel.save_pretrained` folder (config.json +
model.safetensors), read by `weights.mimi` (numpy only), converted by `mlx_impl.mimi.convert`
and set strictly by `mlx_impl.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import load_checkpoint
from mlx_impl.mimi.config import MimiConfig
from mlx_impl.mimi.convert import convert
from mlx_impl.mimi.model import MimiModel
from weights.mimi import load as read_weights

WRITES = (
    "a transformers `MimiModel.save_pretrained` folder (config.json + "
    "model.safetensors)")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> MimiModel:
    """Mimi from `path_or_id`, a checkpoint as `WRITES` says."""
    return load_checkpoint(path_or_id, dtype, what="Mimi", writes=WRITES, read=read_weights,
                           config=MimiConfig.from_dict,
                           build=lambda cfg, dt: MimiModel(cfg, dtype=dt),
                           convert=convert)
