"""Speech clips the specs feed both sides: the committed espeak fixtures and ../shared/speech."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from parity.spec import CaseInputs, GoldenCase

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
SHARED_SPEECH = ROOT.parent / "shared" / "speech"  # real speech; absent on some machines
SAMPLE_RATE = 16000


def manifest(folder: Path) -> list[dict]:
    """Entries of `folder`/manifest.jsonl with `path` added; [] when the folder has none."""
    path = folder / "manifest.jsonl"
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [dict(e, path=folder / e["file"]) for e in entries]


def read_clip(clip_id: str, folder: Path = FIXTURES) -> tuple[dict, np.ndarray]:
    """(manifest entry, 16 kHz mono float32 samples) of one clip."""
    import soundfile

    if not (folder / "manifest.jsonl").exists():
        raise FileNotFoundError(f"clip manifest {folder / 'manifest.jsonl'} is missing")
    entries = {e["id"]: e for e in manifest(folder)}
    if clip_id not in entries:
        raise KeyError(f"no clip {clip_id!r}; {folder / 'manifest.jsonl'} has {sorted(entries)}")
    e = entries[clip_id]
    audio, sr = soundfile.read(e["path"], dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE or audio.shape[1] != 1:
        raise ValueError(f"clip {e['file']}: expected 16000 Hz mono, got {sr} Hz with "
                         f"{audio.shape[1]} channels; resample it")
    return e, np.ascontiguousarray(audio[:, 0])


def audio_inputs(case: GoldenCase) -> CaseInputs:
    """Inputs {"audio": samples} of the clip `case.params["clip"]` (in `params["folder"]`)."""
    folder = Path(case.params.get("folder", FIXTURES))
    entry, audio = read_clip(case.params["clip"], folder)
    meta = {"clip": entry["id"], "file": str(folder / entry["file"]),
            "clip_sha256": entry.get("sha256"), "text": entry["text"],
            "n_samples": int(audio.shape[0])}
    return CaseInputs({"audio": audio}, meta)
