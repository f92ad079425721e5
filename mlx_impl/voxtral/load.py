"""Build the MLX Voxtral from a transformers checkpoint folder (strict: every parameter set)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, load_strict
from mlx_impl.voxtral.config import VoxtralConfig
from mlx_impl.voxtral.convert import convert
from mlx_impl.voxtral.model import Voxtral
from weights.voxtral import VoxtralWeights
from weights.voxtral import load as load_weights

def build(weights: VoxtralWeights, dtype: str | mx.Dtype = "float32") -> Voxtral:
    cfg = VoxtralConfig.from_dict(weights.config)
    # load_strict moves one tensor at a time into MLX: peak memory ~ the numpy state + the model
    return load_strict(Voxtral(cfg, dtype=as_dtype(dtype)), convert(weights.state), dtype,
                       what="Voxtral")


def load(folder: str | Path, dtype: str | mx.Dtype = "float32") -> tuple[Voxtral, VoxtralWeights]:
    w = load_weights(folder)
    return build(w, dtype), w

