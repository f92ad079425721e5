"""Parakeet (FastConformer CTC / RNN-T / TDT) weights in one canonical layout, from the
transformers checkpoint on disk.

Canonical layout: transformers 5.24.0 `ParakeetForCTC` / `ParakeetForRNNT` / `ParakeetForTDT`
`state_dict()` key names, numpy arrays in torch layout (conv `(out, in/groups, k...)`, linear
`(out, in)`, LSTM `weight_ih_l{l}` `(4H, I)` gates i, f, g, o), with one difference from what
`save_pretrained` writes: the batch norms' `num_batches_tracked` counters (training-only, unused
in eval mode) are dropped.

The config is the transformers config as a dict (config.json), `encoder_config` nested. numpy
only; the folder reading is shared with Wav2Vec2 (weights/hf_safetensors.py). Keys and shapes
are checked against the model when it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import read_folder

MODEL_TYPES = ("parakeet_ctc", "parakeet_rnnt", "parakeet_tdt")
TRAINING_ONLY_SUFFIX = ".num_batches_tracked"


class WeightsError(ValueError):
    """Weights do not match the Parakeet layout its config describes."""


@dataclass(frozen=True)
class ParakeetWeights:
    config: dict  # transformers Parakeet{CTC,RNNT,TDT}Config as a dict (config.json)
    state: dict[str, np.ndarray]  # canonical layout (module docstring)
    vocab: list[str] | None  # vocab.json (a list of pieces, index = id) when the folder has one
    source: str


def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers Parakeet state dict (numpy) -> canonical state (drops num_batches_tracked)."""
    return {k: np.asarray(v) for k, v in state.items() if not k.endswith(TRAINING_ONLY_SUFFIX)}


def load(path: str | Path) -> ParakeetWeights:
    """A transformers Parakeet folder (config.json + model.safetensors, optional vocab.json)
    -> canonical weights."""
    config, raw, vocab = read_folder(path, "Parakeet", WeightsError)
    if config.get("model_type") not in MODEL_TYPES:
        raise WeightsError(f"{Path(path) / 'config.json'}: model_type "
                           f"{config.get('model_type')!r} is not one of {MODEL_TYPES}")
    if vocab is not None and not (isinstance(vocab, list)
                                  and all(isinstance(t, str) for t in vocab)):
        raise WeightsError(f"{Path(path) / 'vocab.json'}: expected a JSON list of token pieces "
                           "(index = id)")
    return ParakeetWeights(config, from_transformers(raw), vocab, str(path))
