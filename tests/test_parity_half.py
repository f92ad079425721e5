"""Half precision in the parity harness: every spec has a measured float16 and bfloat16 table,
a spec without one is a clear error, and a bfloat16 run really runs the MLX side in bfloat16.

The tables themselves (k_rms + rtol per family, measured 2026-12-05) are documented in
docs/PRECISION.md and next to each table.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity import registry
from parity.runner import run
from parity.spec import DTYPES, GoldenCase, ModelSpec, ToleranceTable


def quiet(*_a, **_k):
    pass


def _spec(tolerances):
    return ModelSpec(
        name="half-toy", description="", weights="none", build_mlx=lambda d: None,
        build_reference=lambda: None, make_inputs=lambda c: None, taps=("a",),
        tolerances=tolerances, golden_cases=(GoldenCase("a", ""),))


def test_the_harness_knows_bfloat16():
    assert DTYPES == ("float32", "float16", "bfloat16")


@pytest.mark.parametrize("missing", ["float16", "bfloat16"])
def test_a_spec_without_a_half_table_is_an_error(missing):
    tables = {d: ToleranceTable(1e-5, 1e-5) for d in DTYPES if d != missing}
    with pytest.raises(ValueError, match=f"no tolerance table for \\['{missing}'\\]"):
        _spec(tables)
    assert _spec({d: ToleranceTable(1e-5, 1e-5) for d in DTYPES}).tolerance(missing)


def test_every_registered_spec_has_a_scale_tied_half_table():
    """The half tables are measured in k_rms (slack relative to the tap's RMS) with an rtol of
    about one unit of the format, never the old flat 5e-2 guess."""
    for spec in registry.SPECS:
        for d in ("float16", "bfloat16"):
            t = spec.tolerance(d)
            assert t.k_rms > 0, f"{spec.name} {d}: no k_rms"
            assert t.rtol <= 1e-2, f"{spec.name} {d}: rtol {t.rtol}"
            for o in t.overrides:
                assert "2026-12-05" in o.reason or "measured" in o.reason, (spec.name, o.pattern)


def test_cli_accepts_bfloat16(capsys):
    from parity.__main__ import main

    with pytest.raises(SystemExit):
        main(["run", "vocos-mel-test-tiny", "--dtype", "bfloat16x"])
    assert "bfloat16" in capsys.readouterr().err


def test_bfloat16_test_tiny_runs_end_to_end_in_bfloat16(tmp_path):
    """vocos-mel-test-tiny in bfloat16 against the float32 reference and its goldens passes its
    bf16 table, and the run is really bf16: its parameters are bf16 and its error is far above
    the float32 run's (a side that ignored the dtype would pass with fp32-sized errors)."""
    from parity import report

    spec = registry.get("vocos-mel-test-tiny")
    side = spec.build_mlx("bfloat16")
    import mlx.core as mx
    from mlx.utils import tree_flatten

    dtypes = {v.dtype for _, v in tree_flatten(side.model.parameters())}
    assert dtypes == {mx.bfloat16}, dtypes

    bf = run(spec, "bfloat16", checks=False, log=quiet)
    fp = run(spec, "float32", golden=False, checks=False, log=quiet)
    assert bf.passed, [(r.name, r.over_tol) for c in bf.cases for r in c.comparison.results
                       if not r.passed]
    assert {c.against for c in bf.cases} == {"reference", "golden"}
    worst = {r.name: r.max_abs for r in bf.cases[0].comparison.results}
    worst32 = {r.name: r.max_abs for r in fp.cases[0].comparison.results}
    assert worst["audio"] > 100 * worst32["audio"] > 0, (worst["audio"], worst32["audio"])
    md, js = report.write(bf, root=tmp_path)
    assert md.name == "vocos-mel-test-tiny-bfloat16.md" and js.exists()


def test_bfloat16_table_catches_a_bf16_sized_bug():
    """The bf16 table is not a pass-anything bound: one element of the decoded audio moved by
    0.2 x the tap's RMS (a few bf16 steps beyond its measured need) fails it."""
    from parity.metrics import tap_stats

    spec = registry.get("vocos-mel-test-tiny")
    tol, _ = spec.tolerance("bfloat16").for_tap("audio")
    want = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.04
    rms = float(np.sqrt(np.mean(want.astype(np.float64) ** 2)))
    bad = want.copy()
    bad[123] += 0.2 * rms
    assert tap_stats("audio", want, want, tol).passed
    assert not tap_stats("audio", bad, want, tol).passed


def test_chunked_encodec_float16_stays_finite_on_a_quiet_chunk():
    """The chunk RMS of EnCodec's normalisation is taken in float32: in float16 the squares of
    the fox clip's quiet first chunk underflowed, the 1e-8 guard rounded to 0 and every encoder
    tap was NaN (encodec-chunked-test-tiny, measured 2026-12-05)."""
    spec = registry.get("encodec-chunked-test-tiny")
    case = spec.golden_cases[0]
    taps = spec.build_mlx("float16")(spec.make_inputs(case).arrays)
    bad = [k for k, v in taps.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    assert not bad, bad
