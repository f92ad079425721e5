"""Dia's text tokens and the delay pattern: pure Python + numpy (no mlx), so the parity spec
uses them too.

Sources (transformers 5.24.0, read, not copied):
- `models/dia/tokenization_dia.py` `DiaTokenizer`: the text is its UTF-8 bytes as ids 0-255;
  the added tokens `<pad>` = 0, `[S1]` = 1, `[S2]` = 2 are split out first (speaker tags);
  `DiaProcessor` calls it without special tokens (no bos/eos). Non-verbal tags such as
  "(laughs)" are plain text. The encoder has 1024 positions, so a prompt holds at most 1024 ids
  (upstream's tokenizer does not truncate when padding; over-long text is an error here).
- `models/dia/processing_dia.py` `DiaProcessor`: the decoder starts from one all-bos row (or bos
  + an audio prompt's codes), laid out with the delay pattern (`delayed`: channel c at row t
  holds the code of frame t - delay[c]; rows before a channel's delay are bos, rows after the
  prompt are pad = "free, predict here"); `batch_decode` reverts the delay (`undelayed`) and
  keeps the rows after the bos rows and before channel 0's eos (`codes_of`).
- `models/dia/generation_dia.py` `apply_delay_mask`: where the delayed prompt is not pad, it
  overrides the tokens fed back (and the returned sequence).

Unknown speaker tags: upstream would read "[S3]" as 4 bytes of text; Dia was trained on two
speakers only, so any `[S<n>]` other than [S1]/[S2] is an error here (DEVIATION, documented).
"""

from __future__ import annotations

import re

import numpy as np

PAD_TEXT, S1, S2 = 0, 1, 2  # DiaTokenizer's added tokens
SPEAKERS = {"[S1]": S1, "[S2]": S2}
MAX_TEXT_TOKENS = 1024  # the encoder's positions (DiaEncoderConfig.max_position_embeddings)
_TAG = re.compile(r"\[S\d+\]|<pad>")
_ANY_SPEAKER = re.compile(r"\[\s*[sS]\s*\d+\s*\]")


def check_text(text: str, limit: int = MAX_TEXT_TOKENS) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty; pass the words to speak, e.g. \"[S1] Hello. [S2] Hi!\"")
    for tag in _ANY_SPEAKER.findall(text):
        if tag not in SPEAKERS:
            raise ValueError(f"unknown speaker tag {tag!r}; Dia knows [S1] and [S2] (write "
                             "non-verbal cues as text, e.g. (laughs))")
    n = len(encode_text(text, check=False))
    if n > limit:
        raise ValueError(f"text is {n} tokens long (UTF-8 bytes, a speaker tag is one), over "
                         f"the limit of {limit} per prompt (the encoder's positions); split it "
                         "into shorter pieces and synthesize each")


def encode_text(text: str, check: bool = True) -> list[int]:
    """DiaTokenizer's ids (module docstring): [S1] -> 1, [S2] -> 2, <pad> -> 0, else bytes."""
    if check:
        check_text(text)
    out: list[int] = []
    pos = 0
    for m in _TAG.finditer(text):
        out += text[pos:m.start()].encode("utf-8")
        tag = m.group(0)
        out.append(PAD_TEXT if tag == "<pad>" else SPEAKERS.get(tag, -1))
        if out[-1] < 0:  # an unknown [S<n>] with check=False: its bytes, as upstream
            out.pop()
            out += tag.encode("utf-8")
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return out


def delayed(frames: np.ndarray, delays, bos: int, pad: int) -> np.ndarray:
    """`DiaProcessor`'s decoder input: `frames` (F, C) codes (F may be 0) -> (1 + F + D, C) with
    row 0 bos, channel c at row t = the frame t - 1 - delay[c], bos before it, pad after."""
    frames = np.asarray(frames, dtype=np.int64).reshape(-1, len(delays))
    f, c = frames.shape
    d = max(delays)
    prefill = np.full((1 + f + d, c), pad, dtype=np.int64)
    prefill[0] = bos
    prefill[1:1 + f] = frames
    out = np.empty_like(prefill)
    t = np.arange(prefill.shape[0])
    for ch, dl in enumerate(delays):
        src = t - dl
        out[:, ch] = np.where(src < 0, bos, prefill[np.clip(src, 0, None), ch])
    return out


def n_prompt_rows(delay_mask: np.ndarray, pad: int) -> int:
    """Rows given to the decoder before generation: those whose channel 0 is not pad
    (upstream `_prepare_decoder_input_ids_for_generation`'s valid input size)."""
    return int(delay_mask.shape[0] - np.sum(delay_mask[:, 0] == pad))


def masked(rows: np.ndarray, delay_mask: np.ndarray, pad: int) -> np.ndarray:
    """`apply_delay_mask`: rows (T, C) with the delayed prompt's non-pad entries forced."""
    out = np.array(rows, dtype=np.int64, copy=True)
    n = min(out.shape[0], delay_mask.shape[0])
    m = delay_mask[:n]
    out[:n] = np.where(m == pad, out[:n], m)
    return out


def undelayed(seq: np.ndarray, delays) -> np.ndarray:
    """Revert the delay: out[t, c] = seq[t + delay[c], c] (-1 past the end)."""
    seq = np.asarray(seq, dtype=np.int64)
    t = np.arange(seq.shape[0])
    out = np.full_like(seq, -1)
    for ch, dl in enumerate(delays):
        src = t + dl
        ok = src < seq.shape[0]
        out[ok, ch] = seq[src[ok], ch]
    return out


def codes_of(seq: np.ndarray, delays, bos: int, pad: int, prompt_frames: int | None = None
             ) -> np.ndarray:
    """`DiaProcessor.batch_decode`'s codes of a generated sequence (T, C) -> (C, F): rows after
    the bos rows (or after `prompt_frames` + 1 with an audio prompt) up to channel 0's eos."""
    seq = np.asarray(seq, dtype=np.int64)
    start = int(np.sum(seq[:, 0] == bos)) if prompt_frames is None else prompt_frames + 1
    end = seq.shape[0] - int(np.sum(seq[:, 0] == pad)) - 1
    return undelayed(seq, delays)[start:end].T.copy()
