"""DAC weights: transformers `DacModel` checkpoints -> one canonical layout (numpy only).

Canonical layout: transformers' `DacModel` state-dict keys (5.24.0), numpy arrays in torch
layout:

    encoder.conv1.{weight,bias}                            Conv1d (out, in, k)
    encoder.block.{i}.res_unit{1,2,3}.{snake1,snake2}.alpha  (1, C, 1)
    encoder.block.{i}.res_unit{j}.{conv1,conv2}.{weight,bias}
    encoder.block.{i}.snake1.alpha, encoder.block.{i}.conv1.*, encoder.snake1.alpha,
    encoder.conv2.*
    quantizer.quantizers.{q}.{in_proj,out_proj}.{weight,bias}, .codebook.weight (size, dim)
    decoder.conv1.*, decoder.block.{i}.snake1.alpha, decoder.block.{i}.conv_t1.*
    (ConvTranspose1d (in, out, k)), decoder.block.{i}.res_unit{j}.*, decoder.snake1.alpha,
    decoder.conv2.*

The published descript/dac_* checkpoints were converted with weight norm removed (transformers'
`convert_dac_checkpoint.py`: `apply_weight_norm`, load, `remove_weight_norm`, save), so their
convs are plain `.weight`. A model saved with weight norm applied (`DacModel.apply_weight_norm()`)
stores `.parametrizations.weight.original0/1` (transformers 5) or `.weight_g/.weight_v`; both are
folded into `<conv>.weight` here (`weights.weight_norm`, dim 0).

`load(path)`: a directory with `config.json` + `model.safetensors` (`save_pretrained`). Keys and
shapes are checked against the model when it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from weights.checkpoint import Checkpoint
from weights.hf_safetensors import read_pretrained
from weights.weight_norm import fold_weight_norms


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical DAC layout."""



def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A transformers DacModel state dict -> the canonical layout (weight norm folded)."""
    return fold_weight_norms({k: np.asarray(v) for k, v in state.items()})


def load(path: Path | str) -> Checkpoint:
    """Read a transformers `save_pretrained` directory (config.json + model.safetensors)."""
    cfg, raw = read_pretrained(path, "DacModel", "dac", WeightsError)
    state = from_transformers(raw)
    return Checkpoint(config=cfg, state=state, source=str(Path(path)))
