"""Dia's generation loop: text ids -> delayed 9-channel code rows until every channel has ended.

Upstream: transformers 5.24.0 `DiaForConditionalGeneration.generate` (`generation_dia.py`,
`generation/logits_process.py`' Dia processors, `generation/utils.py` `_sample`), step by step:
1. Classifier-free guidance (`cfg_scale` > 1): the batch is [text, all-zero text] (same length);
   both rows get the same decoder rows; `layers.sampling.guidance_dia`: cond + scale x (cond -
   uncond), and with top-k the *conditional* logits at the guided top-k ids (upstream's
   `DiaClassifierFreeGuidanceLogitsProcessor(guidance_top_k=top_k)`, applied in greedy
   decoding too). `cfg_scale` 1: no uncond row; below 1 upstream refuses it, so does this.
2. EOS channel filter (`DiaEOSChannelFilterLogitsProcessor`): channel 0 may not pick ids above
   eos, channels 1.. not eos or above; a channel whose best logit is eos keeps only eos, others
   lose eos.
3. Delay-pattern EOS (`DiaEOSDelayPatternLogitsProcessor`): once channel 0's best id is eos, or
   the sequence reaches max length - max delay - 1 rows, channel c is forced to eos after its
   delay (the delayed tail); afterwards finished channels emit pad (`_sample`'s eos criteria).
4. The sampler (`layers.sampling.make_sampler`): temperature, top-k, top-p, then the draw
   (argmax of logits + injected Gumbel noise; greedy argmax at temperature 0). Upstream applies
   temperature before the EOS filter and the delay forcing after top-p; both commute with them
   (positive scaling keeps every argmax, top-k/top-p keep the best id, a forced row has one
   finite id), so the ids are the same.
Stop: when every channel has emitted eos, or at max length = prompt rows + `max_tokens` (the
length limit forces eos `max delay` rows earlier, so both coincide). `max_tokens` is upstream's
`max_new_tokens`: every generated row, the eos row and the delayed tail included.
The rows fed back are the generated ones with the delayed prompt's non-pad entries forced
(`tokens.masked`, upstream's `apply_delay_mask`): a channel reads bos until its delay has passed.

Upstream quirks kept as errors (never silently different): temperature in (0, 1) is clamped to
1 by upstream with a warning; here it is an error. Repetition penalty and min-p are not part of
Dia's sampling here (upstream would apply them to the flattened channel rows); an error.
Noise: `noise(step, (C, V))`, by default `draw_noise(default_rng(seed), "gumbel", shape)` once
per step at temperature > 0 (every channel, finished ones too, as upstream draws for all rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_impl.dia import tokens as T
from mlx_impl.layers.sampling import draw_noise, guidance_dia, make_sampler
from mlx_impl.tts import SamplingOptions

Noise = Callable[[int, tuple], np.ndarray]


@dataclass(frozen=True)
class Generation:
    sequence: np.ndarray  # (T, C) decoder rows, prompt rows first, delay mask applied
    n_prompt: int  # rows before the first generated one
    stop: str  # "eos" (channel 0 chose eos) or "max_tokens" (eos forced by the length limit)
    delays: tuple[int, ...]
    bos: int
    pad: int
    prompt_frames: int | None = None  # audio prompt frames (voice cloning), else None

    @property
    def steps(self) -> int:
        return int(self.sequence.shape[0] - self.n_prompt)

    @property
    def codes(self) -> np.ndarray:
        """(C, F) codes for the codec: the generated frames, delay reverted, up to eos."""
        return T.codes_of(self.sequence, self.delays, self.bos, self.pad, self.prompt_frames)


def check_options(model, options: SamplingOptions, n_prompt: int) -> None:
    cfg = model.config
    if 0 < options.temperature < 1:
        raise ValueError(f"temperature {options.temperature} is below 1: upstream Dia clamps "
                         "temperatures below 1.0 to 1.0; pass temperature >= 1 (or 0: greedy)")
    if options.min_p != 0 or options.repetition_penalty != 1.0:
        raise ValueError("Dia's sampling has no min-p or repetition penalty here; use "
                         "temperature, top-k, top-p and cfg_scale")
    if options.cfg_scale < 1:
        raise ValueError(f"cfg_scale must be >= 1 (1: no guidance), got {options.cfg_scale}")
    need = cfg.max_delay + 2
    if options.max_tokens < need:
        raise ValueError(f"max_tokens must be >= {need} for Dia (one frame, the eos row and the "
                         f"{cfg.max_delay}-row delayed tail), got {options.max_tokens}")
    limit = cfg.decoder_config.max_position_embeddings
    if n_prompt + options.max_tokens > limit:
        raise ValueError(f"{n_prompt} prompt rows + max_tokens {options.max_tokens} exceed the "
                         f"decoder's {limit} positions; lower max_tokens")


def seeded_noise(seed: int) -> Noise:
    rng = np.random.default_rng(seed)
    return lambda step, shape: draw_noise(rng, "gumbel", shape)


def eos_filter(scores: mx.array, eos: int) -> mx.array:
    """`DiaEOSChannelFilterLogitsProcessor` on (C, V) scores (module docstring, step 2)."""
    c, v = scores.shape
    col = mx.arange(v)[None, :]
    ninf = mx.array(-mx.inf, scores.dtype)
    first = (mx.arange(c) == 0)[:, None]
    s = mx.where(mx.where(first, col > eos, col >= eos), ninf, scores)
    is_eos = (mx.argmax(s, axis=-1) == eos)[:, None]
    s = mx.where(is_eos & (col < eos), ninf, s)
    return mx.where(~is_eos & (col == eos), ninf, s)


def iter_rows(model, text_ids: list[int], options: SamplingOptions, seed: int = 0,
              noise: Noise | None = None, prompt_frames: np.ndarray | None = None
              ) -> Iterator[tuple[np.ndarray, bool]]:
    """(generated row (C,), eos came from channel 0's choice) per step, after the checks."""
    cfg = model.config
    dec = cfg.decoder_config
    delays = cfg.delay_pattern
    frames = np.zeros((0, dec.num_channels), np.int64) if prompt_frames is None else \
        np.asarray(prompt_frames, np.int64)
    mask = T.delayed(frames, delays, dec.bos_token_id, dec.pad_token_id)
    n_prompt = T.n_prompt_rows(mask, dec.pad_token_id)
    if not text_ids:
        raise ValueError("the text ids are empty; build them with mlx_impl.dia.tokens.encode_text")
    check_options(model, options, n_prompt)
    return _rows(model, text_ids, options, noise or seeded_noise(seed), mask, n_prompt)


def _rows(model, text_ids, options, noise, mask, n_prompt):
    cfg = model.config
    dec = cfg.decoder_config
    eos, pad = dec.eos_token_id, dec.pad_token_id
    c = dec.num_channels
    use_cfg = options.cfg_scale != 1.0
    guide_k = options.top_k if options.top_k > 0 else None
    sampler = make_sampler(options)
    max_length = n_prompt + options.max_tokens
    forced_at = max_length - cfg.max_delay - 1  # rows at which the length limit forces eos
    text = mx.array([text_ids] + ([[0] * len(text_ids)] if use_cfg else []), dtype=mx.int32)
    batch = text.shape[0]
    kv = model.cross_kv(model.encode(text))
    cache = model.new_cache()
    rows = [mask[t] for t in range(n_prompt)]
    feed = np.stack(rows)[None].repeat(batch, 0)
    logits = model.decode(feed, kv, cache, last_only=True)[:, -1]  # (B, C, V)
    active = False
    remaining = np.array(cfg.delay_pattern)
    finished = np.zeros(c, dtype=bool)
    ninf = mx.array(-mx.inf, mx.float32)
    eos_row = mx.where(mx.arange(logits.shape[-1]) == eos, 0.0, ninf)
    for step in range(options.max_tokens):
        scores = guidance_dia(logits[0], logits[1], options.cfg_scale, guide_k) if use_cfg \
            else logits[0]
        scores = eos_filter(scores, eos)
        chose_eos = int(mx.argmax(scores[0])) == eos
        by_choice = chose_eos and not active
        active = active or chose_eos or len(rows) == forced_at
        if active:
            forced = mx.array(remaining == 0)[:, None]
            scores = mx.where(forced, eos_row, scores)
            remaining = remaining - 1
        n = noise(step, (c, scores.shape[-1])) if options.temperature > 0 else None
        row = np.array(sampler(scores, None if n is None else mx.array(n))).astype(np.int64)
        row = np.where(finished, pad, row)
        finished |= row == eos
        rows.append(row)
        yield row, by_choice
        if finished.all() or len(rows) >= max_length:
            return
        t = len(rows) - 1
        fed = T.masked(row[None], mask[t:t + 1], pad)[0] if t < mask.shape[0] else row
        logits = model.decode(np.broadcast_to(fed, (batch, 1, c)), kv, cache)[:, -1]


def generate(model, text_ids: list[int], options: SamplingOptions, seed: int = 0,
             noise: Noise | None = None, prompt_frames: np.ndarray | None = None,
             on_step: Callable[[int, np.ndarray], None] | None = None) -> Generation:
    """Generate from text ids (`tokens.encode_text`); `prompt_frames` (F, C): an audio prompt's
    codes (voice cloning); `on_step(step, row)` after each row."""
    dec = model.config.decoder_config
    delays = model.config.delay_pattern
    frames = None if prompt_frames is None else np.asarray(prompt_frames, np.int64)
    mask = T.delayed(np.zeros((0, dec.num_channels)) if frames is None else frames, delays,
                     dec.bos_token_id, dec.pad_token_id)
    n_prompt = T.n_prompt_rows(mask, dec.pad_token_id)
    out, stop = [], "max_tokens"
    for step, (row, by_choice) in enumerate(iter_rows(model, text_ids, options, seed, noise,
                                                       frames)):
        out.append(row)
        if by_choice:
            stop = "eos"
        if on_step is not None:
            on_step(step, row)
    seq = np.concatenate([mask[:n_prompt], np.stack(out)])
    seq = T.masked(seq, mask, dec.pad_token_id)
    return Generation(seq, n_prompt, stop, tuple(delays), dec.bos_token_id, dec.pad_token_id,
                      None if frames is None else int(frames.shape[0]))
