"""CSM/Marvis prompts: speaker turns of text (and audio for context turns), the offline test
tokenizer, and the prompt's id layout. Pure Python + numpy (no mlx): the reference adapter and
the parity specs use it too.

Sources (read, not copied): Sesame `csm` generator.py (`_tokenize_text_segment`: the text of a
turn is `tokenizer.encode(f"[{speaker}]{text}")`, with the Llama-3 tokenizer's template
`<|begin_of_text|> ... <|end_of_text|>`; `_tokenize_audio`: the Mimi codes of a context clip,
then one end-of-audio frame of all zeros); transformers 5.24 `CsmProcessor` / `CsmForConditional
Generation._merge_input_ids_with_input_values` (the same as one id sequence: text ids,
`audio_token_id` once per audio frame, `audio_eos_token_id` for the end-of-audio frame; the
model embeds the frames there); Marvis-Labs/marvis-tts `marvis_tts/utils.py` (the same turn
format with the SmolLM2 tokenizer, bos `<|im_start|>` 1 and eos `<|im_end|>` 2).

The real tokenizers (Llama-3, SmolLM2) come only from the hub, so `encode_text` is a TEST
TOKENIZER built offline: bos, the UTF-8 bytes of `[speaker]text` as ids 0-255, eos. The special
ids are the real ones of each family (preset `tokens`), so prompts have the real layout; only the
text ids differ from a trained model's.

Speakers are integer ids (upstream's roles are stringified integers), 0 to `MAX_SPEAKER`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlx_impl.tts import check_text_bytes

MAX_SPEAKER = 99  # upstream accepts any integer role; larger ids are refused here as unknown
MAX_TEXT_BYTES = 1000  # one turn; longer text is an error (split it into sentences)
# the eos that the family's tokenizer template puts after a turn, by its bos id
EOS_OF_BOS = {128000: 128001, 1: 2}  # Llama-3 <|end_of_text|>; SmolLM2 <|im_end|> (Marvis)


@dataclass(frozen=True)
class Turn:
    """One conversation turn: `text` said by `speaker`; a context turn has its audio as codes
    (F, K) int (Mimi frames), the turn to generate has `codes=None`."""

    text: str
    speaker: int
    codes: np.ndarray | None = None


def check_text(text: str) -> None:
    check_text_bytes(text, MAX_TEXT_BYTES, "turn")


def check_speaker(speaker) -> int:
    """The speaker id as an int; anything but an integer 0..MAX_SPEAKER (or its digits) is an
    error."""
    if isinstance(speaker, str) and speaker.strip().isdigit():
        speaker = int(speaker)
    if isinstance(speaker, (bool, np.bool_)) or not isinstance(speaker, (int, np.integer)) \
            or not 0 <= speaker <= MAX_SPEAKER:
        raise ValueError(f"unknown speaker id {speaker!r}; CSM speakers are integers 0 to "
                         f"{MAX_SPEAKER} (e.g. 0 or 1)")
    return int(speaker)


def encode_text(text: str, speaker: int, bos: int) -> list[int]:
    """The TEST tokenizer (module docstring): [bos] + UTF-8 bytes of "[speaker]text" + [eos]."""
    if bos not in EOS_OF_BOS:
        raise ValueError(f"bos_token_id {bos} is not a known CSM tokenizer layout "
                         f"({sorted(EOS_OF_BOS)}: Llama-3, SmolLM2)")
    return [bos, *f"[{speaker}]{text}".encode("utf-8"), EOS_OF_BOS[bos]]


def prompt(turns: list[Turn], bos: int, audio: int, audio_eos: int,
           n_codebooks: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids (T,) int64, codes (F, K) int64): every turn's text ids, then for a context turn one
    `audio` id per frame and `audio_eos`; `codes` are the context frames in order (F may be 0).
    The last turn is the one to generate (no audio)."""
    if not turns:
        raise ValueError("no turns; pass at least the text to speak")
    ids: list[int] = []
    frames = []
    for i, turn in enumerate(turns):
        check_text(turn.text)
        speaker = check_speaker(turn.speaker)
        ids += encode_text(turn.text, speaker, bos)
        last = i == len(turns) - 1
        if last and turn.codes is not None:
            raise ValueError("the last turn is the one to generate; it has no audio")
        if not last:
            if turn.codes is None:
                raise ValueError(f"context turn {i} has no audio; a context turn is text + its "
                                 "audio (codes of shape (frames, codebooks))")
            c = np.asarray(turn.codes)
            if c.ndim != 2 or c.shape[1] != n_codebooks or c.shape[0] < 1:
                raise ValueError(f"context turn {i}: codes must be (frames >= 1, {n_codebooks}), "
                                 f"got {c.shape}")
            frames.append(c.astype(np.int64))
            ids += [audio] * c.shape[0] + [audio_eos]
    codes = np.concatenate(frames) if frames else np.zeros((0, n_codebooks), np.int64)
    return np.array(ids, np.int64), codes
