"""Load the MLX Vocos from a checkpoint on disk: `load(path, dtype) -> Vocos`.

The checkpoint is the `vocos` package's folder (config.yaml + pytorch_model.bin, read by
`weights.vocos`, numpy only), converted by `mlx_impl.vocos.convert` and set strictly
(`mlx_impl.loading.load_strict`). The mel variant's filterbank is a computed buffer, set after
loading (it is not a parameter).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, checkpoint_path, load_strict
from mlx_impl.vocos.config import VocosConfig
from mlx_impl.vocos.convert import convert
from mlx_impl.vocos.model import Vocos
from weights.vocos import load as read_weights


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> Vocos:
    """Vocos from `path_or_id`: a `vocos` folder (config.yaml + pytorch_model.bin)."""
    path = checkpoint_path(path_or_id, "Vocos", "a `vocos` folder: config.yaml + "
                           "pytorch_model.bin")
    w = read_weights(path)
    cfg = VocosConfig.from_dict(w.config)
    params, filterbank = convert(w.state, cfg)
    model = load_strict(Vocos(cfg, dtype=as_dtype(dtype)), params, dtype, what="Vocos")
    if filterbank is not None:
        model.set_mel_filterbank(filterbank)
    return model
