"""Canonical Mimi weights: transformers `MimiModel` checkpoints (kyutai/mimi layout), numpy only.

Canonical keys are the flat ones transformers' `save_pretrained` writes and the kyutai/mimi hub
checkpoint holds: `encoder.layers.*`, `encoder_transformer.layers.*`, `downsample.conv.weight`,
`quantizer.{semantic,acoustic}_residual_vector_quantizer.*`, `upsample.conv.weight`,
`decoder_transformer.layers.*`, `decoder.layers.*`. The nested names of the in-memory transformers
5 model (`encoder.encoder_seanet.*`, `decoder.decoder_transformer.*`, ...) are renamed to them.

Codebooks: Mimi stores `embed_sum` and `cluster_usage`; the codewords are
`embed_sum / max(cluster_usage, 1e-5)` (upstream `MimiEuclideanCodebook.embed`, epsilon 1e-5),
computed here in float32 (the same IEEE division as torch) and stored as `<...>.codebook.embed`.
Dropped: `codebook.initialized` (a training flag).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import read_pretrained

CODEBOOK_EPSILON = 1e-5  # upstream MimiEuclideanCodebook(epsilon=1e-5)
PREFIXES = ("encoder.layers.", "encoder_transformer.layers.", "downsample.", "quantizer.",
            "upsample.", "decoder_transformer.layers.", "decoder.layers.")
_NESTED = [
    (re.compile(r"^encoder\.encoder_seanet\."), "encoder."),
    (re.compile(r"^encoder\.encoder_transformer\."), "encoder_transformer."),
    (re.compile(r"^encoder\.downsample\."), "downsample."),
    (re.compile(r"^decoder\.upsample\."), "upsample."),
    (re.compile(r"^decoder\.decoder_transformer\."), "decoder_transformer."),
    (re.compile(r"^decoder\.decoder_seanet\."), "decoder."),
]


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical Mimi layout."""


@dataclass(frozen=True)
class MimiWeights:
    config: dict  # transformers MimiConfig fields (config.json)
    state: dict[str, np.ndarray]  # canonical layout
    source: str


def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    renamed = {}
    for key, value in state.items():
        for pattern, repl in _NESTED:
            key = pattern.sub(repl, key)
        if not key.startswith(PREFIXES):
            raise WeightsError(f"unexpected key {key!r} in a transformers MimiModel checkpoint "
                               f"(expected keys under {PREFIXES})")
        renamed[key] = np.asarray(value)
    out = {}
    for key, value in renamed.items():
        if key.endswith(".codebook.initialized") or key.endswith(".codebook.cluster_usage"):
            continue
        if key.endswith(".codebook.embed_sum"):
            prefix = key[: -len(".embed_sum")]
            if prefix + ".cluster_usage" not in renamed:
                raise WeightsError(f"{key} has no matching {prefix}.cluster_usage")
            usage = renamed[prefix + ".cluster_usage"].astype(np.float32)
            usage = np.maximum(usage, np.float32(CODEBOOK_EPSILON))
            out[prefix + ".embed"] = (value.astype(np.float32) / usage[:, None]).astype(np.float32)
        else:
            out[key] = value
    return out


def expected_keys(config: Mapping) -> set[str]:
    """Canonical keys of a MimiConfig dict (shapes are checked by the MLX strict load)."""
    c = dict(config)
    ratios, n_res = list(c["upsampling_ratios"]), c["num_residual_layers"]
    keys: set[str] = set()

    def conv(p, bias=True):
        keys.add(f"{p}.conv.weight")
        if bias:
            keys.add(f"{p}.conv.bias")

    def res(p):
        conv(f"{p}.block.1")
        conv(f"{p}.block.3")
        if c["use_conv_shortcut"]:
            conv(f"{p}.shortcut")

    i = 0
    conv("encoder.layers.0")
    i = 1
    for _ in ratios:
        for _ in range(n_res):
            res(f"encoder.layers.{i}")
            i += 1
        conv(f"encoder.layers.{i + 1}")
        i += 2
    conv(f"encoder.layers.{i + 1}")
    conv("decoder.layers.0")
    i = 1
    for _ in ratios:
        conv(f"decoder.layers.{i + 1}")
        i += 2
        for _ in range(n_res):
            res(f"decoder.layers.{i}")
            i += 1
    conv(f"decoder.layers.{i + 1}")
    for side in ("encoder_transformer", "decoder_transformer"):
        for j in range(c["num_hidden_layers"]):
            p = f"{side}.layers.{j}"
            for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
                keys.add(f"{p}.self_attn.{proj}.weight")
                if c.get("attention_bias"):
                    keys.add(f"{p}.self_attn.{proj}.bias")
            keys |= {f"{p}.mlp.fc1.weight", f"{p}.mlp.fc2.weight",
                     f"{p}.self_attn_layer_scale.scale", f"{p}.mlp_layer_scale.scale"}
            for ln in ("input_layernorm", "post_attention_layernorm"):
                keys |= {f"{p}.{ln}.weight", f"{p}.{ln}.bias"}
    keys |= {"downsample.conv.weight", "upsample.conv.weight"}
    n_sem = c["num_semantic_quantizers"]
    for name, n in (("semantic", n_sem), ("acoustic", c["num_quantizers"] - n_sem)):
        p = f"quantizer.{name}_residual_vector_quantizer"
        keys |= {f"{p}.layers.{q}.codebook.embed" for q in range(n)}
        if c["vector_quantization_hidden_dimension"] != c["hidden_size"]:
            keys |= {f"{p}.input_proj.weight", f"{p}.output_proj.weight"}
    return keys


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    want = expected_keys(config)
    missing, unexpected = sorted(want - set(state)), sorted(set(state) - want)
    if missing or unexpected:
        raise WeightsError(f"Mimi weights do not match the config: missing {missing[:8]} "
                           f"({len(missing)}), unexpected {unexpected[:8]} ({len(unexpected)})")


def load(path: Path | str) -> MimiWeights:
    """Read a transformers `save_pretrained` directory (config.json + model.safetensors)."""
    cfg, raw = read_pretrained(path, "MimiModel", "mimi", WeightsError)
    state = from_transformers(raw)
    check_state(state, cfg)
    return MimiWeights(config=cfg, state=state, source=str(Path(path)))
