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

from pathlib import Path

from weights.checkpoint import Checkpoint, read_torch_folder

ENCODEC_PREFIX = "feature_extractor.encodec."


class WeightsError(ValueError):
    """Files that cannot be read as a Vocos checkpoint."""


def load(path: Path | str) -> Checkpoint:
    """config.yaml (parsed) + pytorch_model.bin (upstream keys, torch layout)."""
    import yaml

    text, raw = read_torch_folder(path, "config.yaml", "pytorch_model.bin",
                                  "a Vocos checkpoint folder, as charactr/vocos-*", WeightsError)
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        raise WeightsError(f"{Path(path) / 'config.yaml'}: expected a mapping, got "
                           f"{type(config).__name__}")
    state = {k: v for k, v in raw.items() if not k.startswith(ENCODEC_PREFIX)}
    bad = [k for k in state if not k.startswith(("feature_extractor.", "backbone.", "head."))]
    if bad:
        raise WeightsError(f"{path}: unexpected keys {bad[:5]} in a Vocos state dict")
    return Checkpoint(config=config, state=state, source=str(path))
