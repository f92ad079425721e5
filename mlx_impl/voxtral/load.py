"""Build the MLX Voxtral from a transformers checkpoint folder (strict: every parameter set)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.voxtral.config import VoxtralConfig
from mlx_impl.voxtral.convert import convert
from mlx_impl.voxtral.model import Voxtral
from weights.voxtral import VoxtralWeights
from weights.voxtral import load as load_weights

_NP = {mx.float32: np.float32, mx.float16: np.float16, mx.bfloat16: np.float32}


def build(weights: VoxtralWeights, dtype: mx.Dtype = mx.float32) -> Voxtral:
    cfg = VoxtralConfig.from_dict(weights.config)
    model = Voxtral(cfg, dtype=dtype)
    want = {k for k, _ in _flatten(model.parameters())}
    params = convert(weights.state)
    missing, unexpected = sorted(want - set(params)), sorted(set(params) - want)
    if missing or unexpected:
        raise ValueError(f"converted Voxtral weights do not match the MLX model: missing "
                         f"{missing[:8]}, unexpected {unexpected[:8]}")
    # one tensor at a time (the source is memory-mapped): peak memory ~ the model once
    model.load_weights([(k, mx.array(np.asarray(v, dtype=_NP[dtype])).astype(dtype))
                        for k, v in params.items()], strict=True)
    mx.eval(model.parameters())
    return model


def load(folder: str | Path, dtype: mx.Dtype = mx.float32) -> tuple[Voxtral, VoxtralWeights]:
    w = load_weights(folder)
    return build(w, dtype), w


def _flatten(tree, prefix: str = ""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], tree
