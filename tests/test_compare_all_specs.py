"""A NaN tap, an Inf tap and a shape-mismatched tap fail every registered spec's comparison.

For each spec in `parity.registry.SPECS` and each of its dtype tables, both sides are replaced by
sides that return synthetic taps (the spec's own tap list, integers for its discrete taps). The
clean pair must pass through `parity.runner.run`; then a NaN, an Inf or a wrong shape is put into
one tap (first, middle and last in execution order), on either side, and the run must fail with
an error naming that tap, against the live reference and against a stored golden. The wrong shape
is one numpy would broadcast (one axis cut to 1).

The end-to-end checks that compare on their own rows of taps (mimi `roundtrip`, the codec
`roundtrip_check` of DAC and SNAC, BigVGAN `shared_speech`) are run through their real `Check.fn`
with stand-in sides, so a check that went back to an inline error ratio (NaN for a NaN tap, and
`nan > 1` is False) fails here.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from parity import runner
from parity.clips import SHARED_SPEECH
from parity.models import bigvgan, codec, dac, mimi, snac
from parity.registry import SPECS
from parity.spec import DTYPES, CaseInputs, GoldenCase, ModelSpec

ROOT = Path(__file__).resolve().parents[1]
DEFECTS = ("nan", "inf", "shape")
SIDES = ("mlx", "reference")
LARGE = (2, 6000)  # > golden.MAX_WHOLE elements: stored as a fingerprint in goldens


class FakeSide:
    """A built side that returns fixed taps (copies) whatever the inputs."""

    def __init__(self, taps: dict[str, np.ndarray]):
        self.taps, self.config, self.versions = taps, {}, {}

    def __call__(self, inputs, layer_taps: bool = True):
        return {k: v.copy() for k, v in self.taps.items()}


def synthetic_taps(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Small arrays for the spec's taps in execution order; the middle continuous tap is large
    enough to be fingerprinted in a golden."""
    rng = np.random.default_rng(seed)
    mid = len(spec.taps) // 2
    out = {}
    for i, t in enumerate(spec.taps):
        if t in spec.discrete:
            out[t] = rng.integers(0, 16, (2, 3)).astype(np.int64)
        else:
            out[t] = rng.standard_normal(LARGE if i == mid else (2, 3)).astype(np.float32)
    return out


def inject(a: np.ndarray, defect: str) -> np.ndarray:
    if defect == "shape":  # one axis cut to 1: numpy would broadcast it, the harness must not
        axis = next((i for i, n in enumerate(a.shape) if n > 1), None)
        return a[None].copy() if axis is None else np.take(a, [0], axis=axis)
    b = a.astype(np.float32)  # a discrete tap turns float: NaN/Inf cannot be integers
    b.flat[b.size // 2] = np.nan if defect == "nan" else np.inf
    return b


def positions(taps: tuple[str, ...]) -> dict[str, str]:
    """first, middle and last tap in execution order (fewer when the spec has fewer taps)."""
    return {t: where for where, t in (("last", taps[-1]), ("middle", taps[len(taps) // 2]),
                                      ("first", taps[0]))}


def fake_spec(spec: ModelSpec, got: dict, want: dict) -> ModelSpec:
    """The spec with synthetic sides; its decoding requirements dropped (random synthetic taps
    exercise no decoding; tests/test_exercise.py covers those)."""
    return dataclasses.replace(
        spec, build_mlx=lambda dtype: FakeSide(got), build_reference=lambda: FakeSide(want),
        make_inputs=lambda case: CaseInputs({"x": np.zeros(3, np.float32)}, {}),
        golden_cases=(GoldenCase("synthetic", "synthetic taps"),), checks=(), exercise=())


def expect_error(res: runner.RunResult, tap: str, what: str) -> list[str]:
    """Problems with a run that should have failed on `tap` (empty list: it failed right)."""
    if res.passed:
        return [f"{what}: PASSED"]
    errors = [c.error for c in res.cases if c.error]
    if not errors:
        return [f"{what}: failed without a hard error (a tolerance failure instead)"]
    if not any(repr(tap) in e for e in errors):
        return [f"{what}: error does not name the tap: {errors}"]
    return []


def test_every_spec_is_covered():
    assert len(SPECS) >= 37 and all(set(DTYPES) <= set(s.tolerances) for s in SPECS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_defective_tap_fails_against_reference(spec, dtype):
    clean = synthetic_taps(spec)
    res = runner.run(fake_spec(spec, clean, clean), dtype, golden=False, log=lambda m: None)
    assert res.passed, [(c.case, c.error) for c in res.cases]
    assert len(res.cases[0].comparison.results) == len(spec.taps)
    problems = []
    for tap, where in positions(spec.taps).items():
        for defect in DEFECTS:
            for side in SIDES:
                bad = dict(clean)
                bad[tap] = inject(clean[tap], defect)
                got, want = (bad, clean) if side == "mlx" else (clean, bad)
                res = runner.run(fake_spec(spec, got, want), dtype, golden=False,
                                 log=lambda m: None)
                problems += expect_error(res, tap, f"{defect} in {where} tap {tap!r} ({side})")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_defective_tap_fails_against_golden(spec, tmp_path):
    clean = synthetic_taps(spec)
    runner.generate_golden(fake_spec(spec, clean, clean), log=lambda m: None, root=tmp_path)
    problems = []
    for dtype in DTYPES:
        res = runner.run(fake_spec(spec, clean, clean), dtype, reference=False,
                         log=lambda m: None, golden_root=tmp_path)
        assert res.passed, [(c.case, c.error) for c in res.cases]
        for tap, where in positions(spec.taps).items():
            for defect in DEFECTS:
                bad = dict(clean)
                bad[tap] = inject(clean[tap], defect)
                res = runner.run(fake_spec(spec, bad, clean), dtype, reference=False,
                                 log=lambda m: None, golden_root=tmp_path)
                problems += expect_error(res, tap, f"{dtype}: {defect} in {where} tap {tap!r}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------
# checks that compare rows of taps on their own, through their real Check.fn


def _sweep(taps: dict, run_check, discrete=()) -> list[str]:
    """Run a check on clean taps (must pass), then with each defect in each tap on either side
    (must fail with an error naming the tap). `run_check(want, got) -> CheckResult`."""
    res = run_check(taps, taps)
    assert res.passed and res.error is None, (res.summary, res.rows)
    problems = []
    for tap in taps:
        for defect in DEFECTS:
            for side in SIDES:
                bad = dict(taps)
                bad[tap] = inject(taps[tap], defect)
                want, got = (taps, bad) if side == "mlx" else (bad, taps)
                res = run_check(want, got)
                what = f"{defect} in {tap!r} ({side})"
                errors = [r.get("error") or "" for r in res.rows] + [res.error or ""]
                if res.passed:
                    problems.append(f"{what}: PASSED")
                elif not any(repr(tap) in e for e in errors):
                    problems.append(f"{what}: no error naming the tap: {errors}")
    return problems


def _over_tolerance(taps: dict, run_check, tap: str, table) -> None:
    """A value just inside the tolerance passes; one just outside fails, naming the tap. The
    bound is the harness's rule: max(atol, k_rms * rms(reference tap)) + rtol |reference|."""
    tol = table.for_tap(tap)[0]
    w = taps[tap].astype(np.float64)
    floor = tol.floor(float(np.sqrt(np.mean(w * w))))
    for factor, passes in ((0.5, True), (2.0, False)):
        got = dict(taps)
        g = w.copy()
        g.flat[0] += factor * (floor + tol.rtol * abs(g.flat[0]))
        got[tap] = g.astype(np.float32)
        res = run_check(taps, got)
        assert res.passed == passes, (factor, res.rows)
        if not passes:
            assert tap in res.rows[0]["failing_taps"], res.rows


def mimi_taps(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {t: rng.standard_normal((1, 24, 1)).astype(np.float32)
           for t in mimi.tap_names(mimi.TEST_TINY_CONFIG)}
    out["audio_codes"] = rng.integers(0, 16, (1, 2, 3)).astype(np.int64)
    out["streaming.audio_values"] = out["audio_values"].copy()
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_mimi_roundtrip_check_fails_on_defects(monkeypatch, dtype):
    sides = {}
    monkeypatch.setattr(mimi, "ReferenceSide", lambda config: FakeSide(sides["want"]))
    monkeypatch.setattr(mimi, "MlxSide", lambda config, dt: FakeSide(sides["got"]))
    monkeypatch.setattr(mimi, "_check_clips", lambda: [{"id": "synthetic", "folder": "tests"}])
    monkeypatch.setattr(mimi, "read_clip", lambda entry: np.zeros(24, np.float32))
    check = mimi.roundtrip_check_for(mimi.TEST_TINY_CONFIG, (2,))

    def run_check(want, got):
        sides.update(want=want, got=got)
        return check.fn(dtype, lambda m: None)

    taps = mimi_taps()
    assert not _sweep(taps, run_check)
    assert mimi.MIMI.checks[0].fn.__code__ is check.fn.__code__  # the registered check
    table = mimi.TABLES[dtype]
    # a half-precision table's k_rms slack on the decoded audio would also trip the 60 dB SNR gate
    for tap in ("input_values", "decoder_transformer.layers.0") + (
            ("audio_values",) if dtype == "float32" else ()):
        _over_tolerance(taps, run_check, tap, table)


@pytest.mark.skipif(not (SHARED_SPEECH / "manifest.jsonl").exists(),
                    reason="../shared/speech is absent: the codec check is \"not run\" there (a run FAIL)")
@pytest.mark.parametrize("spec", [dac.DAC_44KHZ, snac.SNAC_24KHZ], ids=lambda s: s.name)
def test_codec_roundtrip_check_fails_on_defects(spec):
    (check,) = spec.checks
    code_taps = tuple(t for t in spec.taps if t in spec.discrete)
    rng = np.random.default_rng(0)
    taps = {"input_values": rng.standard_normal((1, 40)).astype(np.float32),
            **{t: rng.integers(0, 16, (1, 2, 5)).astype(np.int64) for t in code_taps}}
    taps["audio_values"] = (taps["input_values"] + 1e-4 * rng.standard_normal((1, 40))).astype(
        np.float32)

    def run_check(want, got):
        fake = codec.roundtrip_check(check.name, codec.SHARED_CLIP, lambda audio: {},
                                     lambda: FakeSide(want), lambda dtype: FakeSide(got),
                                     code_taps)
        return fake.fn("float32", lambda m: None)

    assert not _sweep(taps, run_check)
    # the spec's registered check is a closure of this same factory
    assert check.fn.__code__ is codec.roundtrip_check(
        check.name, codec.SHARED_CLIP, None, None, None, code_taps).fn.__code__


@pytest.mark.skipif(not (SHARED_SPEECH / "manifest.jsonl").exists(),
                    reason="../shared/speech is absent: the BigVGAN check is \"not run\" there (a run FAIL)")
def test_bigvgan_shared_speech_check_fails_on_defects(monkeypatch):
    sides = {}
    monkeypatch.setattr(bigvgan, "ReferenceSide", lambda config: FakeSide(sides["want"]))
    monkeypatch.setattr(bigvgan, "MlxSide", lambda config, dt: FakeSide(sides["got"]))
    monkeypatch.setattr(bigvgan, "make_inputs_for",
                        lambda config: lambda case: CaseInputs({}, {}))
    check = bigvgan.shared_speech_check(bigvgan.TEST_TINY_CONFIG)

    def run_check(want, got):
        sides.update(want=want, got=got)
        return check.fn("float32", lambda m: None)

    rng = np.random.default_rng(0)
    taps = {"mel": rng.standard_normal((4, 5)).astype(np.float32),
            "audio": rng.standard_normal((1, 30)).astype(np.float32)}
    assert not _sweep(taps, run_check)
    assert bigvgan.BIGVGAN_V2_24KHZ.checks[0].fn.__code__ is check.fn.__code__  # registered
    _over_tolerance(taps, run_check, "mel", bigvgan.FP32)
    _over_tolerance(taps, run_check, "audio", bigvgan.FP32)


def test_no_spec_computes_its_own_error_ratio():
    """Element-wise tolerance arithmetic lives in parity/metrics.py and parity/compare.py only."""
    pattern = re.compile(r"\.rtol\s*\*|\.atol\s*\+|allclose|isclose|err\s*/\s*\(")
    found = []
    for path in sorted((ROOT / "parity").rglob("*.py")):
        if path.name in ("metrics.py", "compare.py") and path.parent.name == "parity":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code):
                found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, ("compare through parity.compare (compare_taps / compare_row), not inline:\n"
                       + "\n".join(found))
