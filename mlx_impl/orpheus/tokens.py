"""Orpheus token ids, the prompt, the 7-token frame <-> SNAC codes mapping, and the offline test
tokenizer. Pure Python + numpy (no mlx), so the reference adapter and the parity spec use it too.

Sources (read, not copied):
- orpheus_tts 0.1 (canopyai/Orpheus-TTS `orpheus_tts_pypi/orpheus_tts/engine_class.py`,
  `_format_prompt`): the prompt is `[128259] + tokenizer(f"{voice}: {text}") + [128009, 128260,
  128261, 128257]` (start of human, the text with the tokenizer's `<|begin_of_text|>` 128000,
  `<|eot_id|>`, end of human, start of AI, start of speech); without a voice the text alone.
  Its sampling defaults: temperature 0.6, top_p 0.8, repetition_penalty 1.3 (vLLM: over prompt
  and output), max_tokens 1200. Its voices: README "tara, leah, jess, leo, dan, mia, zac, zoe"
  (tara the default of `_format_prompt`).
- orpheus_tts 0.1 `decoder.py` (`turn_token_into_id`, `convert_to_audio`): `<custom_token_N>`
  is id 128256 + N; the code of the k-th audio token is `N - 10 - (k % 7) * 4096`, i.e.
  id = 128266 + p * 4096 + code for position p of the frame; a frame
  `[a0, a1, a2, a3, a4, a5, a6]` gives SNAC codebook 0 `[a0]`, codebook 1 `[a1, a4]`,
  codebook 2 `[a2, a3, a5, a6]` (12 / 24 / 47 Hz at 24 kHz, strides 4, 2, 1).
- mlx-audio 0.6.2 `mlx_audio/tts/models/llama/llama.py`: generation stops at 128258 (end of
  speech); 128262 is end of AI; `parse_output` keeps whole frames (multiples of 7) and subtracts
  128266; same frame layout (`codes_to_layers`, `encode_audio_to_codes`).

The Llama-3 tokenizer (tokenizer.json) only comes from the hub, so `encode_text` is a TEST
TOKENIZER built offline: the UTF-8 bytes of the text as ids 0-255 (not Llama-3's BPE merges),
preceded by `<|begin_of_text|>` 128000 as the real tokenizer adds it. Every special id above is
the real one, so prompts have the real layout; only the text ids differ from the real model's.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.tts import check_text_bytes

BEGIN_OF_TEXT = 128000  # Llama-3 <|begin_of_text|>
END_OF_TEXT = 128009  # Llama-3 <|eot_id|>
CUSTOM_TOKEN_0 = 128256  # <custom_token_N> = CUSTOM_TOKEN_0 + N
START_OF_SPEECH = 128257
END_OF_SPEECH = 128258  # the stop token
START_OF_HUMAN = 128259
END_OF_HUMAN = 128260
START_OF_AI = 128261
END_OF_AI = 128262
AUDIO_OFFSET = 128266  # <custom_token_10>: code 0 of frame position 0
CODEBOOK_SIZE = 4096
FRAME = 7  # audio tokens per SNAC frame
N_AUDIO_TOKENS = FRAME * CODEBOOK_SIZE
# which SNAC codebook each frame position feeds, and its index within the frame for that codebook
POSITION_CODEBOOK = (0, 1, 2, 2, 1, 2, 2)
POSITION_SLOT = (0, 0, 0, 1, 1, 2, 3)

VOICES = ("tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe")
DEFAULT_VOICE = "tara"
MAX_TEXT_BYTES = 2000  # one prompt; longer text is an error (split it into sentences)


def encode_text(text: str) -> list[int]:
    """The TEST tokenizer (module docstring): [<|begin_of_text|>] + UTF-8 bytes."""
    return [BEGIN_OF_TEXT, *text.encode("utf-8")]


def check_text(text: str) -> None:
    check_text_bytes(text, MAX_TEXT_BYTES, "prompt")


def check_voice(voice: str | None) -> None:
    if voice is not None and voice not in VOICES:
        raise ValueError(f"unknown voice {voice!r}; choose one of {', '.join(VOICES)} (or none)")


def prompt_ids(text: str, voice: str | None = DEFAULT_VOICE) -> list[int]:
    """The generation prompt (orpheus_tts `_format_prompt`, module docstring)."""
    check_text(text)
    check_voice(voice)
    spoken = f"{voice}: {text}" if voice else text
    return [START_OF_HUMAN, *encode_text(spoken), END_OF_TEXT, END_OF_HUMAN, START_OF_AI,
            START_OF_SPEECH]


def audio_token_range(position: int) -> tuple[int, int]:
    """[lo, hi) of the token ids at frame position `position` (0..6)."""
    lo = AUDIO_OFFSET + position * CODEBOOK_SIZE
    return lo, lo + CODEBOOK_SIZE


def tokens_to_codes(tokens) -> list[np.ndarray]:
    """Audio token ids (7 T,) -> SNAC codes [(1, T), (1, 2T), (1, 4T)] int32. A trailing
    partial frame is dropped (upstream keeps whole frames); an id outside its position's range is
    an error."""
    ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
    n = ids.size // FRAME
    frames = ids[: n * FRAME].reshape(n, FRAME)
    codes = frames - AUDIO_OFFSET - np.arange(FRAME) * CODEBOOK_SIZE
    bad = (codes < 0) | (codes >= CODEBOOK_SIZE)
    if bad.any():
        f, p = map(int, np.argwhere(bad)[0])
        raise ValueError(f"token {int(frames[f, p])} at frame {f}, position {p} is not an audio "
                         f"token of that position (ids {audio_token_range(p)})")
    c0 = codes[:, [0]].reshape(1, -1)
    c1 = codes[:, [1, 4]].reshape(1, -1)
    c2 = codes[:, [2, 3, 5, 6]].reshape(1, -1)
    return [c.astype(np.int32) for c in (c0, c1, c2)]


def codes_to_tokens(codes) -> np.ndarray:
    """SNAC codes [(1, T), (1, 2T), (1, 4T)] -> audio token ids (7 T,) int64."""
    c0, c1, c2 = (np.asarray(c, dtype=np.int64).reshape(-1) for c in codes)
    t = c0.size
    if c1.size != 2 * t or c2.size != 4 * t:
        raise ValueError(f"SNAC codes must have T, 2T and 4T entries, got {c0.size}, {c1.size}, "
                         f"{c2.size}")
    frames = np.stack([c0, c1[0::2], c2[0::4], c2[1::4], c1[1::2], c2[2::4], c2[3::4]], axis=1)
    return (frames + AUDIO_OFFSET + np.arange(FRAME) * CODEBOOK_SIZE).reshape(-1)
