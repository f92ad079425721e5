"""Synthesize the committed speech fixtures with espeak-ng (16 kHz mono 16-bit WAV + manifest).

Run: python scripts/make_fixtures.py   (needs the espeak-ng binary: apt-get install espeak-ng)

The WAVs are committed so tests never need espeak-ng; this script documents how they were made
and regenerates them. espeak-ng writes 22050 Hz; we resample to 16 kHz with a polyphase filter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "speech"
CLIPS = {
    "espeak_en_fox": ("en-us", 150, "The quick brown fox jumps over the lazy dog. "
                      "Parity testing keeps every port honest."),
    "espeak_en_weather": ("en-us", 140, "Tomorrow the weather will be sunny, with a high of "
                          "twenty degrees and a light wind from the west."),
}


def synthesize(voice: str, speed: int, text: str) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        sys.exit("espeak-ng not found: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
        audio, sr = sf.read(wav, dtype="float32")
    if sr != 22050:
        raise RuntimeError(f"espeak-ng wrote {sr} Hz, expected 22050")
    return resample_poly(audio, 320, 441).astype(np.float32)  # 22050 -> 16000


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    manifest = []
    for clip_id, (voice, speed, text) in CLIPS.items():
        audio = synthesize(voice, speed, text)
        path = OUT / f"{clip_id}.wav"
        tmp = path.with_suffix(".wav.tmp")
        sf.write(tmp, np.clip(audio, -1, 1), 16000, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
        manifest.append({
            "id": clip_id, "file": path.name, "duration_s": round(len(audio) / 16000, 3),
            "language": "en", "text": text, "voice": voice, "speed_wpm": speed,
            "generator": f"espeak-ng ({version.strip()}), scripts/make_fixtures.py",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        })
    tmp = OUT / "manifest.jsonl.tmp"
    tmp.write_text("".join(json.dumps(m) + "\n" for m in manifest))
    os.replace(tmp, OUT / "manifest.jsonl")
    for m in manifest:
        print(f"{m['file']}: {m['duration_s']} s  {m['text']}")


if __name__ == "__main__":
    main()
