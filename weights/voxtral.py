"""Voxtral weights in one canonical layout, from a transformers `save_pretrained` folder.

Canonical layout: the keys of the Voxtral safetensors on disk (what transformers 5.24.0's
`VoxtralForConditionalGeneration.save_pretrained` writes and the published
mistralai/Voxtral-Mini-3B-2507 files use): `audio_tower.*`, `multi_modal_projector.linear_{1,2}
.weight`, `language_model.model.*`, `language_model.lm_head.weight`; numpy arrays in torch layout.
A state dict taken from the in-memory transformers 5 model (`model.audio_tower.*`,
`model.language_model.*`, `lm_head.weight`) is renamed to it.

The files are read by `weights.hf_safetensors.read_safetensors` (streamed tensor by tensor; its
docstring has the measured peak memory of the alternatives, memory-mapping included).
Single-file and sharded (`model.safetensors.index.json`) folders are read. numpy only. Keys
and shapes are checked against the model when it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import read_safetensors


class WeightsError(ValueError):
    """Weights that do not match the Voxtral layout their config describes."""


@dataclass(frozen=True)
class VoxtralWeights:
    config: dict  # transformers VoxtralConfig as a dict (config.json)
    state: dict[str, np.ndarray]  # canonical layout (module docstring)
    source: str


def canonical_key(key: str) -> str:
    """transformers 5 in-memory names -> on-disk names; on-disk names unchanged."""
    if key == "lm_head.weight":
        return "language_model.lm_head.weight"
    if key.startswith("model.language_model."):
        return "language_model.model." + key[len("model.language_model."):]
    if key.startswith("model."):
        return key[len("model."):]
    return key


def from_state(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """On-disk or in-memory transformers names -> the canonical layout (`canonical_key`)."""
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        name = canonical_key(k)
        if name in out:
            raise WeightsError(f"keys {k!r} and another both name {name!r}")
        out[name] = v
    return out


def load(path: str | Path) -> VoxtralWeights:
    """A transformers VoxtralForConditionalGeneration folder -> canonical weights."""
    folder = Path(path)
    if not folder.is_dir():
        raise WeightsError(f"{folder}: expected a Voxtral folder (config.json + "
                           "model.safetensors), got no such directory")
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} has no config.json; save the model with save_pretrained")
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "voxtral":
        raise WeightsError(f"config.json has model_type {config.get('model_type')!r}, expected "
                           "'voxtral'")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise WeightsError(f"{folder} has neither model.safetensors nor "
                           "model.safetensors.index.json")
    raw: dict[str, np.ndarray] = {}
    for name in files:
        raw.update(read_safetensors(folder / name))
    return VoxtralWeights(config, from_state(raw), str(folder))

