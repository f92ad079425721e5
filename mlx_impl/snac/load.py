"""Load the MLX SNAC from a checkpoint on disk: `load(path, dtype) -> SnacModel`.

The checkpoint is a `snac` package folder (read by `weights.snac`, numpy only), converted by
`mlx_impl.snac.convert` and set strictly (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, checkpoint_path, load_strict
from mlx_impl.snac.config import SnacConfig
from mlx_impl.snac.convert import convert
from mlx_impl.snac.model import SnacModel
from weights.snac import load as read_weights

_WRITES = ("a `snac` package folder: config.json + "
           "pytorch_model.bin")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> SnacModel:
    """SNAC from `path_or_id`: see `_WRITES`."""
    path = checkpoint_path(path_or_id, "SNAC", _WRITES)
    w = read_weights(path)
    cfg = SnacConfig.from_dict(w.config)
    model = SnacModel(cfg, dtype=as_dtype(dtype))
    return load_strict(model, convert(w.state), dtype, what="SNAC")
