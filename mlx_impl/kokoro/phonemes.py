"""Text -> Kokoro phonemes -> token ids, with espeak-ng (IPA, en-us).

kokoro's own G2P (misaki) needs spaCy and a downloaded spaCy model; its fallback is espeak-ng,
used here directly: `espeak-ng -q --ipa -v <lang>`; clause lines joined by spaces. Token ids
are upstream's `KModel.forward`: every phoneme character looked up in the config's vocab,
characters it lacks dropped, then 0 (pad) at both ends.
"""

from __future__ import annotations

import shutil
import subprocess


class PhonemeError(ValueError):
    """Text that yields no phonemes, or no espeak-ng."""


def phonemize(text: str, lang: str = "en-us") -> str:
    if not text.strip():
        raise PhonemeError("empty text; pass the words to speak")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise PhonemeError("espeak-ng is not installed; `apt-get install espeak-ng` (Debian) or "
                           "`brew install espeak-ng`, or pass phonemes")
    out = subprocess.run([exe, "-q", "--ipa", "-v", lang, text], capture_output=True, text=True,
                         check=True).stdout
    return " ".join(line.strip() for line in out.splitlines() if line.strip())


PUNCTUATION = set(';:,.!?¡¿—…"«»“”()- ')


def to_ids(phonemes: str, vocab: dict) -> list[int]:
    ids = [vocab[p] for p in phonemes if p in vocab]
    if not any(p in vocab and p not in PUNCTUATION for p in phonemes):
        raise PhonemeError(f"no pronounceable content: phonemes {phonemes!r} contain nothing "
                           "in the model's vocabulary; pass text with words")
    return [0, *ids, 0]
