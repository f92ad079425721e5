"""The generic harness on hand-made arrays and a toy spec (2-layer MLP, MLX against torch)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity import golden as golden_store
from parity import report
from parity.compare import (
    Fingerprint,
    Grid,
    compare_fingerprint,
    compare_row,
    compare_taps,
    stale_overrides,
)
from parity.metrics import at_least, at_most, discrete_stats, snr_db, tap_stats
from parity.runner import generate_golden, run
from parity.spec import (
    CaseInputs,
    GoldenCase,
    ModelSpec,
    Override,
    ParityError,
    Tolerance,
    ToleranceTable,
    fp32_table,
)
from tests.helpers import assert_close, assert_spec_passes

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# toy spec: x (B, 8) -> fc1 (16) -> tanh -> fc2 (4) -> argmax; MLX side against torch hooks

TOY_TAPS = ("fc1", "act", "fc2", "argmax")


def toy_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"fc1.weight": rng.standard_normal((16, 8)).astype(np.float32) / 3,
            "fc1.bias": rng.standard_normal(16).astype(np.float32) / 10,
            "fc2.weight": rng.standard_normal((4, 16)).astype(np.float32) / 4,
            "fc2.bias": rng.standard_normal(4).astype(np.float32) / 10}


class ToyMlx:
    def __init__(self, dtype: str, weights: dict | None = None):
        import mlx.core as mx

        self.mx = mx
        from mlx_impl.loading import as_dtype

        self.dt = as_dtype(dtype)
        self.w = {k: mx.array(v).astype(self.dt) for k, v in (weights or toy_weights()).items()}
        self.config = {"width": 16}
        self.versions = {"mlx": mx.__version__}

    def __call__(self, inputs):
        mx, w = self.mx, self.w
        x = mx.array(inputs["x"]).astype(self.dt)
        taps = {}
        taps["fc1"] = h = x @ w["fc1.weight"].T + w["fc1.bias"]
        taps["act"] = a = mx.tanh(h)
        taps["fc2"] = y = a @ w["fc2.weight"].T + w["fc2.bias"]
        taps["argmax"] = mx.argmax(y, axis=-1)
        # numpy has no bfloat16: such taps come back as float32 (exact)
        out = {k: np.array(v.astype(mx.float32) if v.dtype == mx.bfloat16 else v)
               for k, v in taps.items()}
        out["argmax"] = out["argmax"].astype(np.int64)
        return out


class ToyTorch:
    def __init__(self):
        import torch

        self.torch = torch
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                       torch.nn.Linear(16, 4))
        w = toy_weights()
        self.net.load_state_dict({k.replace("fc1", "0").replace("fc2", "2"): torch.from_numpy(v)
                                  for k, v in w.items()}, strict=True)
        self.config = {"width": 16}
        self.versions = {"torch": torch.__version__}

    def __call__(self, inputs):
        torch, taps = self.torch, {}
        hooks = [self.net[i].register_forward_hook(
            lambda m, i_, o, n=n: taps.__setitem__(n, o.detach().numpy().copy()))
            for i, n in ((0, "fc1"), (1, "act"), (2, "fc2"))]
        try:
            with torch.no_grad():
                y = self.net(torch.from_numpy(inputs["x"]))
        finally:
            for h in hooks:
                h.remove()
        taps["argmax"] = y.argmax(-1).numpy().astype(np.int64)
        return taps


def toy_inputs(case: GoldenCase) -> CaseInputs:
    rng = np.random.default_rng(case.params["seed"])
    return CaseInputs({"x": rng.standard_normal((5, 8)).astype(np.float32)},
                      {"seed": case.params["seed"]})


TOY = ModelSpec(
    name="toy-mlp", description="2-layer MLP", weights="seeded random weights, not trained",
    build_mlx=ToyMlx, build_reference=ToyTorch, make_inputs=toy_inputs, taps=TOY_TAPS,
    tolerances={"float32": ToleranceTable(1e-6, 1e-6),
                "float16": ToleranceTable(2e-3, 2e-3, (Override("act", 5e-3, 5e-3, "test"),)),
                "bfloat16": ToleranceTable(1e-5, 1e-2, k_rms=5e-2)},
    golden_cases=(GoldenCase("a", "seed 1", {"seed": 1}), GoldenCase("b", "seed 2", {"seed": 2})),
    discrete=("argmax",), config={"width": 16})


def quiet(*_a, **_k):
    pass


# ------------------------------------------------------------------------------------------
# statistics on hand-made arrays


def test_stats_on_hand_made_arrays():
    want = np.array([[1.0, -2.0], [4.0, 0.5]], dtype=np.float32)
    got = np.array([[1.1, -2.0], [3.0, 0.5]], dtype=np.float32)
    s = tap_stats("t", got, want, Tolerance(atol=0.5, rtol=0.1))
    d = np.abs(got.astype(np.float64) - want)
    assert_close("max_abs", s.max_abs, 1.0, atol=1e-6)
    assert_close("mean_abs", s.mean_abs, d.mean(), atol=1e-9)
    assert_close("max_rel", s.max_rel, 0.25, atol=1e-6)  # |3-4|/4 beats |1.1-1|/1
    g, w = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    assert_close("cosine", s.cosine, g @ w / np.linalg.norm(g) / np.linalg.norm(w), atol=1e-12)
    assert_close("snr", s.snr_db, 10 * np.log10((w ** 2).sum() / ((g - w) ** 2).sum()), atol=1e-9)
    # element (1,0): diff 1.0 > 0.5 + 0.1*4 = 0.9 -> fails; needs atol 1.0-0.4 = 0.6 at rtol 0.1,
    # or rtol (1.0-0.5)/4 = 0.125 at atol 0.5
    assert not s.passed and s.n_fail == 1 and s.worst_index == (1, 0)
    assert_close("needed_atol", s.needed_atol, 0.6, atol=1e-6)
    assert_close("needed_rtol", s.needed_rtol, 0.125, atol=1e-6)
    assert (s.worst_got, s.worst_want) == (pytest.approx(3.0), pytest.approx(4.0))
    s2 = tap_stats("t", got, want, Tolerance(atol=s.needed_atol + 1e-6, rtol=0.1))
    assert s2.passed and s2.n_fail == 0
    same = tap_stats("t", want, want, Tolerance(0, 0))
    assert same.passed and same.snr_db == float("inf") and same.cosine == pytest.approx(1.0)


def test_max_rel_is_inf_where_reference_is_zero():
    s = tap_stats("t", np.array([0.0, 1e-3]), np.array([0.0, 0.0]), Tolerance(1e-2, 0))
    assert s.max_rel == float("inf") and s.passed and s.needed_rtol == 0.0


def test_discrete_reports_first_mismatch():
    want = np.array([[1, 2, 3, 4]])
    r = discrete_stats("tok", np.array([[1, 2, 9, 7]]), want)
    assert (r.passed, r.n_mismatch, r.first_index, r.first_got, r.first_want) == (
        False, 2, (0, 2), 9, 3)
    assert discrete_stats("tok", want.copy(), want).passed


# ------------------------------------------------------------------------------------------
# hard errors

TABLE = ToleranceTable(1e-5, 1e-5)


def test_zero_taps_is_an_error():
    with pytest.raises(ParityError, match="zero taps"):
        compare_taps({"a": np.ones(2)}, {"a": np.ones(2)}, [], TABLE)


def test_missing_tap_lists_both_sides():
    with pytest.raises(ParityError) as e:
        compare_taps({"enc.0": np.ones(2)}, {"enc.1": np.ones(2)}, ["enc.1"], TABLE)
    msg = str(e.value)
    assert "missing in mlx: ['enc.1']" in msg and "recorded ['enc.0']" in msg


def test_nan_is_an_error_on_either_side():
    bad = np.array([1.0, np.nan])
    with pytest.raises(ParityError, match="mlx side has 1 NaN/Inf"):
        compare_taps({"a": bad}, {"a": np.ones(2)}, ["a"], TABLE)
    with pytest.raises(ParityError, match="reference side has 1 NaN/Inf"):
        compare_taps({"a": np.ones(2)}, {"a": np.array([np.inf, 1.0])}, ["a"], TABLE)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ParityError, match=r"shape mismatch, mlx \(2, 3\) vs reference \(3, 2\)"):
        compare_taps({"a": np.ones((2, 3))}, {"a": np.ones((3, 2))}, ["a"], TABLE)


def test_over_tol_is_the_error_in_units_of_the_tolerance():
    s = tap_stats("t", np.array([1.0, 2.3]), np.array([1.0, 2.0]), Tolerance(0.1, 0.05))
    assert_close("over_tol", s.over_tol, 0.3 / (0.1 + 0.05 * 2.0), rtol=1e-12)
    assert not s.passed
    zero = tap_stats("t", np.array([1.0, 1e-9]), np.array([1.0, 0.0]), Tolerance(0.0, 0.5))
    assert zero.over_tol == float("inf") and not zero.passed


def test_compare_row_turns_hard_errors_into_a_failed_row_naming_the_tap():
    want = {"a": np.ones(3, np.float32), "codes": np.arange(3)}
    ok = compare_row(dict(want), want, TABLE, discrete=("codes",))
    assert ok == {"passed": True, "error": None, "failing_taps": [], "worst_tap": "a",
                  "worst_over_tolerance": 0.0}
    over = compare_row({"a": want["a"] + 3e-5, "codes": want["codes"]}, want, TABLE,
                       discrete=("codes",))
    assert not over["passed"] and over["failing_taps"] == ["a"] and over["error"] is None
    diff = float(np.float32(1 + 3e-5)) - 1.0  # fp32 rounding of the perturbation
    assert_close("worst", over["worst_over_tolerance"], diff / (1e-5 + 1e-5 * 1.0), rtol=1e-12)
    for bad in (np.array([1.0, np.nan, 1.0]), np.array([np.inf, 1, 1]), np.ones((1, 3))):
        row = compare_row({"a": bad, "codes": want["codes"]}, want, TABLE, discrete=("codes",))
        assert not row["passed"] and "'a'" in row["error"], row
    row = compare_row({"a": want["a"]}, want, TABLE, discrete=("codes",))
    assert not row["passed"] and "missing in mlx: ['codes']" in row["error"]


def test_snr_and_gates_never_pass_on_nan_or_broadcast():
    w = np.array([1.0, -1.0, 2.0])
    assert_close("snr", snr_db(w, w + [0.1, 0, 0]), 10 * np.log10(6 / 0.01), rtol=1e-12)
    assert snr_db(w, w) == float("inf")
    with pytest.raises(ParityError, match="'audio': shape mismatch"):
        snr_db(w[None], np.ones((2, 3)))  # would broadcast
    with pytest.raises(ParityError, match="'x': mlx side has 1 NaN/Inf"):
        snr_db(w, np.array([1.0, np.nan, 2.0]), "x")
    assert at_least("snr", float("inf"), 60) and not at_least("snr", 59.9, 60)
    assert at_most("diff", 0.1, 0.1) and not at_most("diff", 0.2, 0.1)
    for gate in (at_least, at_most):
        with pytest.raises(ParityError, match="snr is NaN"):
            gate("snr", float("nan"), 60)


def test_assert_close_message_has_the_statistics():
    want = np.array([[1.0, 2.0], [4.0, 0.5]])
    assert_close("same", want.astype(np.float32), want, atol=1e-7)
    with pytest.raises(AssertionError) as e:
        assert_close("x", [[1.0, 2.0], [3.0, 0.5]], want, atol=0.5, rtol=0.1)
    msg = str(e.value)
    for part in ("x (2, 2): 1/4 elements outside floor 0.5 = max(atol 0.5, k_rms 0 x rms 2.3) "
                 "+ rtol 0.1 |want|", "max_abs 1 ", "max_rel 0.25",
                 "needs floor >= 0.6 (k 0.26, at rtol 0.1) or rtol >= 0.125 (at floor 0.5)",
                 "worst at (1, 0): got 3.0 want 4.0"):
        assert part in msg, msg
    # k_rms: the floor follows the reference's RMS (2.3 here): 0.3 x 2.3 = 0.69 >= 0.6 passes
    assert_close("k", [[1.0, 2.0], [3.0, 0.5]], want, atol=0.0, rtol=0.1, k_rms=0.3)
    with pytest.raises(AssertionError, match=r"floor 0.461 = max\(atol 0, k_rms 0.2"):
        assert_close("k", [[1.0, 2.0], [3.0, 0.5]], want, atol=0.0, rtol=0.1, k_rms=0.2)
    with pytest.raises(AssertionError, match=r"shape \(1, 2\) != expected \(2, 2\)"):
        assert_close("b", want[:1], want, atol=10)  # would broadcast
    with pytest.raises(AssertionError, match="got has 1 NaN/Inf of 4"):
        assert_close("n", np.where(want > 3, np.nan, want), want, atol=10)
    with pytest.raises(AssertionError, match="want has 1 NaN/Inf"):
        assert_close("n", want, np.where(want > 3, np.inf, want), atol=10)
    with pytest.raises(AssertionError, match="nothing compared"):
        assert_close("e", np.zeros(0), np.zeros(0))
    with pytest.raises(AssertionError, match="mean_abs 0.25 > mean_atol 0.1"):
        assert_close("m", want + [[0.5, 0.5], [0, 0]], want, atol=1, mean_atol=0.1)
    special = np.array([np.inf, np.nan, 1.0])
    assert_close("s", special.copy(), special, atol=0, match_nonfinite=True)
    with pytest.raises(AssertionError, match=r"special values differ at flat \[1\].*inputs"):
        assert_close("s", np.array([np.inf, 0.0, 1.0]), special, match_nonfinite=True,
                     inputs=np.array([7.0, 8.0, 9.0]))
    with pytest.raises(AssertionError, match="input 9.0"):
        assert_close("s", np.array([np.inf, np.nan, 2.0]), special, match_nonfinite=True,
                     inputs=np.array([7.0, 8.0, 9.0]))


def test_assert_spec_passes_runs_the_harness_and_prints_the_failing_table():
    res = assert_spec_passes(TOY)
    assert [c.against for c in res.cases] == ["reference", "reference"]
    broken = toy_weights()
    broken["fc2.weight"] = broken["fc2.weight"] * 1.01
    spec = dataclasses.replace(TOY, build_mlx=lambda dtype: ToyMlx(dtype, broken))
    with pytest.raises(AssertionError) as e:
        assert_spec_passes(spec)
    msg = str(e.value)
    assert "toy-mlp (float32) failed" in msg and "fc2" in msg and "FAIL" in msg, msg
    assert "needed floor (k)" in msg and "tol floor (k_rms) / rtol" in msg  # the table header


def test_override_needs_a_reason_and_first_match_wins():
    with pytest.raises(ValueError, match="no reason"):
        Override("x.*", 1, 1, " ")
    t = ToleranceTable(1e-6, 0, (Override("dec.*.mlp", 1e-3, 0, "r1"), Override("dec.*", 1, 0, "r2")))
    assert t.for_tap("dec.3.mlp")[0] == Tolerance(1e-3, 0)
    assert t.for_tap("dec.3.attn")[0] == Tolerance(1, 0)
    assert t.for_tap("enc.0")[0] == Tolerance(1e-6, 0)


# ------------------------------------------------------------------------------------------
# toy spec end to end


def test_toy_passes_and_compares_in_reference_order(tmp_path):
    res = run(TOY, "float32", golden=False, log=quiet)
    assert res.passed and len(res.cases) == 2
    assert [r.name for r in res.cases[0].comparison.results] == list(TOY_TAPS)
    for r in res.cases[0].comparison.results[:3]:
        assert r.max_abs < 1e-6 and r.cosine > 0.999999
    md, js = report.write(res, root=tmp_path)
    data = json.loads(js.read_text())
    assert data["passed"] and data["weights"] == "seeded random weights, not trained"
    assert "seeded random weights, not trained" in md.read_text()


def test_corrupted_weight_fails_at_the_first_diverging_tap(tmp_path):
    w = toy_weights()
    w["fc2.weight"] = w["fc2.weight"].copy()
    w["fc2.weight"][1, 3] += 0.05
    bad = dataclasses.replace(TOY, build_mlx=lambda dt: ToyMlx(dt, w))
    res = run(bad, "float32", golden=False, fail_fast=True, log=quiet)
    case = res.cases[0]
    assert not res.passed and len(res.cases) == 1  # --fail-fast stops after the first case
    names = [(r.name, r.passed) for r in case.comparison.results]
    assert names == [("fc1", True), ("act", True), ("fc2", False)]  # stops at fc2
    assert case.comparison.first_failure.name == "fc2"
    assert case.comparison.first_failure.worst_index[1] == 1  # column of the perturbed row
    assert "first failing tap 'fc2': worst index" in case.detail
    md, _ = report.write(res, root=tmp_path)
    assert "| fc2 |" in md.read_text() and "FAIL" in md.read_text()


def test_cli_exits_non_zero_on_failure(tmp_path, monkeypatch, capsys):
    from parity import __main__ as cli
    from parity import registry

    w = toy_weights()
    w["fc1.bias"] = w["fc1.bias"] + 1.0
    bad = dataclasses.replace(TOY, build_mlx=lambda dt: ToyMlx(dt, w))
    monkeypatch.setitem(registry.REGISTRY, "toy-mlp", bad)
    argv = ["run", "toy-mlp", "--no-golden", "--fail-fast", "--report-dir", str(tmp_path)]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "first failing tap 'fc1'" in out and "FAIL: toy-mlp" in out
    assert (tmp_path / "toy-mlp.md").exists() and (tmp_path / "toy-mlp.json").exists()


# ------------------------------------------------------------------------------------------
# golden store


def test_fingerprint_catches_an_error_outside_the_stored_elements():
    rng = np.random.default_rng(3)
    want = rng.standard_normal(100_000).astype(np.float32)
    grid = Grid.of(want.shape)
    idx = golden_store.sample_indices(grid)
    np.testing.assert_array_equal(idx, golden_store.sample_indices(grid))  # fixed set
    assert np.all(np.diff(idx) > 0) and idx.size >= golden_store.MIN_SAMPLES
    fp = Fingerprint.of(want, idx)
    tol = Tolerance(1e-4, 0)
    assert compare_fingerprint("t", want + 5e-5, fp, tol).passed
    got = want.copy()
    stored, _ = fp.checked()
    outside = np.setdiff1d(np.arange(want.size), stored)[:2000]
    got[outside] += 0.5  # moves the sums of the blocks holding them
    r = compare_fingerprint("t", got, fp, tol)
    assert not r.passed and "out of bounds" in r.note and r.needed_atol > 0.1, r.note


def test_pack_case_stores_whole_taps_and_fingerprints_with_shared_indices():
    rng = np.random.default_rng(4)
    small = rng.standard_normal(golden_store.MAX_WHOLE).astype(np.float32)
    big_a = rng.standard_normal((30, 500)).astype(np.float32)
    big_b = rng.standard_normal((30, 500)).astype(np.float32)  # same shape: shares the samples
    big_c = rng.standard_normal((500, 30)).astype(np.float32)  # same size, other grid
    codes = rng.integers(0, 9, (2, 7))
    tensors, entries = golden_store.pack_case(
        {"x": small}, {"small": small, "a": big_a, "b": big_b, "c": big_c, "codes": codes},
        discrete=("codes",))
    assert [e["kind"] for e in entries] == ["whole"] + ["fingerprint"] * 3 + ["discrete"]
    assert entries[1]["indices"] == entries[2]["indices"] == "index.30x500"
    assert entries[3]["indices"] == "index.500x30"
    assert sorted(k for k in tensors if k.startswith("index.")) == ["index.30x500",
                                                                    "index.500x30"]
    idx = tensors["index.30x500"]
    assert idx.size >= golden_store.MIN_SAMPLES
    np.testing.assert_array_equal(tensors["fp.b.values"], big_b.ravel()[idx])
    np.testing.assert_array_equal(tensors["fp.b.edges"], big_b[[0, -1]])  # first, last frame
    rows, cols = tensors["fp.b.rows"], tensors["fp.b.cols"]
    assert rows.shape == (4, 30) and cols.shape == (4, 500)  # every frame, every channel
    assert_close("frame sums", rows[0], big_b.sum(1), atol=1e-4)
    assert_close("channel L2", cols[1], np.linalg.norm(big_b, axis=0), atol=1e-4)
    assert_close("frame max", rows[3], big_b.max(1), atol=0)
    assert_close("channel min", cols[2], big_b.min(0), atol=0)
    np.testing.assert_array_equal(tensors["taps.small"], small)
    assert tensors["taps.codes"].dtype == np.int64


def test_golden_round_trip_and_tamper(tmp_path):
    spec = dataclasses.replace(TOY, name="toy-rt")
    generate_golden(spec, log=quiet, root=tmp_path)
    manifest = json.loads((tmp_path / "toy-rt" / "manifest.json").read_text())
    assert manifest["format_version"] == golden_store.FORMAT_VERSION
    assert manifest["generator"] == "python -m parity golden toy-rt"
    assert manifest["packages"]["torch"] and manifest["tolerances"]["float32"]["atol"] == 1e-6
    assert [t["name"] for t in manifest["cases"][0]["taps"]] == list(TOY_TAPS)
    g = golden_store.read("toy-rt", root=tmp_path)
    ref = ToyTorch()
    for case in g.cases:
        fresh = ref(case.inputs)
        for name in TOY_TAPS:
            assert_close(name, case.taps[name], fresh[name])
    res = run(spec, "float32", reference=False, golden_root=tmp_path, log=quiet)
    assert res.passed and [c.against for c in res.cases] == ["golden", "golden"]
    # regenerating replaces the directory atomically, leaving no temporary siblings
    generate_golden(spec, log=quiet, root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-rt"]
    f = tmp_path / "toy-rt" / "a.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(golden_store.GoldenError, match="sha256"):
        golden_store.read("toy-rt", root=tmp_path)


def test_golden_compare_runs_without_torch(tmp_path):
    spec = dataclasses.replace(TOY, name="toy-nt")
    generate_golden(spec, log=quiet, root=tmp_path)
    script = f"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})
import dataclasses
import test_parity_harness as t
from parity.runner import run
spec = dataclasses.replace(t.TOY, name="toy-nt", build_reference=None)
res = run(spec, "float32", reference=False, golden_root=__import__("pathlib").Path({str(tmp_path)!r}),
          log=t.quiet)
assert "torch" not in sys.modules or sys.modules["torch"] is None
print("cases", len(res.cases), "passed", res.passed,
      "max_abs", max(r.max_abs for r in res.cases[0].comparison.results[:3]))
sys.exit(0 if res.passed else 1)
"""
    p = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "MLX_ENABLE_TF32": "0"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "cases 2 passed True" in p.stdout


# ------------------------------------------------------------------------------------------
# end-to-end checks (decoding, word timings): gated


def test_a_failing_check_fails_the_run_and_is_reported(tmp_path):
    from parity import report
    from parity.runner import run
    from parity.spec import Check, CheckResult

    def fn(dtype, log):
        return CheckResult("tokens", False, {"identical": "0/1"},
                           [{"clip": "a", "tokens_identical": False}])

    spec = dataclasses.replace(TOY, checks=(Check("tokens", "toy token check", fn),))
    res = run(spec, "float32", golden=False, log=lambda *_: None)
    assert all(c.passed for c in res.cases) and not res.passed
    md, js = report.write(res, root=tmp_path)
    assert "## check tokens: FAIL" in md.read_text()
    assert json.loads(js.read_text())["checks"][0]["summary"] == {"identical": "0/1"}
    skipped = run(spec, "float32", golden=False, log=lambda *_: None, checks=False)
    assert skipped.passed and not skipped.checks


@pytest.mark.parametrize("spec_name", ["dac-test-tiny", "snac-test-tiny", "bigvgan-v2-24khz"])
def test_shared_speech_checks_fail_when_the_clips_are_missing(spec_name, monkeypatch, tmp_path):
    """A real-speech check that cannot run is a FAIL naming the path, never a silent pass."""
    from parity.registry import get

    missing = tmp_path / "no-speech"
    monkeypatch.setenv("PARITY_SHARED_SPEECH", str(missing))
    checks = get(spec_name).checks
    assert checks, f"{spec_name} has no real-speech check"
    for check in checks:
        res = check.fn("float32", lambda *_: None)
        assert not res.passed and res.status == "not run", (spec_name, check.name, res)
        assert str(missing / "manifest.jsonl") in res.not_run, res.not_run


def test_clip_paths_in_reports_are_relative():
    """Reports and golden manifests name clips relative to the repository or ../shared."""
    from parity.clips import FIXTURES, ROOT, SHARED_SPEECH, audio_inputs, display_path

    assert display_path(FIXTURES / "espeak_en_fox.wav") == "tests/fixtures/speech/espeak_en_fox.wav"
    assert display_path(SHARED_SPEECH / "a" / "b.flac") == "../shared/speech/a/b.flac"
    assert display_path("/elsewhere/clip.wav") == "clip.wav"
    meta = audio_inputs(GoldenCase("fox", "", {"clip": "espeak_en_fox"})).meta
    assert meta["file"] == "tests/fixtures/speech/espeak_en_fox.wav", meta
    assert str(ROOT) not in meta["file"]


def test_k_rms_ties_the_absolute_slack_to_the_taps_scale():
    """floor = max(atol, k_rms * rms(want)): the same k_rms holds a tap of RMS 30 and one of
    RMS 0.003 to the same relative slack, and atol stays the floor."""
    rng = np.random.default_rng(0)
    for scale in (30.0, 0.003):
        want = rng.standard_normal(1000) * scale
        rms = float(np.sqrt(np.mean(want ** 2)))
        tol = Tolerance(atol=1e-9, rtol=0.0, k_rms=1e-3)
        inside = want.copy()
        inside[7] += 0.9e-3 * rms
        outside = want.copy()
        outside[7] += 1.1e-3 * rms
        s_in, s_out = tap_stats("t", inside, want, tol), tap_stats("t", outside, want, tol)
        assert s_in.passed and not s_out.passed
        assert abs(s_in.floor - 1e-3 * rms) < 1e-12 * scale and abs(s_in.rms - rms) < 1e-9 * scale
    zero = np.zeros(10)
    assert tap_stats("t", zero + 5e-10, zero, Tolerance(1e-9, 0.0, k_rms=1.0)).passed
    assert not tap_stats("t", zero + 2e-9, zero, Tolerance(1e-9, 0.0, k_rms=1.0)).passed


# ------------------------------------------------------------------------------------------
# stale overrides


def _stale_fixture(k_loose: float):
    """A tap of RMS ~3 whose MLX side is off by 2e-4 * rms at one element (needed k ~2e-4),
    and an untouched tap, under the fp32 defaults plus one override of k_rms `k_loose` on the
    perturbed tap."""
    rng = np.random.default_rng(5)
    want = {"a": 3.0 * rng.standard_normal(2000), "b": rng.standard_normal(300)}
    got = {k: v.copy() for k, v in want.items()}
    rms = float(np.sqrt(np.mean(want["a"] ** 2)))
    got["a"][17] += 2e-4 * rms
    table = fp32_table(Override("a", 1e-7, 1e-5, "planted for the test", k_rms=k_loose))
    return got, want, table


def test_stale_flag_catches_a_100x_loose_override_and_spares_a_tight_one():
    got, want, tight = _stale_fixture(5e-4)  # 2.5x the needed k ~2e-4
    cmp = compare_taps(got, want, ("a", "b"), tight)
    assert cmp.passed and stale_overrides(tight, cmp.results) == []
    got, want, loose = _stale_fixture(2e-2)  # 100x the need
    cmp = compare_taps(got, want, ("a", "b"), loose)
    assert cmp.passed  # a stale override passes the port: it just no longer bites
    (flag,) = stale_overrides(loose, cmp.results)
    assert flag["pattern"] == "a" and flag["tightest_tap"] == "a" and flag["taps"] == 1
    assert 90 < flag["looseness"] < 110, flag  # 2e-2 / ~2e-4
    assert "re-derive" in flag["why"]
    # the same loose override is not stale on a run that needed it (3e-3 * rms off: 6.7x less)
    got["a"][17] += 2.8e-3 * float(np.sqrt(np.mean(want["a"] ** 2)))
    assert stale_overrides(loose, compare_taps(got, want, ("a", "b"), loose).results) == []


def test_stale_flag_uses_the_default_floor_and_flags_an_override_matching_nothing():
    want = {"a": np.full(100, 2.0), "b": np.ones(10)}
    exact = compare_taps(want, want, ("a", "b"), fp32_table()).results  # needs nothing
    # needed 0: measured against the default floor (1e-4 * rms 2), so 5x the default is kept
    five = fp32_table(Override("a", 1e-7, 1e-5, "r", k_rms=5e-4))
    assert stale_overrides(five, compare_taps(want, want, ("a", "b"), five).results) == []
    fifty = fp32_table(Override("a", 1e-7, 1e-5, "r", k_rms=5e-3))
    assert [o["pattern"] for o in stale_overrides(
        fifty, compare_taps(want, want, ("a", "b"), fifty).results)] == ["a"]
    # an override looser in rtol: the same ratio on rtol
    rt = fp32_table(Override("a", 1e-7, 1e-3, "r", k_rms=1e-4))
    assert [o["pattern"] for o in stale_overrides(
        rt, compare_taps(want, want, ("a", "b"), rt).results)] == ["a"]
    none = fp32_table(Override("decoder.*", 1e-7, 1e-5, "r", k_rms=2e-4))
    (flag,) = stale_overrides(none, exact)
    assert flag["taps"] == 0 and "matched no tap" in flag["why"]


def test_stale_overrides_reach_the_run_result_the_report_and_the_exit_status(
        tmp_path, monkeypatch, capsys):
    from parity import __main__ as cli
    from parity import registry

    loose = dataclasses.replace(TOY, tolerances=dict(TOY.tolerances, float32=fp32_table(
        Override("fc1", 1e-7, 1e-5, "planted: 1e4 x the default", k_rms=1.0))))
    res = run(loose, "float32", golden=False, log=quiet)
    assert res.passed and [o["pattern"] for o in res.stale_overrides] == ["fc1"]
    md, js = report.write(res, root=tmp_path)
    data = json.loads(js.read_text())
    assert [o["pattern"] for o in data["stale_overrides"]] == ["fc1"]
    assert "STALE overrides: 1" in md.read_text() and "`fc1`" in md.read_text()
    tap = data["cases"][0]["taps"][0]
    assert {"rms", "floor", "k_rms", "rtol", "needed_atol", "needed_k"} <= set(tap), tap
    assert abs(tap["needed_k"] - tap["needed_atol"] / tap["rms"]) <= 1e-12
    monkeypatch.setitem(registry.REGISTRY, "toy-mlp", loose)
    assert cli.main(["run", "toy-mlp", "--no-golden", "--report-dir", str(tmp_path)]) == 1
    assert "stale tolerance override" in capsys.readouterr().err
    clean = run(dataclasses.replace(TOY, tolerances=dict(TOY.tolerances,
                                                         float32=fp32_table())),
                "float32", golden=False, log=quiet)
    assert clean.passed and clean.stale_overrides == []
    w = toy_weights()
    w["fc1.bias"] = w["fc1.bias"] + 1.0
    stopped = run(dataclasses.replace(loose, build_mlx=lambda dt: ToyMlx(dt, w)), "float32",
                  golden=False, fail_fast=True, log=quiet)
    assert stopped.stale_overrides is None  # a run cut short cannot judge staleness
    plain = run(dataclasses.replace(TOY, build_mlx=lambda dt: ToyMlx(dt, w), tolerances=dict(
        TOY.tolerances, float32=fp32_table())), "float32", golden=False, fail_fast=True, log=quiet)
    assert not plain.passed and plain.stale_overrides == []  # no override: nothing to be stale
    # against a golden only (maybe written on another host), the live-measured table is not judged
    generate_golden(loose, log=quiet, root=tmp_path)
    gold = run(loose, "float32", reference=False, golden_root=tmp_path, log=quiet)
    assert gold.passed and gold.stale_overrides is None
    assert "no case ran against the live reference" in report.stale_lines(gold)[0]
    both = run(loose, "float32", golden_root=tmp_path, log=quiet)
    assert [o["pattern"] for o in both.stale_overrides] == ["fc1"]  # the live case judges it


def test_a_codec_mlx_side_without_run_is_refused_when_defined():
    import pytest

    from parity.models.codec import MlxSide

    with pytest.raises(TypeError, match="must define run"):
        type("NoRun", (MlxSide,), {})
    type("WithRun", (MlxSide,), {"run": lambda self, x, inputs, taps: None})  # accepted
