"""Build the MLX Wav2Vec2ForCTC from a transformers checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from mlx_impl.loading import as_dtype, load_strict
from mlx_impl.wav2vec2.config import Wav2Vec2Config
from mlx_impl.wav2vec2.convert import convert
from mlx_impl.wav2vec2.model import Wav2Vec2ForCTC
from weights.wav2vec2 import Wav2Vec2Weights
from weights.wav2vec2 import load as load_weights


def build(weights: Wav2Vec2Weights, dtype: str | mx.Dtype = "float32") -> Wav2Vec2ForCTC:
    """The MLX model with `weights` loaded strictly (every parameter set, no extra key)."""
    cfg = Wav2Vec2Config.from_dict(weights.config)
    return load_strict(Wav2Vec2ForCTC(cfg, dtype=as_dtype(dtype)), convert(weights.state), dtype,
                       what="Wav2Vec2ForCTC")


def load(folder: str | Path, dtype: str | mx.Dtype = "float32"
         ) -> tuple[Wav2Vec2ForCTC, Wav2Vec2Weights]:
    w = load_weights(folder)
    return build(w, dtype), w
