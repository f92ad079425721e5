"""Token ids of Voxtral's transcription prompt, and a decoder for generated ids (plain Python).

The real model's tokenizer is mistral-common's Tekken (a tiktoken-style byte BPE whose file,
tekken.json, comes from the hub). Offline there is none, so:
- the prompt is built from Tekken's special-token ids, in the layout mistral-common's
  `encode_transcription` produces when no language is given:
  `<s> [INST] [BEGIN_AUDIO] [AUDIO] * n [/INST] [TRANSCRIBE]`;
- `TekkenDecoder` turns ids into text: ids below `n_special` (1000) are control tokens (dropped,
  or shown as `<|id|>` with `keep_special=True`); id `n_special + r` is BPE rank r. With a
  tekken.json (`from_tekken_json`) every rank has its bytes. Without one only ranks 0-255, the
  single bytes in tiktoken-style vocabularies, can be decoded; any other id is written `<|id|>`.
  Byte sequences are decoded as UTF-8 with replacement characters for invalid bytes.
With the seeded random weights of the parity specs the text means nothing; only the ids matter.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

BOS, EOS, INST, INST_END, AUDIO, BEGIN_AUDIO, TRANSCRIBE = 1, 2, 3, 4, 24, 25, 34
N_SPECIAL = 1000


def transcription_prompt(n_audio_tokens: int) -> list[int]:
    if n_audio_tokens < 1:
        raise ValueError(f"a transcription prompt needs >= 1 audio token, got {n_audio_tokens}")
    return [BOS, INST, BEGIN_AUDIO] + [AUDIO] * n_audio_tokens + [INST_END, TRANSCRIBE]


def text_to_byte_ids(text: str, n_special: int = N_SPECIAL) -> list[int]:
    """The ids of `text`'s UTF-8 bytes as single-byte tokens (no merges)."""
    return [n_special + b for b in text.encode("utf-8")]


class TekkenDecoder:
    def __init__(self, ranks: list[bytes] | None = None, n_special: int = N_SPECIAL):
        self.ranks = ranks if ranks is not None else [bytes([b]) for b in range(256)]
        self.n_special = n_special

    @classmethod
    def from_tekken_json(cls, path: str | Path) -> TekkenDecoder:
        data = json.loads(Path(path).read_text())
        try:
            ranks = [base64.b64decode(v["token_bytes"]) for v in data["vocab"]]
            n_special = int(data["config"]["default_num_special_tokens"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a Tekken vocabulary (needs vocab[].token_bytes and "
                             f"config.default_num_special_tokens): {e}") from None
        return cls(ranks, n_special)

    def decode(self, ids, keep_special: bool = False) -> str:
        out, pending = [], bytearray()
        for i in (int(t) for t in ids):
            rank = i - self.n_special
            if 0 <= rank < len(self.ranks):
                pending += self.ranks[rank]
                continue
            if i < self.n_special and not keep_special:
                continue
            out.append(pending.decode("utf-8", errors="replace"))
            pending = bytearray()
            out.append(f"<|{i}|>")
        out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)
