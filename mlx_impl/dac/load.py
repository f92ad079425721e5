"""Load the MLX DAC from a checkpoint on disk: `load(path, dtype) -> DacModel`.

The checkpoint is a transformers `DacModel.save_pretrained` folder (read by `weights.dac`, numpy
only), converted by `mlx_impl.dac.convert` and set strictly (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, checkpoint_path, load_strict
from mlx_impl.dac.config import DacConfig
from mlx_impl.dac.convert import convert
from mlx_impl.dac.model import DacModel
from weights.dac import load as read_weights

_WRITES = ("a transformers `DacModel.save_pretrained` folder: config.json "
           "+ model.safetensors")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> DacModel:
    """DAC from `path_or_id`: see `_WRITES`."""
    path = checkpoint_path(path_or_id, "DAC", _WRITES)
    w = read_weights(path)
    cfg = DacConfig.from_dict(w.config)
    model = DacModel(cfg, dtype=as_dtype(dtype))
    return load_strict(model, convert(w.state), dtype, what="DAC")
