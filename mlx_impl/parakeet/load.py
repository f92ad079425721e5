"""Build the MLX Parakeet model from a transformers checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.parakeet.config import ParakeetConfig
from mlx_impl.parakeet.convert import convert
from mlx_impl.parakeet.model import ParakeetForCTC, ParakeetForTransducer, build_model
from weights.parakeet import ParakeetWeights
from weights.parakeet import load as load_weights


def build(weights: ParakeetWeights, dtype: mx.Dtype = mx.float32
          ) -> ParakeetForCTC | ParakeetForTransducer:
    """The MLX model with `weights` loaded strictly (every parameter set, no extra key)."""
    cfg = ParakeetConfig.from_dict(weights.config)
    model = build_model(cfg)
    np_dtype = {mx.float32: np.float32, mx.float16: np.float16, mx.bfloat16: np.float32}[dtype]
    params = [(k, mx.array(np.asarray(v, dtype=np_dtype)).astype(dtype))
              for k, v in convert(weights.state).items()]
    model.load_weights(params, strict=True)
    mx.eval(model.parameters())
    return model


def load(folder: str | Path, dtype: mx.Dtype = mx.float32
         ) -> tuple[ParakeetForCTC | ParakeetForTransducer, ParakeetWeights]:
    w = load_weights(folder)
    return build(w, dtype), w
