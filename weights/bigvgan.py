"""Reader for BigVGAN checkpoints as the hub repos hold them (nvidia/bigvgan_v2_*):
`config.json` (hyper-parameters, training keys included) + `bigvgan_generator.pt`
(`torch.save({"generator": state_dict})`, weight norm as `weight_g`/`weight_v`). numpy only.

Canonical layout: bigvgan 2.4.1's generator state-dict keys, numpy arrays in torch layout, weight
norm folded into `<conv>.weight` (`weights.weight_norm`, dim 0, as upstream's
`remove_weight_norm()`; for the `ups.*` ConvTranspose1d that is the input channel). Keys and
shapes are checked against the model when it is loaded (`mlx_impl.loading.load_strict`).
"""

from __future__ import annotations

import json
from pathlib import Path

from weights.checkpoint import Checkpoint, read_torch_folder
from weights.weight_norm import fold_weight_norms

GENERATOR = "bigvgan_generator.pt"


class WeightsError(ValueError):
    """Files that cannot be read as a BigVGAN checkpoint."""


def load(path: Path | str) -> Checkpoint:
    """config.json (hyper-parameters) + the generator's state dict -> the canonical layout."""
    cfg, raw = read_torch_folder(path, "config.json", GENERATOR, "a BigVGAN folder, as "
                                 "nvidia/bigvgan_v2_24khz_100band_256x", WeightsError,
                                 key="generator")
    state = fold_weight_norms(raw)
    bad = [k for k in state if not k.startswith(("conv_pre.", "ups.", "resblocks.",
                                                  "activation_post.", "conv_post."))]
    if bad:
        raise WeightsError(f"{path}/{GENERATOR}: unexpected keys {bad[:5]} in a BigVGAN "
                           "generator")
    return Checkpoint(config=json.loads(cfg), state=state, source=str(path))
