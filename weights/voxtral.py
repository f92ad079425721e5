"""Voxtral weights in one canonical layout, from a transformers `save_pretrained` folder.

Canonical layout: the keys of the Voxtral safetensors on disk (what transformers 5.24.0's
`VoxtralForConditionalGeneration.save_pretrained` writes and the published
mistralai/Voxtral-Mini-3B-2507 files use): `audio_tower.*`, `multi_modal_projector.linear_{1,2}
.weight`, `language_model.model.*`, `language_model.lm_head.weight`; numpy arrays in torch layout.
A state dict taken from the in-memory transformers 5 model (`model.audio_tower.*`,
`model.language_model.*`, `lm_head.weight`) is renamed to it.

The files are read by `weights.hf_safetensors.read_safetensors` (streamed tensor by tensor; its
docstring has the measured peak memory of the alternatives, memory-mapping included).
Single-file and sharded (`model.safetensors.index.json`) folders are read. numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import check_shapes, read_safetensors


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


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    a, t = config["audio_config"], config["text_config"]
    d, ff, mels = a["hidden_size"], a["intermediate_size"], a["num_mel_bins"]
    s: dict[str, tuple[int, ...]] = {
        "audio_tower.conv1.weight": (d, mels, 3), "audio_tower.conv1.bias": (d,),
        "audio_tower.conv2.weight": (d, d, 3), "audio_tower.conv2.bias": (d,),
        "audio_tower.embed_positions.weight": (a["max_source_positions"], d),
        "audio_tower.layer_norm.weight": (d,), "audio_tower.layer_norm.bias": (d,),
    }
    for i in range(a["num_hidden_layers"]):
        p = f"audio_tower.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s[f"{p}.self_attn.{proj}.weight"] = (d, d)
            if proj != "k_proj":
                s[f"{p}.self_attn.{proj}.bias"] = (d,)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            s[f"{p}.{ln}.weight"] = s[f"{p}.{ln}.bias"] = (d,)
        s[f"{p}.fc1.weight"], s[f"{p}.fc1.bias"] = (ff, d), (ff,)
        s[f"{p}.fc2.weight"], s[f"{p}.fc2.bias"] = (d, ff), (d,)
    h, v, hd = t["hidden_size"], t["vocab_size"], t["head_dim"]
    nq, nkv, inner = t["num_attention_heads"], t["num_key_value_heads"], t["intermediate_size"]
    s["multi_modal_projector.linear_1.weight"] = (h, ff)
    s["multi_modal_projector.linear_2.weight"] = (h, h)
    s["language_model.model.embed_tokens.weight"] = (v, h)
    s["language_model.model.norm.weight"] = (h,)
    if not t.get("tie_word_embeddings", False):
        s["language_model.lm_head.weight"] = (v, h)
    for i in range(t["num_hidden_layers"]):
        p = f"language_model.model.layers.{i}"
        s[f"{p}.self_attn.q_proj.weight"] = (nq * hd, h)
        s[f"{p}.self_attn.k_proj.weight"] = s[f"{p}.self_attn.v_proj.weight"] = (nkv * hd, h)
        s[f"{p}.self_attn.o_proj.weight"] = (h, nq * hd)
        if t.get("attention_bias", False):
            s[f"{p}.self_attn.q_proj.bias"] = (nq * hd,)
            s[f"{p}.self_attn.k_proj.bias"] = s[f"{p}.self_attn.v_proj.bias"] = (nkv * hd,)
            s[f"{p}.self_attn.o_proj.bias"] = (h,)
        s[f"{p}.mlp.gate_proj.weight"] = s[f"{p}.mlp.up_proj.weight"] = (inner, h)
        s[f"{p}.mlp.down_proj.weight"] = (h, inner)
        if t.get("mlp_bias", False):
            s[f"{p}.mlp.gate_proj.bias"] = s[f"{p}.mlp.up_proj.bias"] = (inner,)
            s[f"{p}.mlp.down_proj.bias"] = (h,)
        s[f"{p}.input_layernorm.weight"] = s[f"{p}.post_attention_layernorm.weight"] = (h,)
    return s


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    """Key-set and shape equality with `expected_shapes(config)`; raises WeightsError."""
    check_shapes(state, expected_shapes(config), "Voxtral", WeightsError)


def from_state(state: Mapping[str, np.ndarray], config: Mapping) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        name = canonical_key(k)
        if name in out:
            raise WeightsError(f"keys {k!r} and another both name {name!r}")
        out[name] = v
    check_state(out, config)
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
    return VoxtralWeights(config, from_state(raw, config), str(folder))

