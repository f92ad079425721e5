"""Load the MLX BigVGAN from a checkpoint on disk: `load(path, dtype) -> BigVGAN`.

The checkpoint is a `bigvgan` folder (config.json + bigvgan_generator.pt), read by
`weights.bigvgan` (numpy only), converted by `mlx_impl.bigvgan.convert` and set strictly by
`mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.loading import make_loader
from mlx_impl.bigvgan.config import BigVGANConfig
from mlx_impl.bigvgan.convert import convert
from mlx_impl.bigvgan.model import BigVGAN
from weights.bigvgan import load as read_weights

load = make_loader(
    "BigVGAN",
    "a `bigvgan` folder (config.json + bigvgan_generator.pt)",
    read_weights, BigVGANConfig.from_dict, lambda cfg, dt: BigVGAN(cfg), convert)
