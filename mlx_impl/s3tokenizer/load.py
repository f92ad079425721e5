"""Load the MLX S3 tokenizer from a checkpoint on disk: `load(path, dtype) -> S3Tokenizer`.

The checkpoint is a folder with config.json and the `s3tokenizer` state dict (torch.save), read
by `weights.s3tokenizer` (numpy only), converted by `mlx_impl.s3tokenizer.convert` and set
strictly by `mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.loading import make_loader
from mlx_impl.s3tokenizer.config import S3TokenizerConfig
from mlx_impl.s3tokenizer.convert import convert
from mlx_impl.s3tokenizer.model import S3Tokenizer
from weights.s3tokenizer import load as read_weights

load = make_loader(
    "S3 tokenizer",
    "a folder with config.json and the `s3tokenizer` state dict (torch.save)",
    read_weights, S3TokenizerConfig.from_dict, S3Tokenizer, convert)
