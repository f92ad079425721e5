"""Token sampling for the generation loops: logits processors, warpers and the draw, with the
randomness passed in.

Semantics: transformers 5.24.0 `generation/logits_process.py`, function by function:
`repetition_penalty` = `RepetitionPenaltyLogitsProcessor` (over the whole history, or the last
`window` tokens), `temperature` = `TemperatureLogitsWarper`, `top_k` = `TopKLogitsWarper`,
`top_p` = `TopPLogitsWarper`, `min_p` = `MinPLogitsWarper` (all with `min_tokens_to_keep=1` and
`filter_value=-inf`), `guidance` = `ClassifierFreeGuidanceLogitsProcessor`, `guidance_dia` =
`DiaClassifierFreeGuidanceLogitsProcessor`. `make_sampler` chains them in transformers' order
(processors, then temperature, top-k, top-p, min-p) as mlx-lm's `sample_utils` does, and draws.

The draw takes its noise as an argument, so a reference that draws from the same noise picks the
same token (`torch.multinomial` cannot be replayed):
- "gumbel": noise g (..., V); token = argmax(logits / T + g). The filtered logits, the division
  and the add are each correctly rounded, so two implementations with the same filter masks add
  identical floats and pick identical tokens.
- "uniform": noise u (...,) in [0, 1); inverse CDF over the filtered distribution in vocabulary
  order: the first token whose cumulative probability exceeds u x total. Here softmax rounding
  (1 ulp between implementations) can move a boundary, so a u within ~1e-7 of one may pick the
  neighbour; prefer "gumbel" where identical tokens matter.
- temperature 0: greedy (argmax, first index on ties); the warpers are skipped, as transformers
  does without `do_sample`.
`draw_noise(rng, draw, shape)` makes either from a seeded numpy generator (Gumbel costs V numbers
per row and step: 8 ms at V = 157k here; uniform one number).

Layout: logits (..., V) float; history (..., L) int token ids, rows matching the logits' rows.

Known differences from transformers (measured in tests/test_layers_sampling.py):
- Ties that straddle the top-p boundary: transformers removes tied tokens in `torch.sort`'s
  order, which is stable up to 16 entries and implementation-defined above; ours is always
  stable (the lower index of a tie is removed first). The number of tokens kept is the same.
- top-p's and min-p's probabilities come from our softmax, which can differ from torch's by an
  ulp: a token whose cumulative probability is within that of the threshold can flip.
- `guidance_dia(top_k=)` keeps exactly k tokens; which members of a tie at the k-th value are
  kept is implementation-defined on both sides (`torch.topk`, `mx.argpartition`).
"""

from __future__ import annotations

from typing import Callable

import mlx.core as mx
import numpy as np

from mlx_impl.layers.activations import softmax

DRAWS = ("gumbel", "uniform")
Processor = Callable[[mx.array, mx.array], mx.array]  # (history, logits) -> logits
Sampler = Callable[[mx.array, "mx.array | None"], mx.array]  # (logits, noise) -> tokens


def _cumsum(p: mx.array) -> mx.array:
    """Cumulative sum over the last axis, accumulated in float64 and rounded once per entry, as
    torch's CPU cumsum does for float32 (a float32 running sum drifts: 1 + 1000 x 1e-8 stays 1).
    Runs on the CPU stream, where MLX has float64, whatever the default device."""
    return mx.cumsum(p.astype(mx.float64, stream=mx.cpu), axis=-1, stream=mx.cpu).astype(
        mx.float32, stream=mx.cpu)


def _filter(logits: mx.array, remove: mx.array) -> mx.array:
    return mx.where(remove, mx.array(-mx.inf, logits.dtype), logits)


def repetition_penalty(logits: mx.array, history: mx.array | None, penalty: float,
                       window: int = 0) -> mx.array:
    """Seen tokens' logits divided by `penalty` where >= 0, multiplied where < 0; each token at
    most once. history (..., L) int; `window` > 0: only its last `window` tokens count. Ids
    >= V are ignored (upstream's rule for embeddings larger than the head)."""
    if penalty <= 0:
        raise ValueError(f"repetition penalty must be > 0, got {penalty}")
    if window < 0:
        raise ValueError(f"window must be >= 0 (0: the whole history), got {window}")
    if penalty == 1.0 or history is None or history.shape[-1] == 0:
        return logits
    if history.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"history {history.shape} and logits {logits.shape} must share their "
                         "leading (batch) axes; pass one row of token ids per row of logits")
    if window:
        history = history[..., -window:]
    v = logits.shape[-1]
    ids = mx.minimum(history.astype(mx.int32), v)  # out-of-head ids land in a dropped column
    seen = mx.zeros((*logits.shape[:-1], v + 1), dtype=mx.bool_)
    seen = mx.put_along_axis(seen, ids, mx.array(True), axis=-1)[..., :v]
    penalized = mx.where(logits < 0, logits * penalty, logits / penalty)
    return mx.where(seen, penalized, logits)


def temperature(logits: mx.array, t: float) -> mx.array:
    if t <= 0:
        raise ValueError(f"temperature must be > 0 here, got {t}; temperature 0 is greedy "
                         "(make_sampler handles it)")
    return logits if t == 1.0 else logits / t


def top_k(logits: mx.array, k: int) -> mx.array:
    """Keep the k largest logits, and every logit tied with the k-th (k <= 0: off)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = mx.min(mx.topk(logits, k, axis=-1), axis=-1, keepdims=True)
    return _filter(logits, logits < kth)


def top_p(logits: mx.array, p: float) -> mx.array:
    """Nucleus: in ascending order, drop the tokens whose cumulative probability is <= 1 - p;
    the most likely token always stays (p >= 1: off)."""
    if not 0 <= p <= 1:
        raise ValueError(f"top_p must be in [0, 1], got {p}")
    if p >= 1.0:
        return logits
    order = mx.argsort(logits, axis=-1)  # ascending, stable on MLX's CPU (tested); GPU unverified
    ascending = mx.take_along_axis(logits, order, axis=-1)
    cum = _cumsum(softmax(ascending.astype(mx.float32), axis=-1))
    drop = cum <= (1.0 - p)  # float32 threshold, as torch compares with a Python float
    last = mx.arange(logits.shape[-1]) == logits.shape[-1] - 1
    drop = drop & ~last
    remove = mx.put_along_axis(mx.zeros(drop.shape, dtype=mx.bool_), order, drop, axis=-1)
    return _filter(logits, remove)


def min_p(logits: mx.array, p: float) -> mx.array:
    """Drop tokens whose probability is below p x the top probability (p = 0: off)."""
    if not 0 <= p <= 1:
        raise ValueError(f"min_p must be in [0, 1], got {p}")
    if p == 0:
        return logits
    probs = softmax(logits.astype(mx.float32), axis=-1)
    return _filter(logits, probs < p * mx.max(probs, axis=-1, keepdims=True))


def guidance(cond: mx.array, uncond: mx.array, scale: float) -> mx.array:
    """Classifier-free guidance: uncond + (cond - uncond) * scale (scale 1: cond)."""
    return uncond + (cond - uncond) * scale


def guidance_dia(cond: mx.array, uncond: mx.array, scale: float,
                 top_k: int | None = None) -> mx.array:
    """Dia's guidance: cond + (cond - uncond) * scale; with `top_k`, the *conditional* logits at
    the k largest guided logits, -inf elsewhere."""
    guided = cond + (cond - uncond) * scale
    if top_k is None or top_k >= cond.shape[-1]:
        return guided
    if top_k < 1:
        raise ValueError(f"guidance top_k must be >= 1 or None, got {top_k}")
    best = mx.argpartition(-guided, top_k - 1, axis=-1)[..., :top_k]
    keep = mx.put_along_axis(mx.zeros(cond.shape, dtype=mx.bool_), best, mx.array(True), axis=-1)
    return _filter(cond, ~keep)


def draw_noise(rng: np.random.Generator, draw: str, shape: tuple[int, ...]) -> np.ndarray:
    """Noise for one draw over logits of `shape` (..., V), float32: Gumbel(0, 1) of `shape`, or
    uniform [0, 1) of `shape[:-1]`. Give the same array to the reference and to `sample`."""
    if draw == "gumbel":
        return rng.gumbel(size=shape).astype(np.float32)
    if draw == "uniform":
        return rng.random(size=shape[:-1], dtype=np.float32)
    raise ValueError(f"draw must be one of {DRAWS}, got {draw!r}")


def sample(logits: mx.array, noise: mx.array | None, t: float = 1.0,
           draw: str = "gumbel") -> mx.array:
    """One token per row of `logits` (..., V) -> (...,) int32, from `noise` (module doc);
    t = 0: greedy, noise unused."""
    if t == 0:
        return mx.argmax(logits, axis=-1).astype(mx.int32)
    if noise is None:
        raise ValueError("sampling at temperature > 0 needs noise; make it with "
                         "draw_noise(rng, draw, logits.shape)")
    noise = mx.array(noise) if isinstance(noise, np.ndarray) else noise
    scaled = temperature(logits, t)
    if draw == "gumbel":
        if noise.shape != logits.shape:
            raise ValueError(f"gumbel noise must have the logits' shape {logits.shape}, got "
                             f"{noise.shape}")
        return mx.argmax(scaled + noise.astype(scaled.dtype), axis=-1).astype(mx.int32)
    if draw == "uniform":
        if noise.shape != logits.shape[:-1]:
            raise ValueError(f"uniform noise must have shape {logits.shape[:-1]} (one number "
                             f"per row), got {noise.shape}")
        cdf = _cumsum(softmax(scaled.astype(mx.float32), axis=-1))
        target = noise.astype(mx.float32)[..., None] * cdf[..., -1:]
        above = cdf > target
        # u x total rounds up to the total only when u is within an ulp of 1: then take the
        # first token that reaches the total (never a filtered one: its probability is > 0)
        first = mx.argmax(above.astype(mx.int32), axis=-1)
        return mx.where(mx.any(above, axis=-1), first, mx.argmax(cdf, axis=-1)).astype(mx.int32)
    raise ValueError(f"draw must be one of {DRAWS}, got {draw!r}")


def make_logits_processors(options) -> list[Processor]:
    """The processors `options` (a `mlx_impl.tts.SamplingOptions`) asks for, each
    `(history, logits) -> logits`, to run in list order before the sampler."""
    out: list[Processor] = []
    if options.repetition_penalty != 1.0:
        penalty, window = options.repetition_penalty, options.repetition_window
        out.append(lambda history, logits: repetition_penalty(logits, history, penalty, window))
    return out


def make_sampler(options) -> Sampler:
    """`(logits, noise) -> tokens`: temperature, top-k, top-p, min-p, then the draw `options.draw`
    (greedy at temperature 0). Classifier-free guidance combines two logit sets and is the
    generation loop's call (`guidance` / `guidance_dia`) before the processors."""
    t, k, p, mp, draw = (options.temperature, options.top_k, options.top_p, options.min_p,
                         options.draw)

    def sampler(logits: mx.array, noise: mx.array | None) -> mx.array:
        if t == 0:
            return sample(logits, None, 0.0)
        x = min_p(top_p(top_k(temperature(logits, t), k), p), mp)
        return sample(x, noise, 1.0, draw)

    return sampler
