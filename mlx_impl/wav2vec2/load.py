"""Build the MLX Wav2Vec2ForCTC from a transformers checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.wav2vec2.config import Wav2Vec2Config
from mlx_impl.wav2vec2.convert import convert
from mlx_impl.wav2vec2.model import Wav2Vec2ForCTC
from weights.wav2vec2 import Wav2Vec2Weights
from weights.wav2vec2 import load as load_weights


def build(weights: Wav2Vec2Weights, dtype: mx.Dtype = mx.float32) -> Wav2Vec2ForCTC:
    """The MLX model with `weights` loaded strictly (every parameter set, no extra key)."""
    cfg = Wav2Vec2Config.from_dict(weights.config)
    model = Wav2Vec2ForCTC(cfg, dtype=dtype)
    np_dtype = {mx.float32: np.float32, mx.float16: np.float16, mx.bfloat16: np.float32}[dtype]
    params = [(k, mx.array(np.asarray(v, dtype=np_dtype)).astype(dtype))
              for k, v in convert(weights.state).items()]
    model.load_weights(params, strict=True)
    mx.eval(model.parameters())
    return model


def load(folder: str | Path, dtype: mx.Dtype = mx.float32
         ) -> tuple[Wav2Vec2ForCTC, Wav2Vec2Weights]:
    w = load_weights(folder)
    return build(w, dtype), w
