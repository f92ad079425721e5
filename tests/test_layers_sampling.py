"""mlx_impl.layers.sampling against transformers 5.24.0's logits processors and warpers, element
for element (filtered entries -inf on both sides, every other value bit-equal), and the draw:
torch and MLX given the same Gumbel or uniform noise pick the same tokens over a whole
generation.

Exactness: the filters only mask, temperature and the repetition penalty are one correctly
rounded operation each, so equality is exact (tolerance 0). Where a mask depends on a softmax
(top-p, min-p, the uniform draw) ours and torch's can differ by an ulp; the random cases here
have no threshold within that distance (measured: 0 mismatches), and ties that straddle the
top-p boundary are compared as counts above 16 entries, where torch's sort is not stable.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (ClassifierFreeGuidanceLogitsProcessor,
                                                    DiaClassifierFreeGuidanceLogitsProcessor,
                                                    MinPLogitsWarper,
                                                    RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

import mlx_impl  # noqa: F401  (BLAS preload before mlx)
from mlx_impl.layers import sampling as S
from mlx_impl.tts import SamplingOptions

RNG = np.random.default_rng(0)


def assert_same_logits(name: str, got: mx.array, want: torch.Tensor) -> None:
    """Exact equality, -inf included: reports the mask and value mismatches and the first one."""
    g, w = np.array(got), want.detach().numpy()
    if g.shape != w.shape:
        raise AssertionError(f"{name}: shape {g.shape} != expected {w.shape}")
    if g.size == 0:
        raise AssertionError(f"{name}: nothing to compare")
    if np.isnan(g).any() or np.isnan(w).any():
        raise AssertionError(f"{name}: NaN present (got {np.isnan(g).sum()}, want "
                             f"{np.isnan(w).sum()})")
    bad = g != w
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        masks = (np.isneginf(g) != np.isneginf(w)).sum()
        raise AssertionError(f"{name}: {bad.sum()}/{g.size} entries differ ({masks} in the "
                             f"-inf mask); first at {first}: got {g[first]!r} want {w[first]!r}")
    if np.isneginf(w).all(axis=-1).any():
        raise AssertionError(f"{name}: a row lost every token")


def logits_of(shape, scale=3.0, n_neg_inf=0, ties=False):
    """Random float32 logits; optional -inf entries per row and heavy ties (quantized values)."""
    x = (RNG.standard_normal(shape) * scale).astype(np.float32)
    if ties:
        x = np.round(x).astype(np.float32)
    for row in x.reshape(-1, shape[-1]):
        row[RNG.choice(shape[-1], n_neg_inf, replace=False)] = -np.inf
    return x


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


CASES = [  # (name, shape, kwargs of logits_of)
    ("plain", (4, 1000), {}),
    ("ties", (3, 1000), {"ties": True}),
    ("-inf", (3, 777), {"n_neg_inf": 300}),
    ("small ties -inf", (5, 12), {"ties": True, "n_neg_inf": 3}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("penalty", [1.3, 0.7])
@pytest.mark.parametrize("window", [0, 5])
def test_repetition_penalty(case, penalty, window):
    _, shape, kw = case
    x = logits_of(shape, **kw)
    x[:, :4] = [0.0, -0.0, 2.5, -2.5]  # signs and zeros, all seen below
    history = RNG.integers(0, shape[-1] + 3, (shape[0], 20))  # some ids >= V: ignored
    history[:, -4:] = [0, 1, 2, 3]
    ids = t(history[:, -window:] if window else history)
    want = RepetitionPenaltyLogitsProcessor(penalty)(ids, t(x))
    got = S.repetition_penalty(mx.array(x), mx.array(history), penalty, window)
    assert_same_logits(f"repetition penalty {penalty} window {window}", got, want)
    assert (np.array(got) != x).any()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_temperature_and_top_k(case):
    _, shape, kw = case
    x = logits_of(shape, **kw)
    for temp in (0.7, 1.3):
        assert_same_logits(f"temperature {temp}", S.temperature(mx.array(x), temp),
                           TemperatureLogitsWarper(temp)(None, t(x)))
    for k in (1, 3, 50, shape[-1] - 1):
        assert_same_logits(f"top_k {k}", S.top_k(mx.array(x), k),
                           TopKLogitsWarper(k)(None, t(x)))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.8, 0.95, 0.999])
def test_top_p(case, p):
    _, shape, kw = case
    x = logits_of(shape, **kw)
    got = np.array(S.top_p(mx.array(x), p))
    want = TopPLogitsWarper(p)(None, t(x))
    if not kw.get("ties") or shape[-1] <= 16:  # torch.sort is stable up to 16 entries
        assert_same_logits(f"top_p {p}", mx.array(got), want)
        return
    # ties straddling the boundary are removed in torch.sort's (unstable) order: the kept
    # values, counted per value, must still be equal, and every kept value unchanged
    w = want.numpy()
    for row, (g_row, w_row) in enumerate(zip(got, w)):
        g_vals, g_counts = np.unique(g_row[np.isfinite(g_row)], return_counts=True)
        w_vals, w_counts = np.unique(w_row[np.isfinite(w_row)], return_counts=True)
        assert g_vals.tolist() == w_vals.tolist(), f"top_p {p} row {row}: kept values differ"
        assert g_counts.tolist() == w_counts.tolist(), f"top_p {p} row {row}: counts differ"
        kept = np.isfinite(g_row)
        assert (g_row[kept] == x[row][kept]).all()


def test_top_p_ties_stable_order():
    """Four tied tokens straddle the boundary: the lower indices go first (torch's stable sort
    below 17 entries does the same; checked against it), and the top token always stays."""
    x = np.array([[0.0, 1.0, 1.0, 1.0, 1.0, -np.inf, 3.0]], np.float32)
    got = np.array(S.top_p(mx.array(x), 0.75))
    assert_same_logits("top_p ties", mx.array(got), TopPLogitsWarper(0.75)(None, t(x)))
    assert np.isneginf(got[0, :3]).all() and np.isfinite(got[0, 3:5]).all(), got
    assert np.isfinite(np.array(S.top_p(mx.array(x), 0.0))).sum() == 1


def test_argsort_is_stable():
    """top_p's tie rule rests on mx.argsort keeping ties in index order, at vocabulary sizes."""
    x = RNG.integers(0, 7, (2, 150000)).astype(np.float32)
    got = np.array(mx.argsort(mx.array(x), axis=-1))
    assert (got == np.argsort(x, axis=-1, kind="stable")).all()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("p", [0.01, 0.1, 0.5, 1.0])
def test_min_p(case, p):
    _, shape, kw = case
    x = logits_of(shape, **kw)
    assert_same_logits(f"min_p {p}", S.min_p(mx.array(x), p), MinPLogitsWarper(p)(None, t(x)))


@pytest.mark.parametrize("scale", [1.5, 3.0])
def test_guidance(scale):
    cond, uncond = logits_of((3, 500)), logits_of((3, 500))
    both = t(np.concatenate([cond, uncond]))
    ids = torch.zeros((3, 1), dtype=torch.long)
    assert_same_logits(f"cfg {scale}", S.guidance(mx.array(cond), mx.array(uncond), scale),
                       ClassifierFreeGuidanceLogitsProcessor(scale)(ids, both.clone()))
    for k in (None, 1, 45):
        want = DiaClassifierFreeGuidanceLogitsProcessor(scale, k)(ids, both.clone())
        got = S.guidance_dia(mx.array(cond), mx.array(uncond), scale, k)
        assert_same_logits(f"dia cfg {scale} top_k {k}", got, want)


def torch_draw(x: torch.Tensor, noise: np.ndarray, draw: str) -> torch.Tensor:
    """The reference draw, written from the definitions in sampling.py's docstring."""
    if draw == "gumbel":
        return torch.argmax(x + t(noise), dim=-1)
    cdf = torch.cumsum(torch.softmax(x, dim=-1), dim=-1)
    above = cdf > t(noise)[:, None] * cdf[:, -1:]
    return torch.where(above.any(-1), above.int().argmax(-1), cdf.argmax(-1))


def torch_step(opts: SamplingOptions, history: torch.Tensor, x: torch.Tensor, noise):
    w = opts.repetition_window
    x = RepetitionPenaltyLogitsProcessor(opts.repetition_penalty)(
        history[:, -w:] if w else history, x)
    if opts.temperature == 0:
        return torch.argmax(x, dim=-1)
    for warper in (TemperatureLogitsWarper(opts.temperature), TopKLogitsWarper(opts.top_k),
                   TopPLogitsWarper(opts.top_p), MinPLogitsWarper(opts.min_p)):
        x = warper(history, x)
    return torch_draw(x, noise, opts.draw)


@pytest.mark.parametrize("draw", ["gumbel", "uniform"])
@pytest.mark.parametrize("temp", [0.8, 1.3, 0.0])
def test_generation_draws_identical_tokens(draw, temp):
    """A bigram 'language model' (logits = table[previous token]) sampled for 300 steps, 3 rows,
    every filter on: both sides consume the same noise and must emit the same tokens."""
    vocab, rows, steps = 300, 3, 300
    table = (RNG.standard_normal((vocab, vocab)) * 2.5).astype(np.float32)
    table[:, 7] = table[:, 9]  # a tie in every row
    opts = SamplingOptions(temperature=temp, top_k=60, top_p=0.92, min_p=0.02,
                           repetition_penalty=1.25, repetition_window=16, draw=draw)
    processors, sampler = S.make_logits_processors(opts), S.make_sampler(opts)
    noise_rng = np.random.default_rng(7)
    ours = theirs = RNG.integers(0, vocab, (rows, 5))
    for _ in range(steps):
        noise = S.draw_noise(noise_rng, draw, (rows, vocab))
        logits = mx.array(table[ours[:, -1]])
        hist = mx.array(ours)
        for proc in processors:
            logits = proc(hist, logits)
        ours = np.concatenate([ours, np.array(sampler(logits, mx.array(noise)))[:, None]], 1)
        tok = torch_step(opts, t(theirs), t(table[theirs[:, -1]]), noise).numpy()
        theirs = np.concatenate([theirs, tok[:, None]], 1)
    diff = np.argwhere(ours != theirs)
    assert not diff.size, (f"{draw} T={temp}: first differing token at row {diff[0][0]}, "
                           f"step {diff[0][1] - 5}: ours {ours[tuple(diff[0])]}, "
                           f"torch {theirs[tuple(diff[0])]}")
    # not a degenerate run: sampled rows visit many tokens (greedy ones cycle)
    assert len(np.unique(ours[:, 5:])) > (5 if temp == 0 else 100)


@pytest.mark.parametrize("draw", ["gumbel", "uniform"])
def test_draw_follows_the_distribution(draw):
    """20000 draws from one filtered row: frequencies within 5 sigma of the probabilities, and
    filtered tokens never drawn."""
    x = np.array([2.0, 1.0, 0.0, -1.0, -np.inf, 0.5, 2.0, -3.0], np.float32)
    n = 20000
    probs = np.exp(x / 0.9 - np.max(x / 0.9))
    probs /= probs.sum()
    noise = S.draw_noise(np.random.default_rng(3), draw, (n, x.size))
    toks = np.array(S.sample(mx.array(np.tile(x, (n, 1))), mx.array(noise), 0.9, draw))
    freq = np.bincount(toks, minlength=x.size) / n
    sigma = np.sqrt(probs * (1 - probs) / n)
    assert freq[4] == 0
    worst = np.max(np.abs(freq - probs) / np.maximum(sigma, 1e-12))
    assert worst < 5, f"{draw}: frequencies {freq.round(4)} vs probabilities {probs.round(4)}"


def test_greedy_and_uniform_edge():
    x = mx.array([[1.0, 3.0, 3.0, -mx.inf], [-mx.inf, 0.0, -1.0, -mx.inf]])
    assert np.array(S.sample(x, None, 0.0)).tolist() == [1, 1]  # first index on ties
    # u just below 1 (u x total may round to the total): the last token with probability > 0
    u = mx.array(np.full(2, np.nextafter(np.float32(1), np.float32(0)), np.float32))
    assert np.array(S.sample(x, u, 1.0, "uniform")).tolist() == [2, 2]
    assert np.array(S.sample(x, mx.zeros(2), 1.0, "uniform")).tolist() == [0, 1]


def test_errors_name_the_fix():
    x = mx.zeros((2, 5))
    with pytest.raises(ValueError, match="needs noise"):
        S.sample(x, None, 1.0)
    with pytest.raises(ValueError, match="logits' shape"):
        S.sample(x, mx.zeros((2, 4)), 1.0, "gumbel")
    with pytest.raises(ValueError, match="one number per row"):
        S.sample(x, mx.zeros((2, 5)), 1.0, "uniform")
    with pytest.raises(ValueError, match="leading"):
        S.repetition_penalty(x, mx.zeros((3, 4), mx.int32), 1.2)
    with pytest.raises(ValueError, match="draw must be"):
        SamplingOptions(draw="normal")
