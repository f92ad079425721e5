"""Canonical S3 tokenizer weights (weights/s3tokenizer.py layout, numpy) -> MLX parameter tree.

- `quantizer._codebook.*` -> `quantizer.codebook.*` (MLX leaves `_`-prefixed attributes out of
  the parameter tree);
- conv kernels to MLX's channels-last: encoder.conv1/conv2 (out, in, 3) -> (out, 3, in), the
  depthwise FSMN kernels (C, 1, 31) -> (C, 31, 1);
- everything else unchanged (Linear weights are (out, in) in both).
`S3Tokenizer.load_weights(strict=True)` checks the key set.
"""

from __future__ import annotations

import numpy as np


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in state.items():
        if name.startswith("quantizer._codebook."):
            name = "quantizer.codebook." + name[len("quantizer._codebook."):]
        if name in ("encoder.conv1.weight", "encoder.conv2.weight") or \
                name.endswith(".fsmn_block.weight"):
            if value.ndim != 3:
                raise ValueError(f"{name}: expected a conv kernel (out, in, k), got {value.shape}")
            value = value.transpose(0, 2, 1)
        out[name] = value
    return out
