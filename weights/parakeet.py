"""Parakeet (FastConformer CTC / RNN-T / TDT) weights in one canonical layout, from the
transformers checkpoint on disk.

Canonical layout: transformers 5.24.0 `ParakeetForCTC` / `ParakeetForRNNT` / `ParakeetForTDT`
`state_dict()` key names, numpy arrays in torch layout (conv `(out, in/groups, k...)`, linear
`(out, in)`, LSTM `weight_ih_l{l}` `(4H, I)` gates i, f, g, o), with one difference from what
`save_pretrained` writes: the batch norms' `num_batches_tracked` counters (training-only, unused
in eval mode) are dropped.

The config is the transformers config as a dict (config.json), `encoder_config` nested. numpy
only; the folder reading and key checks are shared with Wav2Vec2 (weights/hf_safetensors.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import check_shapes, read_folder

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


def _need(config: Mapping, keys, what: str) -> None:
    missing = [k for k in keys if k not in config]
    if missing:
        raise WeightsError(f"Parakeet {what} config lacks {missing}; pass the model's "
                           "config.json (transformers Parakeet*Config.to_dict())")


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape for the Parakeet model this config describes."""
    _need(config, ("model_type", "vocab_size", "encoder_config"), "model")
    kind = config["model_type"]
    if kind not in MODEL_TYPES:
        raise WeightsError(f"model_type {kind!r} is not a Parakeet ASR head; expected one of "
                           f"{MODEL_TYPES}")
    e = config["encoder_config"]
    _need(e, ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "attention_bias", "convolution_bias", "conv_kernel_size", "subsampling_factor",
              "subsampling_conv_channels", "num_mel_bins", "subsampling_conv_kernel_size"),
          "encoder")
    h, n_ff, heads = e["hidden_size"], e["intermediate_size"], e["num_attention_heads"]
    ch, k2 = e["subsampling_conv_channels"], e["subsampling_conv_kernel_size"]
    n_sub = round(math.log2(e["subsampling_factor"]))
    if 2 ** n_sub != e["subsampling_factor"] or h % heads:
        raise WeightsError(f"subsampling_factor {e['subsampling_factor']} must be a power of 2 "
                           f"and hidden_size {h} divisible by num_attention_heads {heads}")
    s: dict[str, tuple[int, ...]] = {}
    sub = "encoder.subsampling"
    s[f"{sub}.layers.0.weight"], s[f"{sub}.layers.0.bias"] = (ch, 1, k2, k2), (ch,)
    for i in range(n_sub - 1):
        dw, pw = 2 + 3 * i, 3 + 3 * i  # indices in upstream's ModuleList (ReLUs in between)
        s[f"{sub}.layers.{dw}.weight"], s[f"{sub}.layers.{dw}.bias"] = (ch, 1, k2, k2), (ch,)
        s[f"{sub}.layers.{pw}.weight"], s[f"{sub}.layers.{pw}.bias"] = (ch, ch, 1, 1), (ch,)
    f_out = e["num_mel_bins"] // 2 ** n_sub
    s[f"{sub}.linear.weight"], s[f"{sub}.linear.bias"] = (h, ch * f_out), (h,)
    ab, cb = e["attention_bias"], e["convolution_bias"]
    for i in range(e["num_hidden_layers"]):
        p = f"encoder.layers.{i}"
        for ff in ("feed_forward1", "feed_forward2"):
            s[f"{p}.{ff}.linear1.weight"], s[f"{p}.{ff}.linear2.weight"] = (n_ff, h), (h, n_ff)
            if ab:
                s[f"{p}.{ff}.linear1.bias"], s[f"{p}.{ff}.linear2.bias"] = (n_ff,), (h,)
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            s[f"{p}.self_attn.{proj}.weight"] = (h, h)
            if ab:
                s[f"{p}.self_attn.{proj}.bias"] = (h,)
        s[f"{p}.self_attn.relative_k_proj.weight"] = (h, h)
        s[f"{p}.self_attn.bias_u"] = s[f"{p}.self_attn.bias_v"] = (heads, h // heads)
        c = f"{p}.conv"
        s[f"{c}.pointwise_conv1.weight"] = (2 * h, h, 1)
        s[f"{c}.depthwise_conv.weight"] = (h, 1, e["conv_kernel_size"])
        s[f"{c}.pointwise_conv2.weight"] = (h, h, 1)
        if cb:
            s[f"{c}.pointwise_conv1.bias"] = (2 * h,)
            s[f"{c}.depthwise_conv.bias"] = s[f"{c}.pointwise_conv2.bias"] = (h,)
        for stat in ("weight", "bias", "running_mean", "running_var"):
            s[f"{c}.norm.{stat}"] = (h,)
        for ln in ("norm_feed_forward1", "norm_self_att", "norm_conv", "norm_feed_forward2",
                   "norm_out"):
            s[f"{p}.{ln}.weight"] = s[f"{p}.{ln}.bias"] = (h,)
    v = config["vocab_size"]
    if kind == "parakeet_ctc":
        s["ctc_head.weight"], s["ctc_head.bias"] = (v, h, 1), (v,)
        return s
    _need(config, ("decoder_hidden_size", "num_decoder_layers"), "transducer")
    d = config["decoder_hidden_size"]
    s["encoder_projector.weight"], s["encoder_projector.bias"] = (d, h), (d,)
    s["decoder.embedding.weight"] = (v, d)
    for layer in range(config["num_decoder_layers"]):
        s[f"decoder.lstm.weight_ih_l{layer}"] = s[f"decoder.lstm.weight_hh_l{layer}"] = (4 * d, d)
        s[f"decoder.lstm.bias_ih_l{layer}"] = s[f"decoder.lstm.bias_hh_l{layer}"] = (4 * d,)
    s["decoder.decoder_projector.weight"], s["decoder.decoder_projector.bias"] = (d, d), (d,)
    if kind == "parakeet_tdt":
        _need(config, ("durations",), "TDT")
    n_out = v + (len(config["durations"]) if kind == "parakeet_tdt" else 0)
    s["joint.head.weight"], s["joint.head.bias"] = (n_out, d), (n_out,)
    return s


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    """Key-set and shape equality with `expected_shapes(config)`; raises WeightsError."""
    check_shapes(state, expected_shapes(config), "Parakeet", WeightsError)


def from_transformers(state: Mapping[str, np.ndarray], config: Mapping) -> dict[str, np.ndarray]:
    """transformers Parakeet state dict (numpy) -> canonical state (drops num_batches_tracked)."""
    out = {k: np.asarray(v) for k, v in state.items() if not k.endswith(TRAINING_ONLY_SUFFIX)}
    check_state(out, config)
    return out


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
    return ParakeetWeights(config, from_transformers(raw, config), vocab, str(path))
