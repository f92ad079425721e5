"""OuteTTS's generation loop: prompt -> c1/c2 code tokens until the eos token.

Upstream (outetts 0.4.4 `models/hf_model.py`): transformers `generate` with
temperature 0.4, top-k 40, top-p 0.9, min-p 0.05 and a repetition penalty of 1.1 over the last
64 ids only (`RepetitionPenaltyLogitsProcessorPatch`, patched over transformers'
`RepetitionPenaltyLogitsProcessor`; `models/config.py` `SamplerConfig`), in transformers'
order: penalty, temperature, top-k, top-p, min-p; it stops at the tokenizer's eos.

Here: the shared loop of `mlx_impl.orpheus.generate.iter_tokens` (the KV-cached LM, the
`SamplingOptions` processors incl. `repetition_window` = 64, the injected-noise sampler) with
OuteTTS's grammar mask. DEVIATION, as Orpheus's: upstream does not mask; a trained model writes
words, durations, features and c1/c2 pairs by itself, a random-weight model would not, so only
the 1024 c1 ids are allowed at even steps (plus eos, a frame boundary) and the 1024 c2 ids at
odd steps: every generated pair is a decodable DAC frame. Upstream's extraction
(`extract_audio_from_tokens`) skips the non-code tokens a trained model also emits, so the
audio of a masked stream is what upstream would decode from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_impl.orpheus.generate import Noise, collect, grammar_masks
from mlx_impl.orpheus.generate import iter_tokens as _iter_tokens
from mlx_impl.outetts import tokens as T
from mlx_impl.tts import SamplingOptions


@dataclass(frozen=True)
class Generation:
    tokens: np.ndarray  # (n,) every generated id, eos included when it came
    stop: str  # "eos" or "max_tokens"

    @property
    def codes(self) -> np.ndarray:
        """DAC codes (2, T): whole c1/c2 pairs only (`tokens.tokens_to_codes`)."""
        return T.tokens_to_codes(self.tokens)


def audio_masks(vocab_size: int) -> list[mx.array]:
    """(vocab,) bool for frame positions 0 (c1 or eos) and 1 (c2) (module docstring)."""
    return grammar_masks(vocab_size, [T.audio_token_range(p) for p in range(T.FRAME)], T.STOP)


def iter_tokens(lm, prompt: list[int], options: SamplingOptions, seed: int = 0,
                noise: Noise | None = None) -> Iterator[int]:
    return _iter_tokens(lm, prompt, options, seed, noise, audio_masks(lm.config.vocab_size),
                        T.STOP)


def generate(lm, prompt: list[int], options: SamplingOptions, seed: int = 0,
             noise: Noise | None = None,
             on_token: Callable[[int, int], None] | None = None) -> Generation:
    """Generate from `prompt` (`tokens.prompt_ids`); `on_token(step, id)` after each."""
    out = collect(iter_tokens(lm, prompt, options, seed, noise), on_token)
    stop = "eos" if out and out[-1] == T.STOP else "max_tokens"
    return Generation(np.array(out, dtype=np.int64), stop)
