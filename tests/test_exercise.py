"""Decoding-exercise requirements (parity/exercise.py): measured values on hand-made taps, an
unmet requirement fails the run and shows in the report, every registered spec declares some."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from parity import report
from parity.exercise import Exercise, ExerciseResult, distinct_along, evaluate
from parity.registry import SPECS
from parity.runner import run
from parity.spec import ModelSpec
from tests.test_parity_harness import TOY, quiet


def test_measured_values_on_hand_made_taps():
    tok = {"tokens": np.array([[5, 5, 5, 9, 1024, 1024, 7, 5]], dtype=np.int64)}
    assert Exercise("distinct", "tokens", 1).measure(tok, {}) == 4
    assert Exercise("distinct", "tokens", 1, ignore=(1024,)).measure(tok, {}) == 3
    assert Exercise("non_blank", "tokens", 0, blank=1024).measure(tok, {}) == 0.75
    assert Exercise("non_mode", "tokens", 0).measure(tok, {}) == 1 - 4 / 8
    assert Exercise("non_mode", "tokens", 0, ignore=(5,)).measure(tok, {}) == 1 - 2 / 4
    # codes (n_q, B, T): the fewest distinct codes of any codebook over time
    codes = np.array([[[1, 2, 3, 4]], [[7, 7, 7, 8]]], dtype=np.int64)
    assert Exercise("distinct", "c", 1).measure({"c": codes}, {}) == 2
    assert distinct_along(codes, 0) == 2  # along the codebooks: every frame has 2 codes
    assert distinct_along(np.array([[1, 1, 2], [1, 3, 3]]), 0) == 1  # frame 0: (1, 1)
    chunked = np.stack([codes, codes + 10])  # (chunks, n_q, B, T): per codebook over both
    assert distinct_along(chunked, (0, 3)) == 4 and distinct_along(chunked, -1) == 2
    # time_varying: constant + a zero-mean sine of amplitude a: rms(varying)/rms(all)
    t = np.arange(1000) / 1000
    lat = (3.0 + 0.3 * np.sin(2 * np.pi * 5 * t))[None, :, None] * np.ones((1, 1, 4))  # (B, T, C)
    want = 0.3 / np.sqrt(2) / np.sqrt(9 + 0.09 / 2)
    assert Exercise("time_varying", "z", 0, axis=1).measure({"z": lat}, {}) == pytest.approx(want)
    assert Exercise("time_varying", "z", 0, axis=2).measure({"z": lat}, {}) == 0.0
    # output_variance: std(out) / std(input)
    x = np.sin(2 * np.pi * 5 * t)
    got = Exercise("output_variance", "y", 0, input="audio").measure({"y": 0.5 * x + 2}, {"audio": x})
    assert got == pytest.approx(0.5)


def test_requirement_verdict_and_errors():
    e = Exercise("distinct", "tokens", 3)
    assert ExerciseResult(e, 3.0, 3.0).passed
    assert not ExerciseResult(e, 3.0, 2.0).passed  # either side short fails
    assert not ExerciseResult(e, 2.0, 3.0).passed
    assert ExerciseResult(e, None, 3.0).passed  # golden fingerprint: the MLX side alone
    assert not ExerciseResult(e, None, None).passed
    [r] = evaluate((Exercise("distinct", "nope", 1),), {}, {"tokens": np.zeros(3, int)}, {})
    assert not r.passed and "'nope' was not recorded" in r.error
    [r] = evaluate((Exercise("distinct", "x", 1),), {}, {"x": np.zeros(3, np.float32)}, {})
    assert not r.passed and "needs an integer" in r.error
    with pytest.raises(ValueError, match="needs blank="):
        Exercise("non_blank", "tokens", 0.5)
    with pytest.raises(ValueError, match="unknown exercise kind"):
        Exercise("varied", "tokens", 0.5)
    with pytest.raises(ValueError, match="not in its tap list"):
        dataclasses.replace(TOY, exercise=(Exercise("distinct", "logits", 2),))
    with pytest.raises(ValueError, match="need discrete taps"):
        dataclasses.replace(TOY, exercise=(Exercise("distinct", "fc2", 2),))


def test_an_unmet_requirement_fails_the_run_and_the_report_shows_it(tmp_path):
    # the toy's argmax over 4 classes on 5 rows: measure it, then require one more
    base = run(dataclasses.replace(TOY, exercise=(Exercise("distinct", "argmax", 1),)),
               "float32", golden=False, log=quiet)
    assert base.passed
    assert all(c.exercised[0].mlx == c.exercised[0].reference for c in base.cases)
    n = min(c.exercised[0].mlx for c in base.cases)
    ok = (Exercise("distinct", "argmax", n), Exercise("time_varying", "fc1", 0.5, axis=0))
    spec = dataclasses.replace(TOY, exercise=ok)
    res = run(spec, "float32", golden=False, log=quiet)
    assert res.passed
    short = dataclasses.replace(TOY, exercise=(*ok, Exercise("distinct", "argmax", n + 1)))
    res = run(short, "float32", golden=False, log=quiet)
    assert not res.passed and all(c.comparison.passed for c in res.cases)
    i = next(i for i, c in enumerate(base.cases) if c.exercised[0].mlx == n)
    assert [e.passed for e in res.cases[i].exercised] == [True, True, False]
    case = res.cases[i].case
    md, js = report.write(res, root=tmp_path)
    text = md.read_text()
    assert "## Decoding exercised" in text and text.startswith("# Parity: toy-mlp (float32)\n\n**FAIL (")
    assert f"| {case} | reference | distinct(argmax) >= {n + 1:g} | {n:g} | {n:g} | FAIL |" in text
    ex = json.loads(js.read_text())["cases"][i]["exercised"]
    assert ex[2] == {"requirement": f"distinct(argmax) >= {n + 1:g}", "kind": "distinct",
                     "tap": "argmax", "minimum": n + 1, "reference": n, "mlx": n,
                     "passed": False, "error": None}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_spec_declares_what_its_decoding_exercises(spec: ModelSpec):
    assert spec.exercise, f"{spec.name} declares no decoding exercise (ModelSpec.exercise)"
