"""S3 tokenizer weights: the s3tokenizer package's torch state dict -> canonical numpy (no torch).

Canonical layout: s3tokenizer 0.3.0's `S3Tokenizer` / `S3TokenizerV2` state-dict keys (what its
`init_from_pt` and, after `onnx2torch`, `init_from_onnx` load), numpy arrays in torch layout:

    encoder.conv1.{weight (C, n_mels, 3), bias}, encoder.conv2.{weight (C, C, 3), bias}
    encoder.positional_embedding (n_audio_ctx, C)                        v1 only
    encoder.blocks.{i}.attn.{query,value,out}.{weight,bias}, attn.key.weight
    encoder.blocks.{i}.attn.fsmn_block.weight (C, 1, 31)                 v2 only
    encoder.blocks.{i}.{attn_ln,mlp_ln}.{weight,bias}, mlp.{0,2}.{weight,bias}
    quantizer._codebook.embed (4096, C)                                  v1
    quantizer._codebook.project_down.{weight (8, C), bias (8,)}          v2

`load(folder)` reads `config.json` + `model.pt` (a `torch.save` zip of the state dict) written by
reference/s3tokenizer.py and checks the key set and shapes strictly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.torch_zip import read_torch_zip


class WeightsError(ValueError):
    """Weights that do not fit the canonical S3 tokenizer layout."""


@dataclass(frozen=True)
class S3Weights:
    config: dict  # name + s3tokenizer ModelConfig fields
    state: dict[str, np.ndarray]
    source: str


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    c, m = int(config["n_audio_state"]), int(config["n_mels"])
    v2 = "v2" in config["name"]
    s: dict[str, tuple[int, ...]] = {
        "encoder.conv1.weight": (c, m, 3), "encoder.conv1.bias": (c,),
        "encoder.conv2.weight": (c, c, 3), "encoder.conv2.bias": (c,),
    }
    if not v2:
        s["encoder.positional_embedding"] = (int(config["n_audio_ctx"]), c)
    for i in range(int(config["n_audio_layer"])):
        p = f"encoder.blocks.{i}"
        for lin in ("query", "key", "value", "out"):
            s[f"{p}.attn.{lin}.weight"] = (c, c)
            if lin != "key":
                s[f"{p}.attn.{lin}.bias"] = (c,)
        if v2:
            s[f"{p}.attn.fsmn_block.weight"] = (c, 1, 31)
        for ln in ("attn_ln", "mlp_ln"):
            s[f"{p}.{ln}.weight"] = (c,)
            s[f"{p}.{ln}.bias"] = (c,)
        s[f"{p}.mlp.0.weight"], s[f"{p}.mlp.0.bias"] = (4 * c, c), (4 * c,)
        s[f"{p}.mlp.2.weight"], s[f"{p}.mlp.2.bias"] = (c, 4 * c), (c,)
    if v2:
        s["quantizer._codebook.project_down.weight"] = (8, c)
        s["quantizer._codebook.project_down.bias"] = (8,)
    else:
        s["quantizer._codebook.embed"] = (int(config["n_codebook_size"]), c)
    return s


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    want = expected_shapes(config)
    missing, unexpected = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or unexpected:
        raise WeightsError(f"S3 tokenizer state does not match {config['name']}: missing "
                           f"{missing[:8]}, unexpected {unexpected[:8]}")
    bad = {k: (tuple(state[k].shape), want[k]) for k in want if tuple(state[k].shape) != want[k]}
    if bad:
        raise WeightsError(f"S3 tokenizer weights with wrong shapes (got, want): {bad}")


def load(folder: Path | str) -> S3Weights:
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.pt").is_file():
        raise FileNotFoundError(f"{folder}: expected config.json and model.pt (a torch.save "
                                "state dict of s3tokenizer's model)")
    config = json.loads((folder / "config.json").read_text())
    raw = read_torch_zip(folder / "model.pt")
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{folder / 'model.pt'} holds {type(raw).__name__}, not a state dict")
    state = {k: np.asarray(v) for k, v in raw.items()}
    check_state(state, config)
    return S3Weights(config, state, str(folder))
