"""CSM's generation loop: prompt -> Mimi frames, one backbone step and K - 1 depth-decoder
steps per frame, until an end-of-audio frame or `max_tokens` frames.

Upstream: transformers 5.24 `models/csm/generation_csm.py` (`CsmGenerationMixin._sample`):
1. prefill the backbone with the prompt embeddings; each later step feeds the last frame
   (the sum of its codebook embeddings); codebook 0 is drawn from `lm_head` of the last normed
   state with the backbone's processors;
2. the depth decoder `generate`s K - 1 codes with a fresh cache from [state, code 0], with its
   own processors (`depth_decoder_*` generation options);
3. stop when the last frame's codebooks 0..K-2 all equal `codebook_eos_token_id` (0) (upstream
   checks `frame[:-1]`, not the last codebook), or after `max_tokens` frames (`max_new_tokens`);
4. audio (`generate(output_audio=True)`): the frames before the first frame whose K codes are
   ALL 0 are decoded by the codec (`Generation.audio_frames`).
Sampling defaults (tts.py): the same options for both heads, as sesame/csm-1b's
generation_config.json sets `temperature` and `depth_decoder_temperature` alike.

Here each draw goes: logits -> the CODEC MASK -> `SamplingOptions` sampler
(`layers.sampling.make_sampler`: temperature, top-k, top-p, min-p, then the draw with the
injected noise; greedy at temperature 0). DEVIATION: the codec mask sets the ids a codec cannot
decode (>= Mimi's codebook_size: 2048..2050 of 2051) to -inf at every draw; upstream does not
mask (a trained model does not emit them; a random-weight model would, and Mimi could not
decode the frame). The reference applies the same mask as a transformers logits processor.
Repetition penalty is refused: upstream would apply it over the frames' ids, which no CSM
default uses.
Noise: `noise(step, shape) -> np.ndarray` with step = frame * K + codebook, by default
`draw_noise(default_rng(seed), draw, shape)` once per sampled draw in that order, so the
reference drawing from the same seed picks the same codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_impl.layers.sampling import draw_noise, make_sampler
from mlx_impl.tts import SamplingOptions

Noise = Callable[[int, tuple], np.ndarray]


@dataclass(frozen=True)
class Generation:
    frames: np.ndarray  # (n, K) every generated frame, the end-of-audio frame included
    stop: str  # "end_of_audio" or "max_tokens"
    eos: int = 0  # codebook_eos_token_id

    @property
    def audio_frames(self) -> np.ndarray:
        """The frames the codec decodes: those before the first all-`eos` frame (upstream
        `generate(output_audio=True)`)."""
        done = np.flatnonzero((self.frames == self.eos).all(axis=1))
        return self.frames[: done[0]] if done.size else self.frames


def is_end_frame(frame, eos: int = 0) -> bool:
    """Upstream's stop test: codebooks 0..K-2 of the frame all equal `eos`."""
    return bool((np.asarray(frame)[:-1] == eos).all())


def seeded_noise(seed: int, draw: str) -> Noise:
    rng = np.random.default_rng(seed)
    return lambda step, shape: draw_noise(rng, draw, shape)


def check_options(options: SamplingOptions) -> None:
    if options.repetition_penalty != 1.0:
        raise ValueError("repetition_penalty is not supported by CSM generation (upstream's "
                         "defaults do not use it); leave it at 1")
    if options.cfg_scale != 1.0:
        raise ValueError("classifier-free guidance is not part of CSM; leave cfg_scale at 1")


def check_fits(model, n_prompt: int, max_frames: int) -> None:
    limit = model.config.max_position_embeddings
    if n_prompt + max_frames > limit:
        raise ValueError(f"prompt ({n_prompt} positions) + max_tokens ({max_frames} frames) "
                         f"exceeds the model's {limit} positions; shorten the text or the "
                         "context, or lower max_tokens")


def codec_mask(model) -> mx.array:
    """(V,) bool: the ids the codec can decode (module docstring)."""
    allowed = np.zeros(model.config.vocab_size, dtype=bool)
    allowed[: model.config.codebook_size] = True
    return mx.array(allowed)


def iter_frames(model, ids: np.ndarray, codes: np.ndarray, options: SamplingOptions,
                seed: int = 0, noise: Noise | None = None) -> Iterator[np.ndarray]:
    """Generated frames (K,) int64 one at a time, the end-of-audio frame last when it comes.
    The prompt (ids with audio placeholders, context codes (F, K): tokens.prompt) and the
    options are checked before the first step."""
    check_options(options)
    check_fits(model, len(ids), options.max_tokens)
    x = model.embed_prompt(ids, codes)
    return _frames(model, x, options, noise or seeded_noise(seed, options.draw))


def _frames(model, x: mx.array, options: SamplingOptions, noise: Noise) -> Iterator[np.ndarray]:
    cfg = model.config
    k_total, eos = cfg.num_codebooks, cfg.codebook_eos_token_id
    sampler = make_sampler(options)
    allowed = codec_mask(model)
    minus_inf = mx.array(-mx.inf, mx.float32)
    sampled = options.temperature > 0

    def pick(logits: mx.array, step: int) -> int:
        logits = mx.where(allowed, logits, minus_inf)
        n = noise(step, tuple(logits.shape)) if sampled else None
        return int(sampler(logits, None if n is None else mx.array(n))[0])

    cache = model.new_cache()
    h = model.backbone(x, cache)[:, -1]  # (1, C) normed state of the last position
    for f in range(options.max_tokens):
        step = f * k_total
        frame = [pick(model.logits0(h), step)]
        dcache = model.depth_decoder.model.new_cache()
        dx = mx.concatenate([h[:, None], model.depth_inputs(mx.array([[frame[0]]]), 1)], axis=1)
        logits = model.depth(dx, dcache, 0)[:, -1]
        for k in range(1, k_total):
            frame.append(pick(logits, step + k))
            if k + 1 < k_total:
                logits = model.depth(model.depth_inputs(mx.array([[frame[k]]]), k + 1),
                                     dcache, k + 1)[:, -1]
        out = np.array(frame, np.int64)
        yield out
        if is_end_frame(out, eos):
            return
        if f + 1 < options.max_tokens:
            h = model.backbone(model.embed_frames(mx.array(out[None, None].astype(np.int32))),
                               cache)[:, -1]


def generate(model, ids: np.ndarray, codes: np.ndarray, options: SamplingOptions,
             seed: int = 0, noise: Noise | None = None,
             on_frame: Callable[[int, np.ndarray], None] | None = None) -> Generation:
    """Every frame of `iter_frames`; `on_frame(index, frame)` after each."""
    frames = []
    for i, frame in enumerate(iter_frames(model, ids, codes, options, seed, noise)):
        frames.append(frame)
        if on_frame is not None:
            on_frame(i, frame)
    eos = model.config.codebook_eos_token_id
    stop = "end_of_audio" if frames and is_end_frame(frames[-1], eos) else "max_tokens"
    k = model.config.num_codebooks
    return Generation(np.array(frames, np.int64).reshape(-1, k), stop, eos)
