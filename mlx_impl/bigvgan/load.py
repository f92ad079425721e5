"""Load the MLX BigVGAN from a checkpoint on disk: `load(path, dtype) -> BigVGAN`.

The checkpoint is a `bigvgan` folder (config.json + bigvgan_generator.pt), read by
`weights.bigvgan` (numpy only), converted by `mlx_impl.bigvgan.convert` and set strictly by
`mlx_impl.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import load_checkpoint
from mlx_impl.bigvgan.config import BigVGANConfig
from mlx_impl.bigvgan.convert import convert
from mlx_impl.bigvgan.model import BigVGAN
from weights.bigvgan import load as read_weights

WRITES = (
    "a `bigvgan` folder (config.json + bigvgan_generator.pt)")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> BigVGAN:
    """BigVGAN from `path_or_id`, a checkpoint as `WRITES` says."""
    return load_checkpoint(path_or_id, dtype, what="BigVGAN", writes=WRITES, read=read_weights,
                           config=BigVGANConfig.from_dict,
                           build=lambda cfg, dt: BigVGAN(cfg),
                           convert=lambda state, cfg: convert(state))
