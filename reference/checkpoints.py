"""Writing seeded reference models in their real on-disk format, atomically, into a cache."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def save_pretrained_atomically(model, folder: Path, extra_files: dict[str, str]) -> Path:
    """`model.save_pretrained` plus `extra_files` (name -> text) into `folder`, all or nothing:
    written in a temporary sibling, then renamed into place. If another process wins the race,
    its (identical, seeded) folder is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        for name, text in extra_files.items():
            (tmp / name).write_text(text)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
