"""The benchmark clip: 30 s of English speech at 16 kHz, the same samples for every engine.

Built from the real English clips in ../shared/speech (manifest order) when that folder is there,
else from the committed espeak-ng fixtures (tests/fixtures/speech), repeated as needed, read by
`parity.clips` (a clip at another rate is resampled to 16 kHz). Only whole
clips are used, then silence pads the audio to exactly 30 s: a clip cut mid-word makes the
timestamp decoders end on an unfinished segment and seek a second window at 27 s (measured with
openai-whisper tiny.en), and HF's short-form `generate` does no seeking, so the engines would do
different work. Exactly 30 s with whole utterances is one window on every engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.clips import FIXTURES, SAMPLE_RATE, SHARED_SPEECH, has_manifest, manifest, read_audio


@dataclass
class Clip:
    audio: np.ndarray  # (n_samples,) float32 in [-1, 1], 16 kHz mono
    source: str  # folder the pieces came from
    pieces: list[str]  # clip ids in order (repeats included)
    text: str  # reference transcript of the pieces
    cut: str | None  # id of a piece cut short (only when the first piece alone is too long)
    speech_s: float  # seconds of speech before the silence padding

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE

    def sha256(self) -> str:
        return hashlib.sha256(self.audio.tobytes()).hexdigest()

    def describe(self) -> dict:
        return {"source": self.source, "pieces": self.pieces, "duration_s": self.duration_s,
                "sample_rate": SAMPLE_RATE, "sha256_float32": self.sha256(), "cut": self.cut,
                "speech_s": self.speech_s, "silence_padding_s": self.duration_s - self.speech_s,
                "reference_text": self.text}


def english_clip(duration_s: float = 30.0, shared: Path = SHARED_SPEECH,
                 fixtures: Path = FIXTURES) -> Clip:
    """`duration_s` of English speech; see the module docstring for where it comes from."""
    folder = shared if has_manifest(shared) else fixtures
    entries = [m for m in manifest(folder) if m.get("language") == "en"]
    if not entries:
        raise FileNotFoundError(f"no English clips in {folder / 'manifest.jsonl'}")
    want = round(duration_s * SAMPLE_RATE)
    parts, ids, texts, total, cut = [], [], [], 0, None
    for i in range(10_000):
        m = entries[i % len(entries)]
        a = read_audio(m["path"], SAMPLE_RATE)
        if a.size == 0:
            raise ValueError(f"{m['path']} is empty")
        if total + a.size > want:
            if parts:
                break
            a, cut = a[:want], m["id"]  # a single clip longer than the duration: cut it
        parts.append(a)
        ids.append(m["id"])
        texts.append(m["text"])
        total += a.size
    speech = total
    parts.append(np.zeros(want - total, dtype=np.float32))
    return Clip(np.concatenate(parts).astype(np.float32), str(folder), ids, " ".join(texts), cut,
                speech / SAMPLE_RATE)
