"""Spark-TTS prompt tokens and the offline test tokenizer. Pure Python + numpy (no mlx), so the
reference adapter and the parity spec use it too.

Source (read, not copied): spark-tts-lib 0.2.1 `SparkTTS.py` (`process_prompt`,
`process_prompt_control`, `inference`) and `utils/token_parser.py` (`TASK_TOKEN_MAP`,
`LEVELS_MAP`, `GENDER_MAP`):
- voice cloning: `<|task_tts|><|start_content|>{text}<|end_content|><|start_global_token|>`
  + 32 x `<|bicodec_global_{g}|>` + `<|end_global_token|>`; with the clip's transcript,
  `{prompt_text}{text}` as content and `<|start_semantic_token|>` + the clip's semantic tokens
  `<|bicodec_semantic_{s}|>` appended;
- control (voice creation): `<|task_controllable_tts|><|start_content|>{text}<|end_content|>
  <|start_style_label|><|gender_{g}|><|pitch_label_{p}|><|speed_label_{s}|><|end_style_label|>`,
  gender female 0 / male 1, levels very_low 0 .. very_high 4; the model then writes the 32
  global tokens itself before the semantic ones;
- generation stops at the tokenizer's eos (Qwen2.5's `<|im_end|>`); the semantic (and, in
  control mode, global) ids are read back from the generated tokens.

The real tokenizer (Qwen2.5's BPE + Spark's added tokens) only comes from the hub, so this is a
TEST TOKEN LAYOUT built offline: the UTF-8 bytes of the text as ids 0-255 (not Qwen's BPE),
then every special token above by its real name, then the 4096 global and 8192 semantic tokens.
The prompt grammar and the token kinds are the real ones; the ids are not Qwen's.
"""

from __future__ import annotations

import re

import numpy as np

TASKS = ("vc", "tts", "asr", "s2s", "t2s", "understand", "cap", "controllable_tts",
         "prompt_tts", "edit")
LEVELS = {"very_low": 0, "low": 1, "moderate": 2, "high": 3, "very_high": 4}
GENDERS = {"female": 0, "male": 1}
N_GLOBAL = 4096  # 4^6 FSQ codes
N_SEMANTIC = 8192  # the factorised VQ's codebook
N_GLOBAL_TOKENS = 32  # global tokens per utterance
MAX_TEXT_BYTES = 2000

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>",
            *(f"<|task_{t}|>" for t in TASKS),
            "<|start_content|>", "<|end_content|>", "<|start_global_token|>",
            "<|end_global_token|>", "<|start_semantic_token|>", "<|end_semantic_token|>",
            "<|start_style_label|>", "<|end_style_label|>",
            *(f"<|gender_{i}|>" for i in range(2)), *(f"<|pitch_label_{i}|>" for i in range(5)),
            *(f"<|speed_label_{i}|>" for i in range(5)))
SPECIAL_IDS = {name: 256 + i for i, name in enumerate(SPECIALS)}
GLOBAL_0 = 256 + len(SPECIALS)  # <|bicodec_global_0|>
SEMANTIC_0 = GLOBAL_0 + N_GLOBAL  # <|bicodec_semantic_0|>
VOCAB = SEMANTIC_0 + N_SEMANTIC  # ids the layout uses (a model's vocab_size may be larger)
EOS = SPECIAL_IDS["<|im_end|>"]


def sid(name: str) -> int:
    return SPECIAL_IDS[name]


def check_text(text: str, what: str = "text") -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"the {what} is empty; pass some words to speak")
    n = len(text.encode("utf-8"))
    if n > MAX_TEXT_BYTES:
        raise ValueError(f"the {what} has {n} UTF-8 bytes, more than {MAX_TEXT_BYTES}; split it "
                         "into sentences")


def encode_text(text: str) -> list[int]:
    """The TEST tokenizer (module docstring): the UTF-8 bytes."""
    return list(text.encode("utf-8"))


def global_ids(codes) -> list[int]:
    c = np.asarray(codes, np.int64).reshape(-1)
    if c.size != N_GLOBAL_TOKENS or c.min() < 0 or c.max() >= N_GLOBAL:
        raise ValueError(f"expected {N_GLOBAL_TOKENS} global tokens in [0, {N_GLOBAL}), got "
                         f"{c.size} in [{c.min() if c.size else '-'}, "
                         f"{c.max() if c.size else '-'}]")
    return [GLOBAL_0 + int(g) for g in c]


def semantic_ids(codes) -> list[int]:
    c = np.asarray(codes, np.int64).reshape(-1)
    if c.size and (c.min() < 0 or c.max() >= N_SEMANTIC):
        raise ValueError(f"semantic tokens must lie in [0, {N_SEMANTIC})")
    return [SEMANTIC_0 + int(s) for s in c]


def clone_prompt(text: str, global_codes, prompt_text: str | None = None,
                 semantic_codes=None) -> list[int]:
    """Voice-cloning prompt ids (`process_prompt`); with `prompt_text`, the clip's semantic
    tokens follow (`semantic_codes` required)."""
    check_text(text)
    ids = [sid("<|task_tts|>"), sid("<|start_content|>")]
    if prompt_text is not None:
        check_text(prompt_text, "prompt text")
        if semantic_codes is None:
            raise ValueError("prompt_text needs the clip's semantic tokens (semantic_codes)")
        ids += encode_text(prompt_text)
    ids += encode_text(text) + [sid("<|end_content|>"), sid("<|start_global_token|>")]
    ids += global_ids(global_codes) + [sid("<|end_global_token|>")]
    if prompt_text is not None:
        ids += [sid("<|start_semantic_token|>")] + semantic_ids(semantic_codes)
    return ids


def control_prompt(text: str, gender: str, pitch: str, speed: str) -> list[int]:
    """Voice-creation prompt ids (`process_prompt_control`)."""
    check_text(text)
    for what, value, known in (("gender", gender, GENDERS), ("pitch", pitch, LEVELS),
                               ("speed", speed, LEVELS)):
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; use one of {sorted(known)}")
    return [sid("<|task_controllable_tts|>"), sid("<|start_content|>"), *encode_text(text),
            sid("<|end_content|>"), sid("<|start_style_label|>"),
            sid(f"<|gender_{GENDERS[gender]}|>"), sid(f"<|pitch_label_{LEVELS[pitch]}|>"),
            sid(f"<|speed_label_{LEVELS[speed]}|>"), sid("<|end_style_label|>")]


def token_text(i: int) -> str:
    """The text of one id (`tokenizer.decode` of the layout)."""
    if i < 256:
        return chr(i)
    if i < GLOBAL_0:
        return SPECIALS[i - 256]
    if i < SEMANTIC_0:
        return f"<|bicodec_global_{i - GLOBAL_0}|>"
    if i < VOCAB:
        return f"<|bicodec_semantic_{i - SEMANTIC_0}|>"
    return ""


def parse(generated) -> tuple[np.ndarray, np.ndarray]:
    """(semantic codes, global codes) read back from generated ids as upstream does: a regex
    over the decoded text (`bicodec_semantic_(\\d+)`, `bicodec_global_(\\d+)`)."""
    text = "".join(token_text(int(i)) for i in np.asarray(generated).reshape(-1))
    sem = [int(s) for s in re.findall(r"bicodec_semantic_(\d+)", text)]
    glo = [int(g) for g in re.findall(r"bicodec_global_(\d+)", text)]
    return np.array(sem, np.int64), np.array(glo, np.int64)
