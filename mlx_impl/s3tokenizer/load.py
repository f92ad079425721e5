"""Load the MLX S3 tokenizer from a checkpoint on disk: `load(path, dtype) -> S3Tokenizer`.

The checkpoint is a folder with config.json and the `s3tokenizer` state dict (torch.save) (read
by `weights.s3tokenizer`, numpy only), converted by `mlx_impl.s3tokenizer.convert` and set
strictly (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, checkpoint_path, load_strict
from mlx_impl.s3tokenizer.config import S3TokenizerConfig
from mlx_impl.s3tokenizer.convert import convert
from mlx_impl.s3tokenizer.model import S3Tokenizer
from weights.s3tokenizer import load as read_weights

_WRITES = ("a folder with config.json and the `s3tokenizer` state dict "
           "(torch.save)")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> S3Tokenizer:
    """S3 tokenizer from `path_or_id`: see `_WRITES`."""
    path = checkpoint_path(path_or_id, "S3 tokenizer", _WRITES)
    w = read_weights(path)
    cfg = S3TokenizerConfig.from_dict(w.config)
    model = S3Tokenizer(cfg, dtype=as_dtype(dtype))
    return load_strict(model, convert(w.state), dtype, what="S3 tokenizer")
