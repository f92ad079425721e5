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
reference/s3tokenizer.py. Keys and shapes are checked against the model when it is loaded
(`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

import json
from pathlib import Path

from weights.checkpoint import Checkpoint, read_torch_folder


class WeightsError(ValueError):
    """Files that cannot be read as an S3 tokenizer checkpoint."""


def load(folder: Path | str) -> Checkpoint:
    """config.json (name + s3tokenizer ModelConfig fields) + model.pt -> canonical layout."""
    cfg, state = read_torch_folder(folder, "config.json", "model.pt", "an S3 tokenizer folder "
                                   "(model.pt: a torch.save state dict of s3tokenizer's model)",
                                   WeightsError)
    return Checkpoint(json.loads(cfg), state, str(folder))
