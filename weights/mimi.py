"""Canonical Mimi weights: transformers `MimiModel` checkpoints (kyutai/mimi layout), numpy only.

Canonical keys are the flat ones transformers' `save_pretrained` writes and the kyutai/mimi hub
checkpoint holds: `encoder.layers.*`, `encoder_transformer.layers.*`, `downsample.conv.weight`,
`quantizer.{semantic,acoustic}_residual_vector_quantizer.*`, `upsample.conv.weight`,
`decoder_transformer.layers.*`, `decoder.layers.*`. The nested names of the in-memory transformers
5 model (`encoder.encoder_seanet.*`, `decoder.decoder_transformer.*`, ...) are renamed to them.

Codebooks: Mimi stores `embed_sum` and `cluster_usage`; the codewords are
`embed_sum / max(cluster_usage, 1e-5)` (upstream `MimiEuclideanCodebook.embed`, epsilon 1e-5),
computed here in float32 (the same IEEE division as torch) and stored as `<...>.codebook.embed`.
Dropped: `codebook.initialized` (a training flag). Mimi has no weight norm. Keys and shapes are
checked against the model when it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from weights.checkpoint import Checkpoint
from weights.hf_safetensors import read_pretrained

CODEBOOK_EPSILON = 1e-5  # upstream MimiEuclideanCodebook(epsilon=1e-5)
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



def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    renamed = {}
    for key, value in state.items():
        for pattern, repl in _NESTED:
            key = pattern.sub(repl, key)
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


def load(path: Path | str) -> Checkpoint:
    """Read a transformers `save_pretrained` directory (config.json + model.safetensors)."""
    cfg, raw = read_pretrained(path, "MimiModel", "mimi", WeightsError)
    state = from_transformers(raw)
    return Checkpoint(config=cfg, state=state, source=str(Path(path)))
