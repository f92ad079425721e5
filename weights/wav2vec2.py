"""Wav2Vec2 CTC weights in one canonical layout, from the transformers checkpoint on disk.

Canonical layout: transformers 5.24.0 ``Wav2Vec2ForCTC.state_dict()`` key names (``wav2vec2.``
prefix, ``lm_head.*``), numpy arrays in torch layout (conv ``(out, in/groups, k)``, linear
``(out, in)``), with two differences from what ``save_pretrained`` writes:

- the positional convolution is weight-normed upstream (``weight_norm(conv, dim=2)``): the
  stored pair (transformers 5 / torch parametrizations: ``parametrizations.weight.original0``
  = g of shape (1, 1, k) and ``original1`` = v; older checkpoints: ``weight_g`` / ``weight_v``)
  is folded into one kernel ``wav2vec2.encoder.pos_conv_embed.conv.weight`` = g * v / ||v||,
  the norm over every axis but 2 (the kernel axis), as torch's ``_weight_norm(v, g, dim=2)``
  (``weights.weight_norm``);
- ``wav2vec2.masked_spec_embed`` (SpecAugment's training-time mask vector) is dropped.

The config is the transformers ``Wav2Vec2Config`` as a dict (config.json). numpy only; the
folder reading is shared with Parakeet (weights/hf_safetensors.py). Keys and shapes are checked
against the model when it is loaded (``mlx_impl.loading.load_strict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import read_folder
from weights.weight_norm import fold_weight_norms

POS_CONV = "wav2vec2.encoder.pos_conv_embed.conv"
TRAINING_ONLY = ("wav2vec2.masked_spec_embed",)
POS_CONV_NORM_DIM = 2  # transformers: weight_norm(self.conv, name="weight", dim=2)


class WeightsError(ValueError):
    """Weights do not match the Wav2Vec2 CTC layout its config describes."""


@dataclass(frozen=True)
class Wav2Vec2Weights:
    config: dict  # the transformers Wav2Vec2Config as a dict (config.json)
    state: dict[str, np.ndarray]  # canonical layout (module docstring)
    vocab: dict[str, int] | None  # vocab.json (token -> id) when the folder has one
    source: str


def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers Wav2Vec2ForCTC state dict (numpy) -> canonical state (module docstring)."""
    return fold_weight_norms({k: np.asarray(v) for k, v in state.items()
                              if k not in TRAINING_ONLY},
                             dim=POS_CONV_NORM_DIM)  # the positional conv is the only pair


def check_config(config: Mapping) -> None:
    """The checkpoint must be a plain Wav2Vec2 CTC model (no adapters, known norms)."""
    if config.get("model_type", "wav2vec2") != "wav2vec2":
        raise WeightsError(f"config.json has model_type {config.get('model_type')!r}, expected "
                           "'wav2vec2'")
    if config.get("feat_extract_norm") not in ("group", "layer"):
        raise WeightsError(f"feat_extract_norm must be 'group' or 'layer', got "
                           f"{config.get('feat_extract_norm')!r}")


def load(path: str | Path) -> Wav2Vec2Weights:
    """A transformers Wav2Vec2ForCTC folder (config.json + model.safetensors or
    pytorch_model.bin, optional vocab.json) -> canonical weights."""
    config, raw, vocab = read_folder(path, "Wav2Vec2ForCTC", WeightsError, allow_bin=True)
    check_config(config)
    return Wav2Vec2Weights(config, from_transformers(raw), vocab, str(path))

