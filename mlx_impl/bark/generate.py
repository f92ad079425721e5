"""Bark's generation: text ids (+ a history prompt) -> semantic tokens -> coarse tokens (2
interleaved codebooks) -> fine codes (8 codebooks) -> EnCodec audio.

Upstream: transformers 5.24.0 `BarkSemanticModel.generate`, `BarkCoarseModel.generate` /
`preprocess_histories`, `BarkFineModel.generate`, `BarkModel.generate`, with
`generation/utils.py` `_sample` and the processors `SuppressTokensLogitsProcessor`,
`BarkEosPrioritizerLogitsProcessor`, `AlternatingCodebooksLogitsProcessor` (read, not copied).
Every offset, window and rounding below is upstream's:
1. Semantic: text ids + `text_encoding_offset` (10048), padded to 256 with `text_pad_token`
   (BarkProcessor pads to 256; the padded positions are masked to the pad token); the history's
   last 256 semantic tokens, right-padded with the semantic pad (= eos, 10000). The prompt is
   256 positions of embed(text) + embed(history), then embed(`semantic_infer_token`). Each step:
   ids outside [0, 10000] suppressed; with `min_eos_p`, if softmax(scores)[eos] > min_eos_p only
   eos stays; then temperature, top-k, top-p and the draw; stop after eos or `max_new_tokens`.
2. Coarse: semantic eos/pad -> `coarse_semantic_pad_token` (12048); length = round(floor(n x
   ratio / 2) x 2) tokens, n the non-pad semantic tokens, ratio = 75 / 49.9 x 2 (float32, as
   upstream's tensor arithmetic); history: the prompt's coarse codes offset by 10000 + 1024 c,
   interleaved, trimmed so both histories cover the same time (`_histories`), the last 2 coarse
   tokens dropped (upstream's alignment hack). Windows of `sliding_window_len` (60) tokens, each
   a fresh pass over [256 semantic tokens from semantic_idx - max_semantic_history, padded with
   12048] + [coarse_infer_token 12050] + the last 630 coarse tokens; at each step even positions
   may only pick codebook 0 ids [10000, 11024), odd ones ids >= 11024 (upstream's mask leaves the
   pad and infer ids open there too; kept).
3. Fine: coarse ids -> (frames, 2) codes (ids - 10000) mod 1024, codebooks 2..7 = 1024 (pad);
   the history's last 512 fine frames before them; padded to 1024 frames; loops of 1024-frame
   buffers moving by 512 (`_fine_windows`), each predicting codebooks 2..7 in turn over the
   positions not yet fixed. Fine temperature 1.0 (or None) is GREEDY upstream (argmax): kept.
4. Decode: the (8, frames) codes through EnCodec (`BarkModel.decode_codes`).
Sampling noise: `noise(shape)` Gumbel numbers, drawn in call order: one (1, V) draw per sampled
semantic and coarse step, one (rows, 1024) draw per sampled fine codebook pass (upstream's
`torch.multinomial` rows). Semantic/coarse pick argmax(filtered logits / T + g), the fine stage
argmax(log softmax(logits / T) + g) (the reference replaces multinomial by the same). Default:
`numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mlx.core as mx
import numpy as np

from mlx_impl.layers.activations import softmax
from mlx_impl.layers.sampling import make_sampler
from mlx_impl.tts import SamplingOptions

Noise = Callable[[tuple], np.ndarray]


@dataclass(frozen=True)
class HistoryPrompt:
    """A Bark voice (suno's `.npz` history prompts)."""

    semantic_prompt: np.ndarray  # (S,) int semantic tokens < 10000
    coarse_prompt: np.ndarray  # (2, F) EnCodec codes < 1024
    fine_prompt: np.ndarray  # (8, F) EnCodec codes < 1024


@dataclass(frozen=True)
class BarkOptions:
    semantic: SamplingOptions = field(default_factory=lambda: SamplingOptions(
        temperature=0.7, top_k=0, max_tokens=768))
    coarse: SamplingOptions = field(default_factory=lambda: SamplingOptions(
        temperature=0.7, top_k=0, max_tokens=1))  # max_tokens unused (set by the semantics)
    fine_temperature: float = 0.5  # 1.0: greedy (upstream's rule)
    min_eos_p: float | None = None  # suno's default 0.2; transformers' None


@dataclass(frozen=True)
class BarkGeneration:
    semantic: np.ndarray  # (S,) tokens, eos (10000) last when chosen
    coarse: np.ndarray  # (2 F,) interleaved ids 10000 + 1024 c + code
    fine: np.ndarray  # (8, F) codes
    stop: str  # "eos" (the semantic GPT chose eos) or "max_tokens"


def seeded_noise(seed: int) -> Noise:
    rng = np.random.default_rng(seed)
    return lambda shape: rng.gumbel(size=shape).astype(np.float32)


def check_history(prompt: HistoryPrompt, model) -> HistoryPrompt:
    cfg = model.config
    n_coarse = cfg.generation.coarse_acoustics_config.n_coarse_codebooks
    n_fine = cfg.fine_acoustics_config.n_codes_total
    k, v = cfg.generation.codebook_size, cfg.generation.semantic_config.semantic_vocab_size
    sem, coarse, fine = (np.asarray(a) for a in (prompt.semantic_prompt, prompt.coarse_prompt,
                                                  prompt.fine_prompt))
    for name, a, ndim, rows in (("semantic_prompt", sem, 1, None),
                                ("coarse_prompt", coarse, 2, n_coarse),
                                ("fine_prompt", fine, 2, n_fine)):
        if a.ndim != ndim or (rows is not None and a.shape[0] != rows) or a.size == 0:
            want = "(tokens,)" if rows is None else f"({rows}, frames)"
            raise ValueError(f"voice {name} has shape {a.shape}, expected {want}; a Bark "
                             "history prompt is an .npz with semantic_prompt (S,), "
                             f"coarse_prompt ({n_coarse}, F), fine_prompt ({n_fine}, F)")
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"voice {name} holds {a.dtype}, expected integer tokens")
    if sem.min() < 0 or sem.max() >= v:
        raise ValueError(f"voice semantic_prompt tokens must lie in [0, {v}), got "
                         f"[{sem.min()}, {sem.max()}]")
    for name, a in (("coarse_prompt", coarse), ("fine_prompt", fine)):
        if a.min() < 0 or a.max() >= k:
            raise ValueError(f"voice {name} codes must lie in [0, {k}), got [{a.min()}, "
                             f"{a.max()}]")
    return HistoryPrompt(sem.astype(np.int64), coarse.astype(np.int64), fine.astype(np.int64))


def _draw(logits: mx.array, options: SamplingOptions, noise: Noise) -> int:
    g = None if options.temperature == 0 else noise(tuple(logits.shape))
    return int(make_sampler(options)(logits, g)[0])


# -- 1. semantic -------------------------------------------------------------------------------

def semantic_prompt(model, text_ids, history: HistoryPrompt | None) -> tuple[np.ndarray, ...]:
    """(text row (256,), history row (256,)) as upstream builds them (module docstring, 1)."""
    g = model.config.generation.semantic_config
    n = g.max_input_semantic_length
    ids = np.asarray(text_ids, np.int64).reshape(-1)
    if ids.size == 0:
        raise ValueError("the text ids are empty; pass the words to speak")
    if ids.size > n:
        raise ValueError(f"{ids.size} text tokens, over Bark's {n}; split the text")
    text = np.full(n, g.text_pad_token, np.int64)
    text[:ids.size] = ids + g.text_encoding_offset
    hist = np.full(n, g.eos_token_id, np.int64)
    if history is not None:
        h = history.semantic_prompt[-n:]
        hist[:h.size] = h
    return text, hist


def semantic_embeds(model, text: np.ndarray, hist: np.ndarray) -> mx.array:
    g = model.config.generation.semantic_config
    gpt = model.semantic
    merged = gpt.embed(text[None]) + gpt.embed(hist[None])
    return mx.concatenate([merged, gpt.embed([[g.semantic_infer_token]])], axis=1)  # (1, 257, C)


def generate_semantic(model, text_ids, history: HistoryPrompt | None, options: BarkOptions,
                      noise: Noise, on_step=None) -> tuple[np.ndarray, str]:
    g = model.config.generation.semantic_config
    gpt = model.semantic
    v = gpt.cfg.output_vocab_size
    allowed = mx.arange(v) <= g.eos_token_id  # suppressed: (10000, V) and [vocab, pad)
    text, hist = semantic_prompt(model, text_ids, history)
    cache = gpt.new_cache()
    logits = gpt.step(semantic_embeds(model, text, hist), cache, last_only=True)[:, -1]
    out: list[int] = []
    limit = options.semantic.max_tokens
    for _ in range(limit):
        scores = mx.where(allowed, logits, mx.array(-mx.inf, logits.dtype))
        if options.min_eos_p:
            p_eos = softmax(scores.astype(mx.float32), axis=-1)[:, g.eos_token_id]
            if float(p_eos[0]) > options.min_eos_p:
                only = mx.arange(v) == g.eos_token_id
                scores = mx.where(only, scores, mx.array(-mx.inf, scores.dtype))
        tok = _draw(scores, options.semantic, noise)
        if on_step is not None:
            on_step(len(out), tok)
        out.append(tok)
        if tok == g.eos_token_id:
            return np.array(out, np.int64), "eos"
        logits = gpt.step(gpt.embed([[tok]]), cache)[:, -1]
    return np.array(out, np.int64), "max_tokens"


# -- 2. coarse ---------------------------------------------------------------------------------

def coarse_length(model, semantic: np.ndarray) -> int:
    gen = model.config.generation
    c = gen.coarse_acoustics_config
    n = int(np.sum(semantic != c.coarse_semantic_pad_token))
    ratio = np.float32(gen.semantic_to_coarse_ratio)  # upstream: int tensor x float -> float32
    frames = np.floor(np.float32(n) * ratio / np.float32(c.n_coarse_codebooks))
    return int(np.round(frames * np.float32(c.n_coarse_codebooks)))


def _histories(model, history: HistoryPrompt | None) -> tuple[np.ndarray, np.ndarray]:
    """`BarkCoarseModel.preprocess_histories` (module docstring, 2)."""
    gen = model.config.generation
    if history is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    c, k = gen.coarse_acoustics_config, gen.codebook_size
    ratio = gen.semantic_to_coarse_ratio
    sem = history.semantic_prompt
    coarse = history.coarse_prompt + (k * np.arange(c.n_coarse_codebooks))[:, None]
    coarse = coarse.T.reshape(-1) + gen.semantic_config.semantic_vocab_size
    max_sem = int(np.floor(c.max_coarse_history / ratio))
    n_sem = min(max_sem, sem.shape[0] - sem.shape[0] % 2, int(np.floor(coarse.shape[0] / ratio)))
    n_coarse = int(round(n_sem * ratio))
    return sem[-n_sem:], coarse[-n_coarse:][:-2]


def generate_coarse(model, semantic: np.ndarray, history: HistoryPrompt | None,
                    options: BarkOptions, noise: Noise) -> np.ndarray:
    gen = model.config.generation
    c, k = gen.coarse_acoustics_config, gen.codebook_size
    first = gen.semantic_config.semantic_vocab_size
    gpt = model.coarse_acoustics
    v = gpt.cfg.output_vocab_size
    ratio = gen.semantic_to_coarse_ratio
    semantic = np.where(semantic == gen.semantic_config.eos_token_id,
                        c.coarse_semantic_pad_token, semantic)
    max_len = coarse_length(model, semantic)
    max_sem_hist = int(np.floor(c.max_coarse_history / ratio))
    sem_hist, coarse = _histories(model, history)
    sem_all = np.concatenate([sem_hist, semantic])
    ids = mx.arange(v)
    even = (ids >= first) & (ids < first + k)
    odd = ids >= first + k
    n_hist, total = coarse.shape[0], 0
    for _ in range(int(np.ceil(max_len / c.sliding_window_len))):
        sem_idx = sem_hist.shape[0] + int(round(total / ratio))
        window = sem_all[max(0, sem_idx - max_sem_hist):][:c.max_coarse_input_length]
        window = np.pad(window, (0, c.max_coarse_input_length - window.shape[0]),
                        constant_values=c.coarse_semantic_pad_token)
        prompt = np.concatenate([window, [c.coarse_infer_token], coarse[-c.max_coarse_history:]])
        cache = gpt.new_cache()
        logits = gpt.step(gpt.embed(prompt[None]), cache, last_only=True)[:, -1]
        new: list[int] = []
        for i in range(min(c.sliding_window_len, max_len - total)):
            keep = even if i % 2 == 0 else odd
            scores = mx.where(keep, logits, mx.array(-mx.inf, logits.dtype))
            tok = _draw(scores, options.coarse, noise)
            new.append(tok)
            logits = gpt.step(gpt.embed([[tok]]), cache)[:, -1]
        coarse = np.concatenate([coarse, np.array(new, np.int64)])
        total = coarse.shape[0] - n_hist
    return coarse[n_hist:]


# -- 3. fine -----------------------------------------------------------------------------------

def generate_fine(model, coarse: np.ndarray, history: HistoryPrompt | None,
                  options: BarkOptions, noise: Noise) -> np.ndarray:
    gen = model.config.generation
    f, k = gen.fine_acoustics_config, gen.codebook_size
    n_coarse = gen.coarse_acoustics_config.n_coarse_codebooks
    t_fine = options.fine_temperature
    if t_fine is not None and t_fine <= 0:
        raise ValueError(f"fine temperature must be > 0 (1.0 is greedy, upstream's rule), got "
                         f"{t_fine}")
    greedy = t_fine is None or t_fine == 1.0
    codes = np.remainder(coarse.reshape(-1, n_coarse) - gen.semantic_config.semantic_vocab_size,
                         k)  # (F, 2)
    frames = codes.shape[0]
    buf = np.pad(codes, ((0, 0), (0, f.n_fine_codebooks - n_coarse)), constant_values=k)
    n_history = 0
    if history is not None:
        h = history.fine_prompt.T[-f.max_fine_history_length:]
        buf = np.concatenate([h, buf])
        n_history = h.shape[0]
    n_remove = 0
    if buf.shape[0] < f.max_fine_input_length:
        n_remove = f.max_fine_input_length - buf.shape[0]
        buf = np.pad(buf, ((0, n_remove), (0, 0)), constant_values=k)
    n_loops = int(np.ceil((frames - (f.max_fine_input_length - n_history))
                          / f.max_fine_history_length))
    n_loops = max(0, n_loops) + 1
    size = f.max_fine_input_length
    for n_outer in range(n_loops):
        start = min(n_outer * f.max_fine_history_length, buf.shape[0] - size)
        fill = min(n_history + n_outer * f.max_fine_history_length,
                   buf.shape[0] - f.max_fine_history_length)
        rel = fill - start
        window = buf[start:start + size]  # a view, as upstream's input_buffer
        for j in range(n_coarse, f.n_fine_codebooks):
            logits = model.fine_acoustics(j, window[None])[0, :, :k]  # (size, k)
            if greedy:
                preds = mx.argmax(logits[rel:], axis=-1)
            else:
                probs = softmax(logits / t_fine, axis=-1)[rel:size]
                g = mx.array(noise(tuple(probs.shape)))
                preds = mx.argmax(mx.log(probs) + g, axis=-1)
            window[rel:, j] = np.array(preds).astype(np.int64)
    out = buf.T[:, n_history:]
    if n_remove > 0:
        out = out[:, :-n_remove]
    if out.shape[1] != frames:
        raise RuntimeError(f"fine output has {out.shape[1]} frames for {frames} coarse frames")
    return np.ascontiguousarray(out)


def generate(model, text_ids, history: HistoryPrompt | None = None,
             options: BarkOptions | None = None, seed: int = 0,
             noise: Noise | None = None, on_step=None) -> BarkGeneration:
    """The three stages (module docstring); `on_step(i, token)` after each semantic token."""
    options = options or BarkOptions()
    noise = noise or seeded_noise(seed)
    if history is not None:
        history = check_history(history, model)
    semantic, stop = generate_semantic(model, text_ids, history, options, noise, on_step)
    coarse = generate_coarse(model, semantic, history, options, noise)
    fine = generate_fine(model, coarse, history, options, noise)
    return BarkGeneration(semantic, coarse, fine, stop)
