"""Load the MLX DAC from a checkpoint on disk: `load(path, dtype) -> DacModel`.

The checkpoint is a transformers `DacModel.save_pretrained` folder (config.json +
model.safetensors), read by `weights.dac` (numpy only), converted by `mlx_impl.dac.convert` and
set strictly by `mlx_impl.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import load_checkpoint
from mlx_impl.dac.config import DacConfig
from mlx_impl.dac.convert import convert
from mlx_impl.dac.model import DacModel
from weights.dac import load as read_weights

WRITES = (
    "a transformers `DacModel.save_pretrained` folder (config.json + "
    "model.safetensors)")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> DacModel:
    """DAC from `path_or_id`, a checkpoint as `WRITES` says."""
    return load_checkpoint(path_or_id, dtype, what="DAC", writes=WRITES, read=read_weights,
                           config=DacConfig.from_dict,
                           build=lambda cfg, dt: DacModel(cfg, dtype=dt),
                           convert=lambda state, cfg: convert(state))
