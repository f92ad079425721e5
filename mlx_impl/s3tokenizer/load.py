"""Load the MLX S3 tokenizer from a checkpoint on disk: `load(path, dtype) -> S3Tokenizer`.

The checkpoint is a folder with config.json and the `s3tokenizer` state dict (torch.save), read
by `weights.s3tokenizer` (numpy only), converted by `mlx_impl.s3tokenizer.convert` and set
strictly by `mlx_impl.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import load_checkpoint
from mlx_impl.s3tokenizer.config import S3TokenizerConfig
from mlx_impl.s3tokenizer.convert import convert
from mlx_impl.s3tokenizer.model import S3Tokenizer
from weights.s3tokenizer import load as read_weights

WRITES = (
    "a folder with config.json and the `s3tokenizer` state dict (torch.save)")


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> S3Tokenizer:
    """S3 tokenizer from `path_or_id`, a checkpoint as `WRITES` says."""
    return load_checkpoint(path_or_id, dtype, what="S3 tokenizer", writes=WRITES, read=read_weights,
                           config=S3TokenizerConfig.from_dict,
                           build=lambda cfg, dt: S3Tokenizer(cfg, dtype=dt),
                           convert=lambda state, cfg: convert(state))
