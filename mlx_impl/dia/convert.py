"""transformers `DiaForConditionalGeneration` safetensors (save_pretrained) -> the MLX parameter
tree of `mlx_impl.dia.model.DiaModel`.

The module names are upstream's, so keys pass through, except the fused SwiGLU weight
`*.mlp.gate_up_proj.weight` (2 I, H), which upstream chunks into gate (first I rows) and up (last
I rows): it becomes `*.mlp.gate_proj.weight` and `*.mlp.up_proj.weight` of the shared
`layers.llm.MLP`. Linear weights keep torch's (out, in) layout. Any other key is an error; the
loader checks the key set against the model strictly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def convert(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not (key.startswith("model.encoder.") or key.startswith("model.decoder.")
                or key == "logits_dense.weight"):
            raise KeyError(f"unexpected DiaForConditionalGeneration weight {key!r}; expected "
                           "model.encoder.*, model.decoder.* or logits_dense.weight")
        if key.endswith(".mlp.gate_up_proj.weight"):
            w = np.asarray(value)
            if w.shape[0] % 2:
                raise ValueError(f"{key} has {w.shape[0]} rows; gate_up_proj stacks gate and up "
                                 "(an even number)")
            half = w.shape[0] // 2
            base = key[: -len("gate_up_proj.weight")]
            out[base + "gate_proj.weight"] = w[:half]
            out[base + "up_proj.weight"] = w[half:]
        else:
            out[key] = value
    return out
