"""Spark-TTS's generation loop: prompt -> (global and) semantic tokens until `<|im_end|>`.

Upstream (spark-tts-lib 0.2.1 `SparkTTS.inference`): transformers `generate(do_sample=True,
temperature=0.8, top_k=50, top_p=0.95, max_new_tokens=3000)`, processors in transformers'
order (temperature, top-k, top-p), stop at the eos; the semantic ids (and in control mode the
global ids) are read back from the generated text by regex (`tokens.parse`).

Here: the shared loop of `mlx_impl.orpheus.generate.iter_tokens` (KV-cached LM, `SamplingOptions`
processors, the injected-noise sampler: the reference adapter draws the same Gumbel noise) with
Spark's grammar mask. DEVIATION, as Orpheus's: upstream does not mask; a trained model writes the
token kinds by itself, a random-weight model would not, so in voice-cloning mode only the 8192
semantic ids and the eos are allowed, and in control mode the first 32 steps allow only the
4096 global ids (the trained model writes them, between `<|start_global_token|>` and
`<|end_global_token|>` markers that the regex skips), then semantic ids and the eos.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_impl.orpheus.generate import Noise, collect, iter_tokens
from mlx_impl.spark import tokens as T
from mlx_impl.tts import SamplingOptions

DEFAULTS = dict(temperature=0.8, top_k=50, top_p=0.95)  # SparkTTS.inference


@dataclass(frozen=True)
class Generation:
    tokens: np.ndarray  # (n,) every generated id, the eos included when it came
    stop: str  # "eos" or "max_tokens"

    @property
    def semantic(self) -> np.ndarray:
        return T.parse(self.tokens)[0]

    @property
    def global_codes(self) -> np.ndarray:
        return T.parse(self.tokens)[1]


def masks(vocab_size: int, control: bool, max_tokens: int) -> list[mx.array]:
    """(vocab,) bool per step (module docstring); cycled by the loop, so control mode lists one
    per step."""
    sem = np.zeros(vocab_size, dtype=bool)
    sem[T.SEMANTIC_0:T.SEMANTIC_0 + T.N_SEMANTIC] = True
    sem[T.EOS] = True
    sem_m = mx.array(sem)
    if not control:
        return [sem_m]
    glo = np.zeros(vocab_size, dtype=bool)
    glo[T.GLOBAL_0:T.GLOBAL_0 + T.N_GLOBAL] = True
    glo_m = mx.array(glo)
    n = max(max_tokens, T.N_GLOBAL_TOKENS + 1)
    return [glo_m] * T.N_GLOBAL_TOKENS + [sem_m] * (n - T.N_GLOBAL_TOKENS)


def generate(lm, prompt: list[int], options: SamplingOptions, control: bool = False,
             seed: int = 0, noise: Noise | None = None,
             on_token: Callable[[int, int], None] | None = None) -> Generation:
    """Generate from `prompt` (`tokens.clone_prompt` / `control_prompt`)."""
    if control and options.max_tokens <= T.N_GLOBAL_TOKENS:
        raise ValueError(f"control mode writes {T.N_GLOBAL_TOKENS} global tokens first; "
                         f"max_tokens={options.max_tokens} leaves no room for speech")
    steps = iter_tokens(lm, prompt, options, seed, noise,
                        masks(lm.config.vocab_size, control, options.max_tokens), T.EOS)
    out = collect(steps, on_token)
    stop = "eos" if out and out[-1] == T.EOS else "max_tokens"
    return Generation(np.array(out, dtype=np.int64), stop)
