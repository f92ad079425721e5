"""OuteTTS 1.0 token ids, the prompt (interface version 3, with an optional speaker profile),
the c1/c2 pair <-> DAC codes mapping, and the offline test tokenizer. Pure Python + numpy (no
mlx), so the reference adapter and the parity spec use it too.

Sources (outetts 0.4.4 wheel, read, not copied):
- `version/v3/tokens.py` `SpecialTokens`: the token kinds `<|im_start|>` (bos), `<|im_end|>`
  (eos), `<|c1_N|>`, `<|c2_N|>`, `<|text_start|>`/`<|text_end|>`, `<|audio_start|>`/
  `<|audio_end|>`, `<|t_D.DD|>` (word duration), `<|code|>`, `<|energy_N|>`,
  `<|spectral_centroid_N|>`, `<|pitch_N|>`, `<|word_start|>`/`<|word_end|>`, `<|features|>`,
  voice characteristic / emotion / global feature brackets.
- `version/v3/prompt_processor.py`: c1 and c2 ids are N = 0..1024 (`get_audio_token_map`,
  range(1025)); the completion prompt is `"{bos}\\n{text_start}{text}{text_end}\\n{audio_start}\\n"`;
  with a speaker, the text is the speaker's transcript + separator + the text
  (`merge_speaker_text`: ". " unless it ends in . ? !, then " "), the separator is appended to
  the speaker's last word, and after the prompt come the speaker's words, one per line, each
  `<|word_start|>{word}<|features|><|t_{duration:.2f}|><|energy_E|><|spectral_centroid_S|>
  <|pitch_P|><|code|>` + `<|c1_a|><|c2_b|>` per frame + `<|word_end|>`, then `"\\n<|word_start|>"`;
  `extract_audio_from_tokens`: the output's c1 ids and c2 ids, in order, cut to the shorter.
- `version/v3/audio_processor.py`: features are scaled to 0..100 (`round(value * 100)`);
  durations `round(frames / 75, 2)` (75 codec frames per second).
- `models/config.py` `SamplerConfig` (the sampling defaults, `tts.DEFAULTS`); `max_length` 8192.
`text_normalizations` (ftfy, NFKC, quote/dash folding) is not ported: text is used as given,
after whitespace folding (DEVIATION, documented; the test tokenizer makes ids of bytes anyway).

TEST TOKEN LAYOUT: OuteTTS's tokenizer.json (Llama-3 BPE + its added tokens) comes only from the
hub, so the ids here are NOT the real model's: Llama-3's 128256 text ids are kept as the base
(text = UTF-8 bytes as ids 0-255, not Llama-3's BPE merges), and the added tokens follow from
128256 in the order below (specials, c1_0..c1_1024, c2_0..c2_1024, t_0.00..t_10.00, energy /
spectral_centroid / pitch 0..100). The prompt grammar and token kinds are the real ones.
"""

from __future__ import annotations

import numpy as np

# the same text checks as Orpheus (empty text, over 2000 UTF-8 bytes per prompt)
from mlx_impl.orpheus.tokens import MAX_TEXT_BYTES, check_text  # noqa: F401

TEXT_VOCAB = 128256  # Llama-3's text + reserved special ids
SPECIALS = ("im_start", "im_end", "text_start", "text_end", "voice_characteristic_start",
            "voice_characteristic_end", "emotion_start", "emotion_end", "audio_start",
            "audio_end", "code", "word_start", "word_end", "features", "global_features_start",
            "global_features_end")
SPECIAL = {name: TEXT_VOCAB + i for i, name in enumerate(SPECIALS)}
BOS, EOS = SPECIAL["im_start"], SPECIAL["im_end"]
N_CODE_TOKENS = 1025  # c1_0..c1_1024 (prompt_processor range(1025))
C1_0 = TEXT_VOCAB + len(SPECIALS)
C2_0 = C1_0 + N_CODE_TOKENS
TIME_0 = C2_0 + N_CODE_TOKENS  # <|t_0.00|>, step 0.01
N_TIME = 1001  # t_0.00 .. t_10.00
FEATURES = ("energy", "spectral_centroid", "pitch")
FEATURE_0 = {name: TIME_0 + N_TIME + i * 101 for i, name in enumerate(FEATURES)}
VOCAB_SIZE = TIME_0 + N_TIME + 3 * 101
NEWLINE = 10  # "\n" in the test tokenizer
CODEBOOK_SIZE = 1024  # DAC codes; c*_1024 exists as a token but is no DAC code
FRAME = 2  # tokens per codec frame: c1, c2
STOP = EOS  # generation stops at the tokenizer's eos (transformers generate's default)


def encode_text(text: str) -> list[int]:
    """The TEST tokenizer: UTF-8 bytes as ids (module docstring)."""
    return list(text.encode("utf-8"))


def _feature(name: str, value) -> int:
    v = int(value)
    if not 0 <= v <= 100:
        raise ValueError(f"speaker feature {name}={value} is outside 0..100")
    return FEATURE_0[name] + v


def _time(duration) -> int:
    n = int(round(float(duration) * 100))
    if not 0 <= n < N_TIME:
        raise ValueError(f"word duration {duration} s is outside 0.00..10.00")
    return TIME_0 + n


def check_speaker(speaker) -> None:
    if not isinstance(speaker, dict) or not isinstance(speaker.get("text"), str) \
            or not speaker.get("words"):
        raise ValueError("a speaker profile is a dict with 'text' (its transcript) and 'words' "
                         "(each with word, duration, c1, c2, features), as outetts "
                         "create_speaker writes")
    for w in speaker["words"]:
        if len(w["c1"]) != len(w["c2"]):
            raise ValueError(f"speaker word {w['word']!r} has {len(w['c1'])} c1 and "
                             f"{len(w['c2'])} c2 codes; they must pair up")


def merge_speaker_text(text: str, speaker_text: str) -> tuple[str, str]:
    """(speaker transcript + separator + text, the separator stripped) as outetts'
    `merge_speaker_text` for Latin-script transcripts (module docstring)."""
    s = speaker_text.strip()
    sep = ""
    if s:
        sep = " " if s[-1] in ".?!" else ". "
    return s + sep + text.strip(), sep.strip()


def word_ids(word: dict, suffix: str = "") -> list[int]:
    f = word.get("features", {})
    ids = [SPECIAL["word_start"], *encode_text(word["word"] + suffix), SPECIAL["features"],
           _time(word["duration"])]
    ids += [_feature(name, f.get(name, 0)) for name in FEATURES]
    ids.append(SPECIAL["code"])
    for a, b in zip(word["c1"], word["c2"]):
        ids += [C1_0 + int(a), C2_0 + int(b)]
    return [*ids, SPECIAL["word_end"]]


def prompt_ids(text: str, speaker: dict | None = None) -> list[int]:
    """The completion prompt (prompt_processor `get_completion_prompt`, module docstring)."""
    check_text(text)
    text = " ".join(text.split())
    sep = ""
    if speaker is not None:
        check_speaker(speaker)
        text, sep = merge_speaker_text(text, speaker["text"])
    ids = [BOS, NEWLINE, SPECIAL["text_start"], *encode_text(text), SPECIAL["text_end"], NEWLINE,
           SPECIAL["audio_start"], NEWLINE]
    if speaker is not None:
        words = speaker["words"]
        for i, w in enumerate(words):
            if i:
                ids.append(NEWLINE)
            ids += word_ids(w, sep if i == len(words) - 1 else "")
        ids += [NEWLINE, SPECIAL["word_start"]]
    return ids


def tokens_to_codes(tokens) -> np.ndarray:
    """Generated ids -> DAC codes (2, T) int32: the c1 ids and the c2 ids in order, cut to the
    shorter (`extract_audio_from_tokens`); other ids are skipped. A code 1024 (a token without a
    DAC code) is an error."""
    ids = np.asarray(tokens, dtype=np.int64).reshape(-1)
    c1 = ids[(ids >= C1_0) & (ids < C1_0 + N_CODE_TOKENS)] - C1_0
    c2 = ids[(ids >= C2_0) & (ids < C2_0 + N_CODE_TOKENS)] - C2_0
    t = min(c1.size, c2.size)
    codes = np.stack([c1[:t], c2[:t]]).astype(np.int32)
    if (codes >= CODEBOOK_SIZE).any():
        raise ValueError(f"code token {CODEBOOK_SIZE} has no DAC code (codes are 0.."
                         f"{CODEBOOK_SIZE - 1})")
    return codes


def codes_to_tokens(codes) -> np.ndarray:
    """DAC codes (2, T) -> interleaved ids c1, c2, c1, c2, ... (2 T,) int64."""
    c = np.asarray(codes, dtype=np.int64)
    if c.ndim != 2 or c.shape[0] != 2:
        raise ValueError(f"OuteTTS uses 2 DAC codebooks; codes must be (2, T), got {c.shape}")
    return np.stack([c[0] + C1_0, c[1] + C2_0], axis=1).reshape(-1)


def audio_token_range(position: int) -> tuple[int, int]:
    """[lo, hi) of the DAC-code token ids at frame position 0 (c1) or 1 (c2)."""
    lo = (C1_0, C2_0)[position]
    return lo, lo + CODEBOOK_SIZE
