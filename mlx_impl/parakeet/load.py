"""Build the MLX Parakeet model from a transformers checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.loading import as_dtype, load_strict
from mlx_impl.parakeet.config import ParakeetConfig
from mlx_impl.parakeet.convert import convert
from mlx_impl.parakeet.model import ParakeetForCTC, ParakeetForTransducer, build_model
from weights.parakeet import ParakeetWeights
from weights.parakeet import load as load_weights


def build(weights: ParakeetWeights, dtype: str | mx.Dtype = "float32", consume: bool = False
          ) -> ParakeetForCTC | ParakeetForTransducer:
    """The MLX model with `weights` loaded strictly (every parameter set, no extra key).

    consume: take each array out of `weights.state` once it is in MLX, so the numpy copy and
    the MLX copy of the 0.6b weights (2.4 GB each in fp32) are never both whole in memory;
    `weights.state` is empty afterwards.
    """
    cfg = ParakeetConfig.from_dict(weights.config)
    dt = as_dtype(dtype)
    params = {}
    for key in list(weights.state):
        value = weights.state.pop(key) if consume else weights.state[key]
        for k, v in convert({key: value}).items():  # convert works key by key
            params[k] = mx.array(np.asarray(v, dtype=np.float32)).astype(dt)
            mx.eval(params[k])
        del value
    return load_strict(build_model(cfg), params, dt, what="Parakeet", consume=True)


def load(folder: str | Path, dtype: str | mx.Dtype = "float32"
         ) -> tuple[ParakeetForCTC | ParakeetForTransducer, ParakeetWeights]:
    """-> (model, weights): the weights' config and vocab; their `state` is emptied into the
    model while loading (see `build(consume=True)`)."""
    w = load_weights(folder)
    return build(w, dtype, consume=True), w
