"""Kokoro voices: style packs (510, 1, 256) float32, one style vector per phoneme count.

kokoro's `KPipeline` picks `pack[len(phonemes) - 1]` (the pack's row for the utterance length)
and a blend of voices is their mean (`load_voice("a,b")`: `torch.mean(torch.stack(packs))`).
Files: `.pt` (a torch.save'd tensor, as kokoro's voices; read without torch) or `.npy`.
A voice argument is a name in the model folder's `voices/`, a file path, or several of those
joined by commas (blended). numpy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weights.torch_zip import read_torch_zip

STYLE = 256  # 2 x style_dim of every released Kokoro
ROWS = 510


class VoiceError(ValueError):
    """A voice that cannot be found or read, or of the wrong shape."""


def available(folder: Path) -> list[str]:
    d = Path(folder) / "voices"
    return sorted(p.stem for p in d.glob("*") if p.suffix in (".pt", ".npy")) if d.is_dir() else []


def _file(folder: Path, name: str) -> Path:
    p = Path(name).expanduser()
    if p.suffix in (".pt", ".npy") and p.is_file():
        return p
    for suffix in (".pt", ".npy"):
        q = Path(folder) / "voices" / f"{name}{suffix}"
        if q.is_file():
            return q
    raise VoiceError(f"unknown voice {name!r}; pass one of {available(folder) or '(none)'} "
                     f"(voices/ of {folder}), a .pt/.npy file, or 'a,b' to blend two")


def read_array(raw, what: str) -> np.ndarray:
    a = np.asarray(raw, dtype=np.float32)
    if a.shape == (ROWS, STYLE):
        a = a[:, None]
    if a.shape != (ROWS, 1, STYLE):
        raise VoiceError(f"{what}: a Kokoro voice is a ({ROWS}, 1, {STYLE}) style pack, got "
                         f"shape {a.shape}; pass a kokoro voice file (voices/*.pt)")
    if not np.isfinite(a).all():
        raise VoiceError(f"{what}: the voice holds NaN or Inf values")
    return a


def read_pack(path: Path) -> np.ndarray:
    try:
        raw = np.load(path) if path.suffix == ".npy" else read_torch_zip(path)
    except Exception as e:  # a corrupt or foreign file: say which and what it should be
        raise VoiceError(f"{path}: cannot read a voice from it ({type(e).__name__}: {e}); "
                         "pass a kokoro voice file (.pt or .npy)") from e
    return read_array(raw, str(path))


def load_voice(folder: Path, voice: str) -> np.ndarray:
    """'name', 'path.pt' or 'a,b' (blend: the mean of the packs) -> (510, 1, 256)."""
    names = [v.strip() for v in voice.split(",") if v.strip()]
    if not names:
        raise VoiceError(f"empty voice {voice!r}; pass one of {available(folder)}")
    packs = [read_pack(_file(folder, n)) for n in names]
    return packs[0] if len(packs) == 1 else np.mean(np.stack(packs), axis=0).astype(np.float32)


def style_for(pack: np.ndarray, n_phonemes: int) -> np.ndarray:
    """The (1, 256) style vector for an utterance of `n_phonemes` (kokoro: pack[n - 1])."""
    if not 1 <= n_phonemes <= pack.shape[0]:
        raise VoiceError(f"{n_phonemes} phonemes: a voice pack covers 1..{pack.shape[0]}; "
                         "split the text")
    return pack[n_phonemes - 1].reshape(1, -1)
