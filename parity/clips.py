"""The one reader of speech clips, for the specs, the tests and the benchmarks.

Clips live in folders with a `manifest.jsonl` (one JSON object per line: `id`, `file` relative to
the folder, `text`, `language`, `sha256`, ...): the committed espeak fixtures
(tests/fixtures/speech) and the real speech in ../shared/speech (absent on some machines).

- `shared_speech()`: the real-speech folder the checks read: ../shared/speech beside the clone,
  or the folder named by the environment variable PARITY_SHARED_SPEECH (read at each call; a
  location only, nothing numeric: e.g. `PARITY_SHARED_SPEECH=/tmp/empty make parity
  MODEL=whisper-base` shows what a machine without the clips gets: the real-speech checks are
  "not run" and the run FAILs naming the manifest path they looked for).

- `manifest(folder)`: the entries, each with `path` added; a missing manifest is an error that
  names it (`missing_ok=True`: [] instead).
- `read_audio(path, sample_rate, seconds)`: float32 mono at `sample_rate` (channels averaged,
  polyphase resampling, `resample`), cut to its first `seconds`.
- `read_clip(clip_id, folder, sample_rate, seconds)`: (entry, samples) of one clip.
- `audio_inputs(case)`: a golden case's {"audio": samples} inputs.

numpy, soundfile and scipy only; mlx_impl never imports this (it reads audio with
mlx_impl.audio_io).
"""

from __future__ import annotations

import json
import os
from math import gcd
from pathlib import Path

import numpy as np

from parity.spec import CaseInputs, GoldenCase

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
SHARED_SPEECH = ROOT.parent / "shared" / "speech"  # real speech; absent on some machines
SHARED_SPEECH_ENV = "PARITY_SHARED_SPEECH"  # overrides where shared_speech() looks


def shared_speech() -> Path:
    """The real-speech folder: $PARITY_SHARED_SPEECH when set and not empty, else
    ../shared/speech beside the clone (`SHARED_SPEECH`). It may be absent: `shared_manifest`."""
    return Path(os.environ.get(SHARED_SPEECH_ENV) or SHARED_SPEECH)


def missing_shared_speech() -> str | None:
    """None when `shared_speech()` has its manifest, else the reason a check needing real speech
    cannot run, naming the manifest path it looked for and the fix."""
    path = shared_speech() / "manifest.jsonl"
    if path.is_file():
        return None
    via = (f" (from ${SHARED_SPEECH_ENV})" if os.environ.get(SHARED_SPEECH_ENV) else "")
    return (f"the real-speech clips are missing: no {path}{via}; put the shared speech folder "
            f"beside the repository (../shared/speech, see its README) or point "
            f"{SHARED_SPEECH_ENV} at it")
SAMPLE_RATE = 16000


def display_path(path: Path | str) -> str:
    """`path` as reports and golden manifests name it: relative to the repository, or under
    `../shared` for the shared clips; never the absolute path of the machine that ran."""
    p = Path(path).resolve()
    for base, prefix in ((ROOT, ""), (ROOT.parent / "shared", "../shared/")):
        try:
            return prefix + p.relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return Path(path).name if Path(path).is_absolute() else str(path)


def has_manifest(folder: Path) -> bool:
    return (Path(folder) / "manifest.jsonl").is_file()


def manifest(folder: Path, missing_ok: bool = False) -> list[dict]:
    """Entries of `folder`/manifest.jsonl in file order, each with `path` (folder / file) added."""
    path = Path(folder) / "manifest.jsonl"
    if not path.is_file():
        if missing_ok:
            return []
        raise FileNotFoundError(f"clip manifest {path} is missing: the fixtures are committed "
                                "(scripts/make_fixtures.py writes them); ../shared/speech is "
                                "laid beside the clone")
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [dict(e, path=Path(folder) / e["file"]) for e in entries]


def resample(audio: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    """float32 `audio` (last axis time) from `sample_rate` to `target` Hz: scipy `resample_poly`
    by the reduced ratio (its Kaiser-windowed FIR); an unchanged copy when the rates are equal
    (what resample_poly returns then; scipy is not imported)."""
    if int(sample_rate) == int(target):
        return np.array(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(sample_rate), int(target))
    return resample_poly(np.asarray(audio, np.float32), target // g, sample_rate // g,
                         axis=-1).astype(np.float32)


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE,
               seconds: float | None = None) -> np.ndarray:
    """The file as (N,) float32 mono at `sample_rate` (channels averaged, then `resample`),
    cut to its first `seconds` (at the new rate)."""
    import soundfile

    audio, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = resample(audio.mean(axis=1), sr, sample_rate)
    if seconds is not None:
        audio = audio[: int(seconds * sample_rate)]
    return np.ascontiguousarray(audio)


def read_clip(clip_id: str, folder: Path = FIXTURES, sample_rate: int = SAMPLE_RATE,
              seconds: float | None = None) -> tuple[dict, np.ndarray]:
    """(manifest entry, (N,) float32 mono samples at `sample_rate`) of one clip (`read_audio`)."""
    entries = {e["id"]: e for e in manifest(folder)}
    if clip_id not in entries:
        raise KeyError(f"no clip {clip_id!r}; {Path(folder) / 'manifest.jsonl'} has "
                       f"{sorted(entries)}")
    e = entries[clip_id]
    return e, read_audio(e["path"], sample_rate, seconds)


def audio_inputs(case: GoldenCase) -> CaseInputs:
    """Inputs {"audio": samples} of the clip `case.params["clip"]` (in `params["folder"]`)."""
    folder = Path(case.params.get("folder", FIXTURES))
    entry, audio = read_clip(case.params["clip"], folder)
    meta = {"clip": entry["id"], "file": display_path(folder / entry["file"]),
            "clip_sha256": entry.get("sha256"), "text": entry["text"],
            "n_samples": int(audio.shape[0])}
    return CaseInputs({"audio": audio}, meta)
