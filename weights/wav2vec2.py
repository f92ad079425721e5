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
folder reading and key checks are shared with Parakeet (weights/hf_safetensors.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import check_shapes, read_folder
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


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape for a Wav2Vec2ForCTC of this config."""
    _need(config, ("conv_dim", "conv_kernel", "conv_bias", "feat_extract_norm", "hidden_size",
                   "num_hidden_layers", "intermediate_size", "num_conv_pos_embeddings",
                   "num_conv_pos_embedding_groups", "vocab_size"))
    dims, kernels = list(config["conv_dim"]), list(config["conv_kernel"])
    h, n_ff, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    groups = config["num_conv_pos_embedding_groups"]
    if h % groups:
        raise WeightsError(f"hidden_size {h} is not divisible by num_conv_pos_embedding_groups "
                           f"{groups}")
    s: dict[str, tuple[int, ...]] = {}
    for i, (n_out, k) in enumerate(zip(dims, kernels)):
        p = f"wav2vec2.feature_extractor.conv_layers.{i}"
        s[f"{p}.conv.weight"] = (n_out, dims[i - 1] if i else 1, k)
        if config["conv_bias"]:
            s[f"{p}.conv.bias"] = (n_out,)
        if config["feat_extract_norm"] == "layer" or (config["feat_extract_norm"] == "group"
                                                       and i == 0):
            s[f"{p}.layer_norm.weight"] = s[f"{p}.layer_norm.bias"] = (n_out,)
    s |= {"wav2vec2.feature_projection.layer_norm.weight": (dims[-1],),
          "wav2vec2.feature_projection.layer_norm.bias": (dims[-1],),
          "wav2vec2.feature_projection.projection.weight": (h, dims[-1]),
          "wav2vec2.feature_projection.projection.bias": (h,),
          f"{POS_CONV}.weight": (h, h // groups, config["num_conv_pos_embeddings"]),
          f"{POS_CONV}.bias": (h,),
          "wav2vec2.encoder.layer_norm.weight": (h,), "wav2vec2.encoder.layer_norm.bias": (h,)}
    for i in range(config["num_hidden_layers"]):
        p = f"wav2vec2.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s[f"{p}.attention.{proj}.weight"], s[f"{p}.attention.{proj}.bias"] = (h, h), (h,)
        for ln in ("layer_norm", "final_layer_norm"):
            s[f"{p}.{ln}.weight"] = s[f"{p}.{ln}.bias"] = (h,)
        s[f"{p}.feed_forward.intermediate_dense.weight"] = (n_ff, h)
        s[f"{p}.feed_forward.intermediate_dense.bias"] = (n_ff,)
        s[f"{p}.feed_forward.output_dense.weight"] = (h, n_ff)
        s[f"{p}.feed_forward.output_dense.bias"] = (h,)
    s["lm_head.weight"], s["lm_head.bias"] = (v, h), (v,)
    return s


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    """Key-set and shape equality with `expected_shapes(config)`; raises WeightsError."""
    check_shapes(state, expected_shapes(config), "Wav2Vec2", WeightsError)


def from_transformers(state: Mapping[str, np.ndarray], config: Mapping) -> dict[str, np.ndarray]:
    """transformers Wav2Vec2ForCTC state dict (numpy) -> canonical state (module docstring)."""
    out = fold_weight_norms({k: np.asarray(v) for k, v in state.items() if k not in TRAINING_ONLY},
                            dim=POS_CONV_NORM_DIM)  # the positional conv is the only pair
    check_state(out, config)
    return out


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
    return Wav2Vec2Weights(config, from_transformers(raw, config), vocab, str(path))


def _need(config: Mapping, keys) -> None:
    missing = [k for k in keys if k not in config]
    if missing:
        raise WeightsError(f"Wav2Vec2 config lacks {missing}; is it a Wav2Vec2Config?")
