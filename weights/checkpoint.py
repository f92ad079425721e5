"""What the codec and vocoder readers return, and the folder reading the torch.save ones share.

`Checkpoint(config, state, source)`: `config` is the checkpoint's own config file parsed (its
field names are the upstream ones), `state` the model's canonical layout (see the reading
module's docstring and docs/ARCHITECTURE.md), `source` where it was read from.
numpy and the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.torch_zip import read_torch_zip


@dataclass(frozen=True)
class Checkpoint:
    config: dict  # the checkpoint's config file, parsed
    state: dict[str, np.ndarray]  # canonical layout of the model
    source: str


def read_torch_folder(folder: Path | str, config_name: str, weights_name: str, what: str,
                      error: type[Exception], key: str | None = None
                      ) -> tuple[str, dict[str, np.ndarray]]:
    """A folder holding a config file and a `torch.save` state dict (under `key` when the file
    holds {key: state dict}) -> (the config file's text, the state dict as numpy arrays). A
    missing file raises FileNotFoundError naming it and what the folder should hold (`what`);
    a file that holds no state dict raises `error`."""
    folder = Path(folder)
    cfg_path, weights_path = folder / config_name, folder / weights_name
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected {what} ({config_name} and "
                                    f"{weights_name})")
    raw = read_torch_zip(weights_path)
    if key is not None:
        if not isinstance(raw, Mapping) or key not in raw:
            raise error(f"{weights_path}: expected {{{key!r}: state_dict}}, got "
                        f"{sorted(raw) if isinstance(raw, Mapping) else type(raw).__name__}")
        raw = raw[key]
    if not isinstance(raw, Mapping):
        raise error(f"{weights_path}: expected a state dict, got {type(raw).__name__}")
    return cfg_path.read_text(), {k: np.asarray(v) for k, v in raw.items()}
