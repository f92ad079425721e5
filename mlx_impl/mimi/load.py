"""Load the MLX Mimi from a checkpoint on disk: `load(path, dtype) -> MimiModel`.

The checkpoint is a transformers `MimiModel.save_pretrained` folder (read by `weights.mimi`,
numpy only), converted by `mlx_impl.mimi.convert` and set strictly
(`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, checkpoint_path, load_strict
from mlx_impl.mimi.config import MimiConfig
from mlx_impl.mimi.convert import convert
from mlx_impl.mimi.model import MimiModel
from weights.mimi import load as read_weights

_WRITES = ("a transformers `MimiModel.save_pretrained` folder: "
           "config.json + model.safetensors")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> MimiModel:
    """Mimi from `path_or_id`: see `_WRITES`."""
    path = checkpoint_path(path_or_id, "Mimi", _WRITES)
    w = read_weights(path)
    cfg = MimiConfig.from_dict(w.config)
    model = MimiModel(cfg, dtype=as_dtype(dtype))
    return load_strict(model, convert(w.state, cfg), dtype, what="Mimi")
