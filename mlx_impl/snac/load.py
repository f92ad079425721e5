"""Load the MLX SNAC from a checkpoint on disk: `load(path, dtype) -> SnacModel`.

The checkpoint is a `snac` package folder (config.json + pytorch_model.bin), read by
`weights.snac` (numpy only), converted by `mlx_impl.snac.convert` and set strictly by
`mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.loading import make_loader
from mlx_impl.snac.config import SnacConfig
from mlx_impl.snac.convert import convert
from mlx_impl.snac.model import SnacModel
from weights.snac import load as read_weights

load = make_loader(
    "SNAC",
    "a `snac` package folder (config.json + pytorch_model.bin)",
    read_weights, SnacConfig.from_dict, SnacModel, convert)
