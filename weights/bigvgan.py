"""Reader for BigVGAN checkpoints as the hub repos hold them (nvidia/bigvgan_v2_*):
`config.json` (hyper-parameters, training keys included) + `bigvgan_generator.pt`
(`torch.save({"generator": state_dict})`, weight norm as `weight_g`/`weight_v`). numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.torch_zip import read_torch_zip

GENERATOR = "bigvgan_generator.pt"


class WeightsError(ValueError):
    pass


@dataclass
class BigVGANWeights:
    config: dict
    state: dict[str, np.ndarray]  # upstream keys, weight norm not folded
    source: str


def load(path: Path | str) -> BigVGANWeights:
    path = Path(path)
    cfg_path, pt_path = path / "config.json", path / GENERATOR
    for p in (cfg_path, pt_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected a BigVGAN folder with config.json "
                                    f"and {GENERATOR} (as nvidia/bigvgan_v2_24khz_100band_256x)")
    config = json.loads(cfg_path.read_text())
    raw = read_torch_zip(pt_path)
    if not isinstance(raw, dict) or "generator" not in raw:
        raise WeightsError(f"{pt_path}: expected {{'generator': state_dict}}, got "
                           f"{sorted(raw) if isinstance(raw, dict) else type(raw).__name__}")
    state = {k: np.asarray(v) for k, v in raw["generator"].items()}
    bad = [k for k in state if not k.startswith(("conv_pre.", "ups.", "resblocks.",
                                                  "activation_post.", "conv_post."))]
    if bad:
        raise WeightsError(f"{pt_path}: unexpected keys {bad[:5]} in a BigVGAN generator")
    return BigVGANWeights(config=config, state=state, source=str(path))
