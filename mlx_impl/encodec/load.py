"""Load the MLX EnCodec from a checkpoint on disk: `load(path, dtype) -> EncodecModel`.

The checkpoint is a transformers `EncodecModel.save_pretrained` folder, or the original
`encodec` package's checkpoint, read by `weights.encodec` (numpy only), converted by
`mlx_impl.encodec.convert` and set strictly by `mlx_impl.loading.make_loader`.
"""

from __future__ import annotations

from mlx_impl.loading import make_loader
from mlx_impl.encodec.config import EncodecConfig
from mlx_impl.encodec.convert import convert
from mlx_impl.encodec.model import EncodecModel
from weights.encodec import load as read_weights

load = make_loader(
    "EnCodec",
    "a transformers `EncodecModel.save_pretrained` folder, or the original `encodec` "
    "package's checkpoint",
    read_weights, EncodecConfig.from_dict, EncodecModel, convert,
    convert_takes_config=True)
