"""Kokoro weights: kokoro's `.pth` checkpoint -> one canonical layout (numpy only).

On disk (hexgrad/Kokoro-82M `kokoro-v1_0.pth`, and the seeded folders of reference/kokoro.py):
`torch.save({"bert": sd, "bert_encoder": sd, "predictor": sd, "text_encoder": sd,
"decoder": sd})`, one state dict per `KModel` part; the hub file prefixes every key with
`module.` (a DataParallel save; `KModel` strips it), so that prefix is dropped when present.
Convolutions use `torch.nn.utils.weight_norm` (`weight_g` / `weight_v`, dim 0; for the
ConvTranspose1d kernels (in, out, k) that is the input channel, as torch's default).

Canonical layout: `<part>.<key>` (e.g. `decoder.generator.ups.0.weight`), weight norm folded
(`weights.weight_norm`), the ALBERT pooler dropped (`CustomAlbert` returns the last hidden
state; the pooler never runs), numpy arrays in torch layout. The folder also holds
`config.json` (kokoro's config, with its `vocab`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from weights.checkpoint import Checkpoint
from weights.torch_zip import read_torch_zip
from weights.weight_norm import fold_weight_norms

PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
UNUSED = ("bert.pooler.",)  # never run by KModel
WEIGHTS_NAME = "kokoro.pth"


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical Kokoro layout."""


def from_kokoro(parts: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    missing = [p for p in PARTS if p not in parts]
    extra = sorted(set(parts) - set(PARTS))
    if missing or extra:
        raise WeightsError(f"a kokoro checkpoint holds one state dict per part {list(PARTS)}; "
                           f"missing {missing}, unexpected {extra}")
    state = {}
    for part in PARTS:
        for key, value in parts[part].items():
            key = f"{part}.{key.removeprefix('module.')}"
            if not key.startswith(UNUSED) and not key.endswith(".position_ids"):
                state[key] = np.asarray(value)
    return fold_weight_norms(state)


def load(path: Path | str) -> Checkpoint:
    """A folder with config.json and kokoro.pth (or the .pth file itself, next to config.json)."""
    path = Path(path)
    folder, pth = (path.parent, path) if path.is_file() else (path, path / WEIGHTS_NAME)
    cfg = folder / "config.json"
    for p in (cfg, pth):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected a Kokoro folder (config.json and "
                                    f"{WEIGHTS_NAME}, as `python -m parity.tts_models build "
                                    "kokoro-82m` writes)")
    raw = read_torch_zip(pth)
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{pth}: expected {{part: state_dict}}, got {type(raw).__name__}")
    return Checkpoint(config=json.loads(cfg.read_text(encoding="utf-8")), state=from_kokoro(raw),
                      source=str(path))
