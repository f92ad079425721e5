"""Load the MLX SNAC from a checkpoint on disk: `load(path, dtype) -> SnacModel`.

The checkpoint is a `snac` package folder (config.json + pytorch_model.bin), read by
`weights.snac` (numpy only), converted by `mlx_impl.snac.convert` and set strictly by
`mlx_impl.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import load_checkpoint
from mlx_impl.snac.config import SnacConfig
from mlx_impl.snac.convert import convert
from mlx_impl.snac.model import SnacModel
from weights.snac import load as read_weights

WRITES = (
    "a `snac` package folder (config.json + pytorch_model.bin)")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> SnacModel:
    """SNAC from `path_or_id`, a checkpoint as `WRITES` says."""
    return load_checkpoint(path_or_id, dtype, what="SNAC", writes=WRITES, read=read_weights,
                           config=SnacConfig.from_dict,
                           build=lambda cfg, dt: SnacModel(cfg, dtype=dt),
                           convert=lambda state, cfg: convert(state))
