"""Vocos weights: a checkpoint folder as the hub repos hold it -> config dict + state (numpy only).

Layout of charactr/vocos-* repositories: `config.yaml` (the `Vocos.from_hparams` yaml: feature
extractor, backbone and head class paths with init_args) and `pytorch_model.bin` (a `torch.save`
state dict of the `Vocos` module). For EnCodec-feature models the file holds
`feature_extractor.codebook_weights` (the stacked quantizer codebooks) but not the wrapped EnCodec
model (`Vocos.from_pretrained` adds `feature_extractor.encodec.*` from the encodec package);
such keys, if present, are dropped here (audio -> codes is the EnCodec port's job).

The yaml is parsed with PyYAML (a dependency of transformers and vocos), the checkpoint with
`weights.torch_zip` (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.torch_zip import read_torch_zip

ENCODEC_PREFIX = "feature_extractor.encodec."


class WeightsError(ValueError):
    """Files that cannot be read as a Vocos checkpoint."""


@dataclass(frozen=True)
class VocosWeights:
    config: dict  # parsed config.yaml
    state: dict[str, np.ndarray]  # upstream keys, torch layout
    source: str


def load(path: Path | str) -> VocosWeights:
    import yaml

    path = Path(path)
    cfg_path, bin_path = path / "config.yaml", path / "pytorch_model.bin"
    for p in (cfg_path, bin_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected a Vocos checkpoint folder with "
                                    "config.yaml and pytorch_model.bin (as charactr/vocos-*)")
    config = yaml.safe_load(cfg_path.read_text())
    if not isinstance(config, dict):
        raise WeightsError(f"{cfg_path}: expected a mapping, got {type(config).__name__}")
    raw = read_torch_zip(bin_path)
    if not isinstance(raw, dict):
        raise WeightsError(f"{bin_path}: expected a state dict, got {type(raw).__name__}")
    state = {k: np.asarray(v) for k, v in raw.items() if not k.startswith(ENCODEC_PREFIX)}
    bad = [k for k in state if not k.startswith(("feature_extractor.", "backbone.", "head."))]
    if bad:
        raise WeightsError(f"{bin_path}: unexpected keys {bad[:5]} in a Vocos state dict")
    return VocosWeights(config=config, state=state, source=str(path))
