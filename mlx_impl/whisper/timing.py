"""Word-level timestamps: the numeric parts (numpy only).

Upstream: openai-whisper 20250625 `whisper/timing.py`: `median_filter`, `dtw_cpu` + `backtrace`,
`WordTiming`, `merge_punctuations`, and the post-DTW part of `find_alignment`. Results equal
upstream's exactly (tests/test_timing.py). The cross-attention capture that produces the
alignment weights lives with the model.

Deviations from upstream:
- `dtw` fills the cost matrix one anti-diagonal at a time with numpy instead of a numba loop over
  cells; every cell sees the same three neighbours, the same float32 accumulation and the same
  tie-breaking, so the path is identical.
- `median_filter` raises ValueError for an even or non-positive width even when the input is too
  short to filter (upstream returns such inputs unchanged before checking the width).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

# upstream's defaults (transcribe's --prepend_punctuations / --append_punctuations)
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
TOKENS_PER_SECOND = 50  # one encoder position = 2 mel frames = 20 ms


@dataclass
class WordTiming:
    word: str
    tokens: list[int]
    start: float  # seconds from the start of the window
    end: float
    probability: float  # mean probability of the word's tokens


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a sliding window of odd `width` along the last axis, reflect-padded
    (mirror without repeating the edge sample, torch's "reflect"), same shape as `x`.

    Inputs with `x.shape[-1] <= width // 2` are returned unchanged, as upstream does (reflect
    padding needs more samples than the pad). NaN sorts last, as in upstream's sort.
    """
    if width <= 0 or width % 2 != 1:
        raise ValueError(f"median filter width must be a positive odd number, got {width}")
    x = np.asarray(x)
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    pad_widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    padded = np.pad(x, pad_widths, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)  # (..., T, width)
    return np.sort(windows, axis=-1)[..., pad]


def alignment_matrix(weights: np.ndarray, medfilt_width: int = 7) -> np.ndarray:
    """Token-to-frame alignment scores from the alignment heads' cross-attention, as upstream's
    `find_alignment` between its softmax and its `dtw(-matrix)`.

    weights: (heads, tokens, frames) softmax-ed cross-attention of the alignment heads, already cut
    to the audio's frames. Each head is standardised over the tokens axis (population std),
    median-filtered along frames, then the heads are averaged -> (tokens, frames). Upstream then
    drops the sot-sequence rows and the end-of-text row, and aligns with `dtw(-matrix)`.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 3:
        raise ValueError(f"expected (heads, tokens, frames) attention weights, got shape {w.shape}")
    mean = w.mean(axis=-2, keepdims=True)
    std = w.std(axis=-2, keepdims=True)
    return median_filter((w - mean) / std, medfilt_width).mean(axis=0)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping of a (N text tokens, M time frames) cost matrix.

    Returns (text_indices, time_indices), int64 arrays of one path from (0, 0) to (N-1, M-1)
    where each step advances the text, the time or both. Equal to upstream's `dtw_cpu`,
    including its accumulation (float32 cumulative cost; the cost itself taken as float64, as
    upstream's `dtw` passes it) and its tie-breaking: the diagonal predecessor wins only if strictly
    cheapest, then the text step if strictly cheapest, else the time step.
    """
    x = np.asarray(cost, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"dtw expects a non-empty (tokens, frames) matrix, got shape {x.shape}")
    n, m = x.shape
    acc = np.full((n + 1, m + 1), np.inf, dtype=np.float32)  # acc[i, j]: best cost to (i-1, j-1)
    acc[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)  # 0 diagonal, 1 text step, 2 time step

    # Cells on one anti-diagonal i + j = k depend only on diagonals k-1 and k-2.
    for k in range(2, n + m + 1):
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        c0 = acc[i - 1, j - 1]
        c1 = acc[i - 1, j]
        c2 = acc[i, j - 1]
        diagonal = (c0 < c1) & (c0 < c2)
        text_step = ~diagonal & (c1 < c0) & (c1 < c2)
        best = np.where(diagonal, c0, np.where(text_step, c1, c2))
        # float64 sum rounded once to float32, as upstream's `cost[i, j] = x[i-1, j-1] + c`
        acc[i, j] = (x[i - 1, j - 1] + best.astype(np.float64)).astype(np.float32)
        trace[i, j] = np.where(diagonal, 0, np.where(text_step, 1, 2))

    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    trace = trace.copy()
    trace[0, :] = 2  # on the top edge only time steps remain, on the left edge only text steps
    trace[:, 0] = 1
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        elif step == 2:
            j -= 1
        else:
            raise ValueError(f"dtw trace has no step at ({i}, {j}); the cost matrix is malformed")
    path_arr = np.array(path[::-1], dtype=np.int64).reshape(-1, 2)
    return path_arr[:, 0], path_arr[:, 1]


def word_timings(text_indices: np.ndarray, time_indices: np.ndarray, words: list[str],
                 word_tokens: list[list[int]], token_probs: list[float],
                 tokens_per_second: float = TOKENS_PER_SECOND) -> list[WordTiming]:
    """Word start/end times from a DTW path, as upstream's `find_alignment` after its `dtw` call.

    `words`, `word_tokens`: `Tokenizer.split_to_word_tokens(text_tokens + [eot])` (the last word is
    the end-of-text token). `token_probs`: probability of each text token. A word starts at the
    time where the path first reaches its first token and ends where it reaches the next word's.
    """
    if len(words) != len(word_tokens):
        raise ValueError(f"{len(words)} words but {len(word_tokens)} token groups")
    if len(word_tokens) <= 1:  # only the end-of-text token: nothing to time
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = np.asarray(time_indices)[jumps] / tokens_per_second
    starts = jump_times[boundaries[:-1]]
    ends = jump_times[boundaries[1:]]
    probs = [np.mean(token_probs[a:b]) for a, b in pairwise(boundaries)]
    return [WordTiming(w, t, s, e, p)
            for w, t, s, e, p in zip(words, word_tokens, starts, ends, probs)]


def merge_punctuations(alignment: list[WordTiming], prepended: str = PREPEND_PUNCTUATIONS,
                       appended: str = APPEND_PUNCTUATIONS) -> None:
    """Attach punctuation words to their neighbours, in place, as upstream does.

    An opening mark (" (", ' "', ...) moves onto the next word; a closing mark (".", ",", ...)
    onto the previous word unless that word ends in a space. The emptied entries stay with
    word "" and no tokens, so indices still line up with the token stream.
    """
    # opening marks, right to left: `nxt` is the nearest word on the right that was not emptied
    nxt = len(alignment) - 1
    for i in range(len(alignment) - 2, -1, -1):
        prev, following = alignment[i], alignment[nxt]
        if prev.word.startswith(" ") and prev.word.strip() in prepended:
            following.word = prev.word + following.word
            following.tokens = prev.tokens + following.tokens
            prev.word, prev.tokens = "", []
        else:
            nxt = i

    # closing marks, left to right: `keep` is the word that absorbs them
    keep = 0
    for j in range(1, len(alignment)):
        prev, following = alignment[keep], alignment[j]
        if not prev.word.endswith(" ") and following.word in appended:
            prev.word = prev.word + following.word
            prev.tokens = prev.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            keep = j
