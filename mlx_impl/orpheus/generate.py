"""Orpheus's generation loop: prompt -> audio tokens, 7 per SNAC frame, until end of speech.

Upstream (orpheus_tts 0.1 `engine_class.py` on vLLM; mlx-audio 0.6.2 `tts/models/llama`):
sample one token at a time with a repetition penalty over the prompt and the output, then
temperature and top-p; stop at `END_OF_SPEECH` (128258) or after `max_tokens`; the audio is the
whole frames of tokens generated after the prompt's start-of-speech.

Here, step by step (the reference adapter `reference/orpheus.py` does the same with
transformers' processors):
1. the audio-token mask: at frame position p = (audio tokens so far) % 7, only the 4096 ids of
   position p are allowed, plus `END_OF_SPEECH` at p = 0 (a frame boundary). DEVIATION: upstream
   does not mask; a trained model emits this grammar by itself (upstream's decoder drops
   anything else), a random-weight model would not, so the mask keeps every generated frame
   decodable and the 7 positions exercised. Masked logits are -inf.
2. `SamplingOptions` processors (`layers.sampling.make_logits_processors`: the repetition
   penalty over prompt + generated ids, or the last `repetition_window` of them),
3. the sampler (`layers.sampling.make_sampler`: temperature, top-k, top-p, min-p, then the draw
   with the injected noise; greedy at temperature 0).
Noise: `noise(step, shape) -> np.ndarray`, by default `draw_noise(default_rng(seed), draw,
shape)` once per sampled step, so the reference drawing from the same seed picks the same tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_impl.layers.sampling import draw_noise, make_logits_processors, make_sampler
from mlx_impl.orpheus import tokens as T
from mlx_impl.tts import SamplingOptions

Noise = Callable[[int, tuple], np.ndarray]


@dataclass(frozen=True)
class Generation:
    tokens: np.ndarray  # (n,) every generated id, the stop token included when it came
    stop: str  # "end_of_speech" or "max_tokens"

    @property
    def audio_tokens(self) -> np.ndarray:
        """The audio tokens, whole frames only (upstream `parse_output`)."""
        ids = self.tokens[self.tokens != T.END_OF_SPEECH]
        return ids[: ids.size // T.FRAME * T.FRAME]


def grammar_masks(vocab_size: int, ranges: list[tuple[int, int]], stop: int) -> list[mx.array]:
    """(vocab,) bool per frame position p: ids [lo, hi) of `ranges[p]` allowed, plus `stop` at
    p = 0 (a frame boundary)."""
    out = []
    for p, (lo, hi) in enumerate(ranges):
        allowed = np.zeros(vocab_size, dtype=bool)
        allowed[lo:hi] = True
        if p == 0:
            allowed[stop] = True
        out.append(mx.array(allowed))
    return out


def audio_masks(vocab_size: int) -> list[mx.array]:
    """(vocab,) bool per frame position: the ids allowed there (module docstring, step 1)."""
    return grammar_masks(vocab_size, [T.audio_token_range(p) for p in range(T.FRAME)],
                         T.END_OF_SPEECH)


def check_fits(lm, n_prompt: int, max_tokens: int) -> None:
    """prompt + max_tokens must fit the model's positions (a clear error otherwise)."""
    limit = lm.config.max_position_embeddings
    if n_prompt + max_tokens > limit:
        raise ValueError(f"prompt ({n_prompt} tokens) + max_tokens ({max_tokens}) exceeds the "
                         f"model's {limit} positions; shorten the text or lower max_tokens")


def seeded_noise(seed: int, draw: str) -> Noise:
    rng = np.random.default_rng(seed)
    return lambda step, shape: draw_noise(rng, draw, shape)


def iter_tokens(lm, prompt: list[int], options: SamplingOptions, seed: int = 0,
                noise: Noise | None = None, masks: list[mx.array] | None = None,
                stop: int = T.END_OF_SPEECH) -> Iterator[int]:
    """Generated ids one at a time, the last `stop` when it comes (module docstring).
    The prompt and options are checked before the first step. `masks`: the allowed ids per
    position of the audio grammar, cycled (default: Orpheus's 7, `audio_masks`); OuteTTS passes
    its own masks and stop id (mlx_impl/outetts/generate.py)."""
    if not prompt:
        raise ValueError("the prompt is empty; build it with the model's tokens.prompt_ids")
    check_fits(lm, len(prompt), options.max_tokens)
    if masks is None:
        masks = audio_masks(lm.config.vocab_size)
    return _steps(lm, prompt, options, noise or seeded_noise(seed, options.draw), masks, stop)


def _steps(lm, prompt: list[int], options: SamplingOptions, noise: Noise,
           masks: list[mx.array], stop: int) -> Iterator[int]:
    processors = make_logits_processors(options)
    sampler = make_sampler(options)
    minus_inf = mx.array(-mx.inf, mx.float32)
    cache = lm.new_cache()
    history = list(prompt)
    logits = lm.forward([prompt], cache, last_only=True)[:, -1]  # (1, V)
    for step in range(options.max_tokens):
        logits = mx.where(masks[(len(history) - len(prompt)) % len(masks)], logits, minus_inf)
        if processors:
            hist = mx.array([history], dtype=mx.int32)
            for proc in processors:
                logits = proc(hist, logits)
        n = noise(step, tuple(logits.shape)) if options.temperature > 0 else None
        token = int(sampler(logits, None if n is None else mx.array(n))[0])
        yield token
        if token == stop:
            return
        history.append(token)
        if step + 1 < options.max_tokens:
            logits = lm.forward([[token]], cache)[:, -1]


def collect(steps: Iterator[int], on_token: Callable[[int, int], None] | None) -> list[int]:
    """Every id of a token iterator, calling `on_token(step, id)` after each."""
    out: list[int] = []
    for step, token in enumerate(steps):
        out.append(token)
        if on_token is not None:
            on_token(step, token)
    return out


def generate(lm, prompt: list[int], options: SamplingOptions, seed: int = 0,
             noise: Noise | None = None,
             on_token: Callable[[int, int], None] | None = None) -> Generation:
    """Generate from `prompt` (ids, `tokens.prompt_ids`); `on_token(step, id)` after each."""
    out = collect(iter_tokens(lm, prompt, options, seed, noise), on_token)
    stop = "end_of_speech" if out and out[-1] == T.END_OF_SPEECH else "max_tokens"
    return Generation(np.array(out, dtype=np.int64), stop)
