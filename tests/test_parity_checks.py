"""Checks that cannot run, metric goals, and the Whisper check's forced temperature fallback.

- A check whose inputs are missing is "not run" and fails the run, with its reason in the report.
- A metric under its goal fails its case; a NaN metric is a hard error.
- With the shared speech folder pointed at an empty folder (PARITY_SHARED_SPEECH), every
  real-speech check is "not run", naming the manifest path it looked for.
- Sampling with injected Gumbel noise draws identical tokens in our decoder and in openai-whisper
  (reference.whisper.sampling_noise), and the forced fallback transcribes identically.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from parity import report
from parity.runner import run
from parity.spec import Check, CheckResult, Goal, Metric
from tests.test_parity_harness import TOY


def quiet(*_a, **_k):
    pass


# ------------------------------------------------------------------------------------------
# check status


def test_a_check_that_did_not_run_fails_the_run_with_its_reason(tmp_path):
    reason = "the real-speech clips are missing: no /nowhere/manifest.jsonl"
    spec = dataclasses.replace(TOY, checks=(
        Check("speech", "needs real speech", lambda dtype, log: CheckResult.missing("speech",
                                                                                    reason)),))
    res = run(spec, "float32", golden=False, log=quiet)
    assert all(c.passed for c in res.cases)
    assert res.checks[0].status == "not run" and not res.passed
    assert report.run_verdict(res).startswith(f"FAIL (check speech not run: {reason}")
    md, js = report.write(res, root=tmp_path)
    text = md.read_text()
    assert "## check speech: NOT RUN" in text and reason in text
    data = json.loads(js.read_text())
    assert data["passed"] is False
    assert data["checks"][0]["status"] == "not run" and data["checks"][0]["not_run"] == reason


def test_a_not_run_check_cannot_claim_a_pass():
    with pytest.raises(ValueError, match="cannot pass"):
        CheckResult("speech", True, {}, [], not_run="no clips")
    assert CheckResult("a", True, {}, []).status == "passed"
    assert CheckResult("a", False, {}, []).status == "failed"


def test_checks_left_out_on_request_are_listed_not_hidden():
    spec = dataclasses.replace(TOY, checks=(
        Check("speech", "x", lambda dtype, log: CheckResult("speech", True, {}, [])),))
    res = run(spec, "float32", golden=False, log=quiet, checks=False)
    assert res.passed and not res.checks
    assert res.checks_skipped == {"speech": "not run by request (--no-checks)"}
    assert "checks left out: speech: not run by request (--no-checks)" in report.run_verdict(res)


# ------------------------------------------------------------------------------------------
# metric goals


def _with_metric(value: float, goal: Goal) -> object:
    return dataclasses.replace(TOY, metrics=(Metric("snr", "a metric", lambda r, g: value,
                                                    goal=goal),))


def test_a_metric_under_its_goal_fails_the_case_and_the_report_shows_value_and_goal(tmp_path):
    goal = Goal("test goal", at_least=60.0)
    ok = run(_with_metric(61.0, goal), "float32", golden=False, log=quiet)
    assert ok.passed and ok.cases[0].goals["snr"]["met"]
    low = run(_with_metric(59.0, goal), "float32", golden=False, log=quiet)
    assert not low.passed
    assert all(c.comparison.passed for c in low.cases)  # only the goal fails
    assert low.cases[0].goals_missed == ["snr"]
    md, _ = report.write(low, root=tmp_path)
    assert "- snr: 59 (goal >= 60: MISSED; test goal)" in md.read_text()
    assert "metric snr missed its goal >= 60" in report.run_verdict(low)
    high = run(_with_metric(0.2, Goal("diff", at_most=0.1)), "float32", golden=False, log=quiet)
    assert not high.passed


def test_a_goal_outside_its_dtypes_is_reported_not_gated():
    res = run(_with_metric(50.0, Goal("fp32 goal", at_least=60.0)), "float16", golden=False,
              log=quiet)
    g = res.cases[0].goals["snr"]
    assert not g["met"] and not g["gated"] and res.passed


def test_a_nan_metric_with_a_goal_is_a_hard_error():
    res = run(_with_metric(float("nan"), Goal("g", at_least=60.0)), "float32", golden=False,
              log=quiet)
    assert not res.passed and "NaN" in res.cases[0].error


def test_goal_takes_exactly_one_bound_and_a_reason():
    for bad in (dict(why="x"), dict(why="x", at_least=1.0, at_most=2.0), dict(why=" ", at_least=1)):
        with pytest.raises(ValueError):
            Goal(**bad)


def test_codec_snr_and_roundtrip_goals_are_gated_in_fp32():
    from parity.registry import get

    for name in ("dac-24khz", "snac-24khz", "encodec-24khz", "mimi", "vocos-mel-24khz",
                 "bigvgan-v2-24khz"):
        goals = {m.name: m.goal for m in get(name).metrics if m.goal is not None}
        assert goals["decoded_snr_db"].at_least == 60.0, name
        assert goals["decoded_snr_db"].dtypes == ("float32",), name
        if name != "bigvgan-v2-24khz":
            assert goals["roundtrip_snr_abs_diff_db"].at_most == 0.1, name


# ------------------------------------------------------------------------------------------
# real-speech checks without the shared clips


@pytest.mark.needs_weights
@pytest.mark.parametrize("spec_name", ["whisper-base", "dac-24khz", "snac-24khz",
                                       "bigvgan-v2-24khz", "mimi", "s3tokenizer-v1"])
def test_real_speech_checks_are_not_run_naming_the_path(spec_name, monkeypatch, tmp_path):
    """PARITY_SHARED_SPEECH at an empty folder: each check that needs real speech is "not run"
    (a run FAIL) naming the manifest path, before building either side."""
    from parity.registry import get

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PARITY_SHARED_SPEECH", str(empty))
    checks = [c for c in get(spec_name).checks if "default" in c.tiers]
    assert checks, f"{spec_name} has no default-tier check"
    for check in checks:
        res = check.fn("float32", quiet)
        assert res.status == "not run", (spec_name, check.name, res)
        assert str(empty / "manifest.jsonl") in res.not_run, res.not_run
        assert "PARITY_SHARED_SPEECH" in res.not_run


def test_shared_speech_follows_the_environment(monkeypatch, tmp_path):
    from parity import clips

    monkeypatch.delenv("PARITY_SHARED_SPEECH", raising=False)
    assert clips.shared_speech() == clips.SHARED_SPEECH
    monkeypatch.setenv("PARITY_SHARED_SPEECH", str(tmp_path))
    assert clips.shared_speech() == tmp_path
    assert str(tmp_path / "manifest.jsonl") in clips.missing_shared_speech()


# ------------------------------------------------------------------------------------------
# sampling with the same injected noise on both sides


def test_injected_gumbel_noise_draws_the_same_tokens_in_both_decoders():
    """Our GreedyDecoder and openai-whisper's (inside sampling_noise) given the same logits and
    noise pick argmax(logits / T + g); with another noise they pick other tokens."""
    import mlx.core as mx
    import torch
    import whisper.decoding as upstream

    from mlx_impl.whisper.decoding import GreedyDecoder
    from parity.models.whisper_transcription import ReplayedNoise
    from reference.whisper import sampling_noise

    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((4, 51865)) * 3).astype(np.float32)  # (rows, vocab)
    t, eot = 0.7, 50256
    ours = GreedyDecoder(t, eot, noise=ReplayedNoise(5))
    theirs_noise = ReplayedNoise(5)
    theirs = upstream.GreedyDecoder(t, eot)
    got = np.array(ours.propose(mx.array(logits))[0])
    with sampling_noise(theirs_noise):
        tokens, _ = theirs.update(torch.zeros((4, 1), dtype=torch.long), torch.from_numpy(logits),
                                  torch.zeros(4))
    want = tokens[:, -1].numpy()
    g = ReplayedNoise(5)(logits.shape)
    assert (got == want).all() and (got == np.argmax(logits / t + g, axis=-1)).all(), (got, want)
    other = np.array(GreedyDecoder(t, eot, noise=ReplayedNoise(6)).propose(mx.array(logits))[0])
    assert (other != got).any()  # the draw follows the noise
    assert upstream.Categorical is torch.distributions.Categorical  # restored on exit


@pytest.mark.needs_weights
def test_forced_fallback_transcribes_identically_on_tiny_en():
    """whisper-tiny.en on a committed fixture with the forced fallback (every temperature, best
    of 2, same noise): identical tokens, segments, temperatures and noise draws."""
    from parity.clips import FIXTURES, read_clip
    from parity.models import whisper_transcription as T

    _, audio = read_clip("espeak_en_fox", FIXTURES)
    ours, d_ours = T.transcribe_job("ours", "whisper-tiny.en", audio, "fallback")
    theirs, d_theirs = T.transcribe_job("openai", "whisper-tiny.en", audio, "fallback")
    clip = {"id": "espeak_en_fox", "language": "en", "text": "x"}
    row, _ = T._row(clip, "fallback", ours, theirs, (d_ours, d_theirs))
    assert row["tokens_identical"], row
    assert d_ours == d_theirs > 0
    assert row["temperatures"] == f"{T.FALLBACK['temperature'][-1]:g}", row
    assert T.row_failures(row) == [], row


def test_row_failures_names_what_differs():
    from parity.models.whisper_transcription import row_failures

    row = {"clip": "a", "strategy": "fallback", "tokens_identical": True, "first_difference": "-",
           "language": "en/en", "segments": "1/1", "temperatures": "0.8", "noise_draws": "30/30",
           "segment_max_ms": 0.0, "avg_logprob_max_diff": 1e-5, "no_speech_max_diff": 1e-7,
           "word_max_ms": 0.0, "error_ours": 0.0, "error_openai": 0.0}
    assert row_failures(row) == []
    assert row_failures(dict(row, avg_logprob_max_diff=1e-3))[0].startswith("avg_logprob")
    assert row_failures(dict(row, no_speech_max_diff=float("nan")))[0].startswith("no_speech")
    assert row_failures(dict(row, temperatures="0")) == ["the forced fallback did not sample"]
    assert row_failures(dict(row, noise_draws="30/31")) == ["noise draws differ"]
    assert row_failures(dict(row, segment_max_ms=40.0))[0].startswith("segment_max_ms")
