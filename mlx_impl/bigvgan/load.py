"""Load the MLX BigVGAN from a checkpoint on disk: `load(path, dtype) -> BigVGAN`.

The checkpoint is a `bigvgan` folder (read by `weights.bigvgan`, numpy only), converted by
`mlx_impl.bigvgan.convert` and set strictly (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import checkpoint_path, load_strict
from mlx_impl.bigvgan.config import BigVGANConfig
from mlx_impl.bigvgan.convert import convert
from mlx_impl.bigvgan.model import BigVGAN
from weights.bigvgan import load as read_weights

_WRITES = ("a `bigvgan` folder: config.json + "
           "bigvgan_generator.pt")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> BigVGAN:
    """BigVGAN from `path_or_id`: see `_WRITES`."""
    path = checkpoint_path(path_or_id, "BigVGAN", _WRITES)
    w = read_weights(path)
    cfg = BigVGANConfig.from_dict(w.config)
    model = BigVGAN(cfg)
    return load_strict(model, convert(w.state), dtype, what="BigVGAN")
