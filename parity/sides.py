"""The two sides of a spec whose model package has its own `load(folder, dtype)` returning
(model, extra) and whose reference adapter takes the spec's tap list (wav2vec2, parakeet,
voxtral; the codecs use `parity.models.codec`).

- `AdapterSide`: a reference adapter (reference/<model>.py) built on the seeded checkpoint,
  called with `taps=` the spec's list (the adapter hooks the module paths among them);
- `LoadedMlxSide`: `mlx_impl.<package>.load.load(folder, dtype)`; a subclass sets `package` and
  defines `__call__(inputs) -> taps`.

Importing this module imports neither torch nor mlx.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path


class AdapterSide:
    def __init__(self, adapter, config: Mapping, taps: Sequence[str]):
        self.ref = adapter
        self.config = dict(config)
        self.versions = adapter.versions
        self.taps = tuple(taps)

    def __call__(self, inputs, *args):
        """`args` go to the adapter before `taps=` (e.g. voxtral's `max_new_tokens`)."""
        return self.ref(inputs, *args, taps=self.taps)


class LoadedMlxSide:
    package: str  # the mlx_impl package whose load.load(folder, dtype) builds the model

    def __init__(self, folder: Path, config: Mapping, dtype: str):
        import mlx.core as mx

        from mlx_impl.loading import as_dtype

        self._mx = mx
        self.dtype = as_dtype(dtype)
        self.model, _ = importlib.import_module(f"mlx_impl.{self.package}.load").load(
            folder, self.dtype)
        self.config = dict(config)
        self.versions = {"mlx": mx.__version__}
