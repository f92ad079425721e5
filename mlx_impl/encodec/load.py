"""Load the MLX EnCodec from a checkpoint on disk: `load(path, dtype) -> EncodecModel`.

The checkpoint is a transformers `EncodecModel.save_pretrained` folder, or the original
`encodec` package's checkpoint, read by `weights.encodec` (numpy only), converted by
`mlx_impl.encodec.convert` and set strictly by `mlx_impl.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import load_checkpoint
from mlx_impl.encodec.config import EncodecConfig
from mlx_impl.encodec.convert import convert
from mlx_impl.encodec.model import EncodecModel
from weights.encodec import load as read_weights

WRITES = (
    "a transformers `EncodecModel.save_pretrained` folder, or the original `encodec` "
    "package's checkpoint")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> EncodecModel:
    """EnCodec from `path_or_id`, a checkpoint as `WRITES` says."""
    return load_checkpoint(path_or_id, dtype, what="EnCodec", writes=WRITES, read=read_weights,
                           config=EncodecConfig.from_dict,
                           build=lambda cfg, dt: EncodecModel(cfg, dtype=dt),
                           convert=convert)
