"""Bark's text ids and the offline test tokenizer. Pure Python (no mlx), so the parity spec and
the reference adapter use it too.

Upstream (transformers 5.24.0 `BarkProcessor.__call__`): the text goes through suno's
`bert-base-multilingual-cased` tokenizer without special tokens, padded (and truncated) to 256
ids with an attention mask; `BarkSemanticModel.generate` adds 10048 and puts the text pad token
on the masked positions. That vocabulary only comes from the hub, so `encode_text` is a TEST
TOKENIZER built offline: byte b of the UTF-8 text -> id `BYTE_BASE` + b (ids of ordinary
WordPieces in that vocabulary, clear of [PAD] 0 and [UNK]/[CLS]/[SEP]/[MASK] 100-103). Every
offset after it is the real one, so prompts have the real layout; only the text ids differ from
the real model's. Text longer than 256 ids is an error here (upstream truncates silently).
"""

from __future__ import annotations

BYTE_BASE = 1000
MAX_TEXT_TOKENS = 256  # BarkProcessor's max_length (= max_input_semantic_length)


def check_text(text: str, limit: int = MAX_TEXT_TOKENS) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty; pass the words to speak")
    n = len(text.strip().encode("utf-8"))
    if n > limit:
        raise ValueError(f"text is {n} tokens long, over Bark's {limit} per prompt; split it "
                         "into shorter pieces (e.g. sentences) and synthesize each")


def encode_text(text: str) -> list[int]:
    """The TEST tokenizer (module docstring): stripped UTF-8 bytes + `BYTE_BASE`."""
    check_text(text)
    return [BYTE_BASE + b for b in text.strip().encode("utf-8")]
