"""Whisper's logit filters against openai-whisper 20250625's on the same logits and histories,
element for element, non-finite logits included (upstream writes -inf over banned tokens, nan
and +inf too). No weights needed: the filters see only token ids and logits."""

from __future__ import annotations

from types import SimpleNamespace

import mlx.core as mx
import numpy as np
import pytest

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")

from mlx_impl.whisper import decoding as ours  # noqa: E402

N_VOCAB = 51865
# the multilingual vocabulary's special ids (only these attributes are read by the filters)
TOK = SimpleNamespace(eot=50257, no_timestamps=50363, timestamp_begin=50364,
                      encode=lambda text: [220] if text == " " else [])
SAMPLE_BEGIN = 3
HISTORIES = [  # after the 3 prompt tokens: nothing yet, text, one timestamp, a pair, a lone one
    [50258, 50259, 50359],
    [50258, 50259, 50359, 50364, 400, 500],
    [50258, 50259, 50359, 50364],
    [50258, 50259, 50359, 50364, 400, 50400, 50400],
    [50258, 50259, 50359, 50364, 400, 50420],
]


def logits_with_specials(seed: int) -> np.ndarray:
    x = (np.random.default_rng(seed).standard_normal((len(HISTORIES), N_VOCAB)) * 4)
    x = x.astype(np.float32)
    x[:, 50364:] += 3.0 * (seed % 2)
    x[:, 50364:] += 1.5  # seeds 1 and 3: timestamps outweigh text, and text gets banned
    x[:, [1, 7, 50359, 50363]] = [np.nan, np.inf, np.nan, np.inf]  # always banned: -inf
    return x


def filtered(seed: int, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(ours, openai-whisper's) filtered logits of one history row (upstream takes a (B, T)
    tensor of equal-length rows, so one row at a time)."""
    x = logits_with_specials(seed)[row:row + 1]
    hist = [HISTORIES[row]]
    suppress = [1, 2, 7, 50358, 50359, 50360, 50361, 50362]
    theirs = [whisper.decoding.SuppressBlank(TOK, SAMPLE_BEGIN),
              whisper.decoding.SuppressTokens(suppress),
              whisper.decoding.ApplyTimestampRules(TOK, SAMPLE_BEGIN, 50)]
    mine = [ours.SuppressBlank(TOK, SAMPLE_BEGIN), ours.SuppressTokens(suppress, N_VOCAB),
            ours.ApplyTimestampRules(TOK, SAMPLE_BEGIN, 50)]
    want = torch.tensor(x)
    for f in theirs:
        f.apply(want, torch.tensor(hist))  # in place
    got = mx.array(x)
    for f in mine:
        got = f.apply(got, hist)
    return np.asarray(got), want.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("row", range(len(HISTORIES)))
def test_filters_equal_openai(seed, row):
    got, want = filtered(seed, row)
    np.testing.assert_array_equal(got, want)
    assert np.isneginf(got[0, [1, 7, 50359, 50363]]).all()  # nan and +inf banned: -inf


def test_cases_include_a_forced_timestamp():
    # the timestamps' total probability beats every text token: all text is banned
    forced = [(seed, row) for seed in (0, 1, 2, 3) for row in range(len(HISTORIES))
              if np.isneginf(filtered(seed, row)[0][0, :50364]).all()]
    assert forced, "no case exercises the forced-timestamp rule"
