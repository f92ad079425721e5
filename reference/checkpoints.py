"""Writing seeded reference models in their real on-disk format, atomically, into a cache.

- `seeded_checkpoint`: the cache folder of one seeded random checkpoint, keyed by config, seed,
  init scheme and package versions; reused when present, else written (all or nothing);
- `write_atomically`: a folder written in a temporary sibling, then renamed into place;
- `save_pretrained_atomically`: `model.save_pretrained` plus extra files, atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlx-audio-parity"


def write_atomically(folder: Path, write: Callable[[Path], None], marker: str) -> Path:
    """`write(tmp)` fills a temporary sibling of `folder`, which is then renamed into place: all
    or nothing. If another process wins the race (its `marker` file is there), its (identical,
    seeded) folder is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        write(tmp)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / marker).is_file():  # not written by a concurrent run
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def save_pretrained_atomically(model, folder: Path, extra_files: dict[str, str]) -> Path:
    """`model.save_pretrained` plus `extra_files` (name -> text) into `folder`, all or nothing
    (`write_atomically`)."""

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        for name, text in extra_files.items():
            (tmp / name).write_text(text)

    return write_atomically(folder, write, "model.safetensors")


def seeded_checkpoint(kind: str, config: Mapping, seed: int, stamp: Mapping,
                      files: tuple[str, ...], write: Callable[[Path], None],
                      cache: Path | None = None, prefix: str = "") -> Path:
    """The folder `<cache or CACHE/kind>/<prefix>seed<seed>-<digest>` of a seeded random
    checkpoint. `digest` hashes the key {config, seed, **stamp} (`stamp`: the init scheme's
    name and the package versions: a change of either writes a new checkpoint). Reused when all
    of `files` are there (the first is the one that marks a finished folder); else `write(tmp)`
    writes the checkpoint and the key goes to seed.json, atomically (`write_atomically`)."""
    key = json.dumps({"config": dict(config), "seed": seed, **stamp}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = Path(cache) if cache is not None else CACHE / kind
    out = root / f"{prefix}seed{seed}-{digest}"
    if all((out / name).is_file() for name in files):
        return out

    def write_with_key(tmp: Path) -> None:
        write(tmp)
        (tmp / "seed.json").write_text(key)

    return write_atomically(out, write_with_key, files[0])


def from_pretrained_strict(model_cls, folder: Path, **kwargs):
    """`model_cls.from_pretrained(folder)` with eager attention, in float32 and eval mode; any
    missing, unexpected or mismatched key transformers reports is an error naming the folder."""
    model, info = model_cls.from_pretrained(str(folder), attn_implementation="eager",
                                            output_loading_info=True, **kwargs)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise ValueError(f"{folder}: transformers reports loading problems {bad}")
    return model.float().eval()
