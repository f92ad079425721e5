"""Load the MLX EnCodec from a checkpoint on disk: `load(path, dtype) -> EncodecModel`.

The checkpoint is a transformers `EncodecModel.save_pretrained` folder, or the original
`encodec` package's checkpoint (read by `weights.encodec`, numpy only), converted by
`mlx_impl.encodec.convert` and set strictly (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, checkpoint_path, load_strict
from mlx_impl.encodec.config import EncodecConfig
from mlx_impl.encodec.convert import convert
from mlx_impl.encodec.model import EncodecModel
from weights.encodec import load as read_weights

_WRITES = ("a transformers `EncodecModel.save_pretrained` folder, or the "
           "original `encodec` package's checkpoint")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> EncodecModel:
    """EnCodec from `path_or_id`: see `_WRITES`."""
    path = checkpoint_path(path_or_id, "EnCodec", _WRITES)
    w = read_weights(path)
    cfg = EncodecConfig.from_dict(w.config)
    model = EncodecModel(cfg, dtype=as_dtype(dtype))
    return load_strict(model, convert(w.state, cfg), dtype, what="EnCodec")
