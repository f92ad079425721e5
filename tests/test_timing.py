"""Word-timing numerics (median filter, DTW, word times, punctuation) against openai-whisper."""

from __future__ import annotations

import copy
from itertools import pairwise

import numpy as np
import pytest
import torch
import whisper.timing as ref  # the reference (imports numba and torch)

from mlx_impl.whisper import timing
from tests.helpers import assert_close


def assert_equal_arrays(name: str, got: np.ndarray, want: np.ndarray) -> None:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {got.shape} != {want.shape}")
    diff = ~((got == want) | (np.isnan(got) & np.isnan(want))) if got.dtype.kind == "f" \
        else got != want
    if diff.any():
        idx = tuple(int(i) for i in np.argwhere(diff)[0])
        raise AssertionError(f"{name}: {int(diff.sum())}/{diff.size} elements differ; first at "
                             f"{idx}: got {got[idx]!r} want {want[idx]!r}")


MEDIAN_CASES = [((50,), 7), ((3, 40), 7), ((4, 12, 100), 7), ((2, 5, 9), 3), ((6,), 1),
                ((2, 8), 5), ((4,), 7), ((3,), 7), ((3, 1), 3), ((2, 3, 4), 9)]


@pytest.mark.parametrize("shape,width", MEDIAN_CASES)
def test_median_filter_equals_upstream(shape, width):
    rng = np.random.default_rng(hash((shape, width)) % 2**32)
    x = rng.standard_normal(shape).astype(np.float32)
    got = timing.median_filter(x, width)
    want = ref.median_filter(torch.from_numpy(x), width).numpy()
    assert_equal_arrays(f"median_filter{shape} w={width}", got, want)


def test_median_filter_values_and_ties():
    x = np.array([5.0, 1.0, 1.0, 9.0, 2.0, 2.0, 2.0], dtype=np.float32)
    # reflect padding: [1, 5, 1, 1, 9, 2, 2, 2, 2]
    assert_equal_arrays("w=3", timing.median_filter(x, 3), np.array([1, 1, 1, 2, 2, 2, 2]))
    x_nan = np.array([1.0, np.nan, 3.0, 2.0, 0.0], dtype=np.float32)
    assert_equal_arrays("nan sorts last", timing.median_filter(x_nan, 3),
                        ref.median_filter(torch.from_numpy(x_nan), 3).numpy())
    with pytest.raises(ValueError, match="positive odd number, got 4"):
        timing.median_filter(x, 4)


DTW_SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2), (5, 9), (9, 5), (12, 150), (40, 300)]


@pytest.mark.parametrize("shape", DTW_SHAPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "float32"])
def test_dtw_equals_upstream(shape, kind):
    rng = np.random.default_rng(sum(shape) * 7 + len(kind))
    if kind == "ties":  # few distinct values: exercises the tie-breaking
        cost = rng.integers(0, 3, size=shape).astype(np.float64)
    elif kind == "float32":
        cost = rng.standard_normal(shape).astype(np.float32)
    else:
        cost = rng.standard_normal(shape)
    # upstream's dtw_cpu run by the interpreter (`py_func`): the same code without numba's
    # per-process compile; test_dtw_upstream_wrapper_on_alignment_like_input runs the compiled one
    want = ref.dtw_cpu.py_func(cost)
    text_idx, time_idx = timing.dtw(cost)
    assert_equal_arrays(f"dtw{shape} {kind} text", text_idx, want[0])
    assert_equal_arrays(f"dtw{shape} {kind} time", time_idx, want[1])


def test_dtw_constant_cost_and_path_shape():
    text_idx, time_idx = timing.dtw(np.zeros((3, 5)))
    want = ref.dtw_cpu.py_func(np.zeros((3, 5)))
    assert_equal_arrays("zeros text", text_idx, want[0])
    assert_equal_arrays("zeros time", time_idx, want[1])
    # a cheap diagonal is followed exactly
    cost = np.ones((4, 4)) - 2 * np.eye(4)
    t, f = timing.dtw(cost)
    assert_equal_arrays("diagonal", np.stack([t, f]), np.array([[0, 1, 2, 3], [0, 1, 2, 3]]))
    with pytest.raises(ValueError, match=r"non-empty \(tokens, frames\) matrix"):
        timing.dtw(np.zeros((0, 4)))


def test_dtw_upstream_wrapper_on_alignment_like_input():
    # upstream's `dtw` passes -matrix as float64; our float32 input is converted the same way
    rng = np.random.default_rng(3)
    matrix = rng.random((20, 200)).astype(np.float32)
    want = ref.dtw(torch.from_numpy(-matrix))
    got = timing.dtw(-matrix)
    assert_equal_arrays("dtw(-matrix)", np.stack(got), want)


def make_alignment(words: list[str]) -> list:
    return [timing.WordTiming(w, [i], float(i), i + 1.0, 0.5) for i, w in enumerate(words)]


MERGE_CASES = [
    [" Hello", ",", " world", "."],
    [" He", " said", " \"", "yes", "\"", " and", " (", "left", ")", "."],
    [" ¿", "Qué", "?", " ¡", "Sí", "!"],
    [" (", " (", "nested", ")", ")", " -", "dash", " '", "quote", "'"],
    ["Hello ", ".", " ok", "。", "、", " end", "<|endoftext|>"],
    [" \"", " \""],
    [" -"],
    [],
]


@pytest.mark.parametrize("words", MERGE_CASES)
def test_merge_punctuations_equals_upstream(words):
    ours = make_alignment(words)
    theirs = [ref.WordTiming(w.word, list(w.tokens), w.start, w.end, w.probability) for w in ours]
    timing.merge_punctuations(ours)
    ref.merge_punctuations(theirs, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
    assert [(w.word, w.tokens) for w in ours] == [(w.word, w.tokens) for w in theirs]


def test_merge_punctuations_values():
    alignment = make_alignment([" He", " said", " \"", "yes", "\"", "."])
    timing.merge_punctuations(alignment)
    assert [w.word for w in alignment] == [" He", " said", "", " \"yes\".", "", ""]
    assert [w.tokens for w in alignment] == [[0], [1], [], [2, 3, 4, 5], [], []]


def test_word_timings_equal_upstream_post_dtw():
    """The part of upstream's find_alignment after dtw, rebuilt here on the same inputs."""
    rng = np.random.default_rng(11)
    word_tokens = [[1, 2], [3], [4, 5, 6], [7], [50257]]
    words = [" ab", " c", " def", ".", "<|endoftext|>"]
    n_text = sum(len(t) for t in word_tokens[:-1])
    matrix = rng.random((n_text + 1, 120))  # text tokens + eot, frames
    text_idx, time_idx = timing.dtw(-matrix)
    probs = list(rng.random(n_text))
    got = timing.word_timings(text_idx, time_idx, words, copy.deepcopy(word_tokens), probs)

    # upstream's code, verbatim in effect
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / 50
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    want_probs = [np.mean(probs[i:j]) for i, j in pairwise(boundaries)]
    assert [w.word for w in got] == words[:-1]
    assert_equal_arrays("starts", [w.start for w in got], starts)
    assert_equal_arrays("ends", [w.end for w in got], ends)
    assert_equal_arrays("probabilities", [w.probability for w in got], want_probs)
    assert all(w.start <= w.end for w in got)
    assert timing.word_timings(text_idx, time_idx, ["<|endoftext|>"], [[50257]], []) == []


def test_alignment_matrix_equals_upstream_steps():
    rng = np.random.default_rng(5)
    qk = rng.standard_normal((6, 14, 150)).astype(np.float32) * 3
    weights = torch.from_numpy(qk).softmax(dim=-1)
    # upstream's find_alignment, after the softmax
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    want = ref.median_filter((weights - mean) / std, 7).mean(axis=0).numpy()
    got = timing.alignment_matrix(weights.numpy(), 7)
    # float32 reductions in another order: measured max difference 1.8e-7 over 20 seeds (values ~1)
    assert_close("alignment_matrix", got, want, atol=2e-6)
