"""The text-to-speech interface every TTS model in mlx_impl implements, and its result type.

A TTS model is built by its package's `load(path, dtype)` and composes a language model with a
codec or vocoder through `mlx_impl.codec`. Randomness is explicit: `synthesize` takes a seed,
and the generation loop draws its sampling noise from `mlx_impl.layers.sampling` with that seed,
so that the reference and the port, given the same draws, produce the same tokens.

The package also holds `models.py` (the TTS model ids and where their weights come from) and
`cli.py` (`python -m mlx_impl.tts`); this module is the protocol only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # keep the k most likely tokens (0: off)
    top_p: float = 1.0  # keep the smallest set with this much probability (1: off)
    min_p: float = 0.0  # drop tokens below min_p x the top probability (0: off)
    repetition_penalty: float = 1.0  # divide positive / multiply negative logits of seen tokens
    repetition_window: int = 0  # how many recent tokens the penalty sees (0: the whole history)
    cfg_scale: float = 1.0  # classifier-free guidance: uncond + scale * (cond - uncond) (1: off;
    #   Dia's form cond + scale * (cond - uncond): layers.sampling.guidance_dia)
    max_tokens: int = 1024  # generation stops here if no stop token came
    draw: str = "gumbel"  # the noise a draw consumes: "gumbel" (per token) or "uniform" (per row)

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")
        if self.top_k < 0 or self.repetition_window < 0 or self.max_tokens < 1:
            raise ValueError("top_k and repetition_window must be >= 0, max_tokens >= 1")
        if self.draw not in ("gumbel", "uniform"):
            raise ValueError(f"draw must be 'gumbel' or 'uniform', got {self.draw!r}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


@dataclass(frozen=True)
class Speech:
    audio: np.ndarray  # (N,) float32 mono
    sample_rate: int  # Hz
    tokens: np.ndarray | None = None  # the generated codes/tokens, where the model has them
    meta: dict = field(default_factory=dict)  # model-specific facts (stop reason, steps, ...)

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate


@runtime_checkable
class TextToSpeech(Protocol):
    sample_rate: int  # Hz of the audio out

    def synthesize(self, text: str, voice: str | Path | np.ndarray | None = None, *,
                   options: SamplingOptions | None = None, seed: int = 0) -> Speech:
        """Speak `text`: `voice` is a preset name, a model-specific voice (OuteTTS: a speaker
        profile), or for the models that clone, what their `clone(ReferenceClip)` returns
        (`mlx_impl.tts.reference_audio`); None: the model's default."""
        ...


def check_text_bytes(text: str, max_bytes: int, per: str = "prompt") -> None:
    """The checks every byte-limited TTS text gets: not empty, at most `max_bytes` UTF-8 bytes
    (`per`: what the limit applies to, for the message)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty; pass the words to speak")
    n = len(text.encode("utf-8"))
    if n > max_bytes:
        raise ValueError(f"text is {n} bytes long, over the limit of {max_bytes} bytes per "
                         f"{per}; split it into shorter pieces (e.g. sentences) and synthesize "
                         "each")
