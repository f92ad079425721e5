"""Run one spec: the MLX side against the live reference and against the stored goldens."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np

from parity import golden as golden_store
from parity.compare import (
    EDGE_1D,
    MAX_COL_BLOCKS,
    MAX_EDGE,
    MAX_ROW_BLOCKS,
    STATS,
    Comparison,
    Fingerprint,
    compare_taps,
    stale_overrides,
    worst_pairs,
)
from parity.exercise import ExerciseResult, evaluate
from parity.metrics import at_least, at_most, check_finite
from parity.progress import Progress
from parity.spec import TIERS, CheckResult, Metric, ModelSpec, ParityError, Side, Tolerance


@dataclass
class CaseResult:
    case: str
    against: str  # "reference" (live torch run) or "golden" (stored reference taps)
    comparison: Comparison | None
    metrics: dict[str, float] = field(default_factory=dict)
    # metric name -> {"value", "goal", "met", "gated", "why"} for metrics with a goal
    goals: dict[str, dict] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    error: str | None = None  # a hard error (ParityError): the case failed without a table
    detail: str = ""  # with --fail-fast: worst index, both values and a few pairs
    exercised: list[ExerciseResult] = field(default_factory=list)  # the spec's requirements

    @property
    def passed(self) -> bool:
        return (self.error is None and self.comparison is not None and self.comparison.passed
                and all(e.passed for e in self.exercised)
                and all(g["met"] for g in self.goals.values() if g["gated"]))

    @property
    def goals_missed(self) -> list[str]:
        return [k for k, g in self.goals.items() if g["gated"] and not g["met"]]


@dataclass
class RunResult:
    spec: ModelSpec
    dtype: str
    cases: list[CaseResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    started: str = ""
    tier: str = "default"  # "default" (`parity run`) or "full" (`--full`): which checks ran
    timings: list[dict] = field(default_factory=list)  # {"phase", "wall_s", "cpu_s"} in order
    error: str | None = None  # the run stopped on this exception: it fails
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    # checks left out on the caller's request ("--no-checks", "--golden-only") or not defined
    # for this dtype/tier: check name -> why. They do not fail the run; the report lists them.
    # A check that was asked for and could not run is a CheckResult "not run" and fails the run.
    checks_skipped: dict[str, str] = field(default_factory=dict)

    @property
    def checks_not_run(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "not run"]

    @property
    def passed(self) -> bool:
        return (self.error is None and bool(self.cases) and all(c.passed for c in self.cases)
                and all(c.passed for c in self.checks) and not self.checks_not_run)

    @property
    def stale_overrides(self) -> list[dict] | None:
        """Overrides of this dtype's table more than STALE_FACTOR x looser than the run needed
        (parity.compare.stale_overrides) over every case; None when some case did not compare
        every tap (a hard error, --fail-fast), so staleness cannot be judged, and when no case
        ran against the live reference: the tables are measured against the reference on the
        host that runs them, while a golden may come from another host (whisper-base's golden,
        written on an AMD EPYC, needs 16-50x less in encoder blocks 3-5 on an Intel Xeon than
        that Xeon's own torch does), so a golden-only run cannot say an override is stale;
        [] for a table without overrides, which has nothing to be stale whatever the cases did."""
        if not self.spec.tolerance(self.dtype).overrides:
            return []
        live = [c for c in self.cases if c.against == "reference"]
        if not live or any(c.comparison is None or c.comparison.stopped_early for c in live):
            return None
        return stale_overrides(self.spec.tolerance(self.dtype),
                               [r for c in live for r in c.comparison.results])


def _detail(cmp: Comparison, got: dict, want: dict) -> str:
    r = cmp.first_failure
    if r is None:
        return ""
    g, w = np.asarray(got[r.name]), want[r.name]
    if hasattr(r, "first_index"):  # discrete
        return (f"first failing tap {r.name!r} (discrete): first mismatch at {r.first_index}: "
                f"mlx {r.first_got} vs reference {r.first_want}; {r.n_mismatch} mismatches")
    tol = Tolerance(r.floor, r.rtol)  # the absolute slack this tap was held to
    if isinstance(w, Fingerprint):
        idx, vals = w.checked()
        pairs = worst_pairs(g.ravel()[idx], vals, tol)
        pairs = [(tuple(int(i) for i in np.unravel_index(int(idx[p[0][0]]), w.shape)),)
                 + p[1:] for p in pairs]
    else:
        pairs = worst_pairs(g, np.asarray(w), tol)
    lines = [(f"first failing tap {r.name!r}: worst index {r.worst_index}: mlx {r.worst_got:.8g} "
              f"vs reference {r.worst_want:.8g} (floor {r.floor:.3g} = max(atol {r.atol:g}, "
              f"k_rms {r.k_rms:g} x rms {r.rms:.3g}), rtol {r.rtol:g}; "
              f"{r.n_fail} of {r.size} elements over)"), "  index | mlx | reference | abs diff"]
    lines += [f"  {i} | {a:.8g} | {b:.8g} | {d:.3g}" for i, a, b, d in pairs]
    if "out of bounds" in r.note:
        lines.append(f"  {r.note}")
    return "\n".join(lines)


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished (joined) child processes."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


class _Phases:
    """Times each phase of a run (wall and CPU, children included) and says what runs."""

    def __init__(self, log, timings: list[dict]):
        self.log, self.timings = log, timings
        self.progress = log if isinstance(log, Progress) else None

    def plan(self, name: str, estimate_s: float | None = None) -> None:
        if self.progress is not None:
            self.progress.plan(name, estimate_s)

    @contextlib.contextmanager
    def __call__(self, name: str, message: str | None = None):
        self.log(message or name)
        w, c = time.perf_counter(), _cpu_s()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - w, _cpu_s() - c
            self.timings.append({"phase": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)})
            if self.progress is not None:
                self.progress.finish(name, wall)


def _inputs_key(inputs: dict) -> tuple:
    """Identity of a case's input arrays (names, dtypes, shapes, bytes)."""
    return tuple((k, np.asarray(v).dtype.str, np.shape(v),
                  hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
                 for k, v in sorted(inputs.items()))


class _Memo:
    """The MLX side's taps per distinct input: a golden case fed the same arrays as a live case
    reuses that run (same model, same inputs) instead of running the model again."""

    def __init__(self, side: Side):
        self.side, self.seen = side, {}
        self.versions = getattr(side, "versions", {})

    def __call__(self, inputs: dict) -> dict:
        key = _inputs_key(inputs)
        if key not in self.seen:
            self.seen[key] = self.side(inputs)
        return self.seen[key]


def _run_case(name: str, against: str, mlx: Side, inputs: dict, want: dict, spec: ModelSpec,
              dtype: str, fail_fast: bool, meta: dict, metrics: bool) -> CaseResult:
    try:
        got = mlx(inputs)
        cmp = compare_taps(got, want, spec.taps, spec.tolerance(dtype), spec.discrete,
                           fail_fast=fail_fast, want_label=against)
    except ParityError as e:
        return CaseResult(name, against, None, meta=meta, error=str(e))
    res = CaseResult(name, against, cmp, meta=meta,
                     exercised=evaluate(spec.exercise, want, got, inputs))
    if metrics:
        try:
            res.metrics = {m.name: float(m.fn(want, got)) for m in spec.metrics}
            res.goals = {m.name: goal_verdict(m, res.metrics[m.name], dtype)
                         for m in spec.metrics if m.goal is not None}
        except ParityError as e:
            res.error = str(e)
            return res
    if not cmp.passed:
        res.detail = _detail(cmp, got, want)
    return res


def goal_verdict(metric: Metric, value: float, dtype: str) -> dict:
    """A metric's value against its goal: met or not, and whether it gates in `dtype`. A NaN
    value raises ParityError (`at_least` / `at_most`)."""
    g = metric.goal
    met = (at_least(metric.name, value, g.at_least) if g.at_least is not None
           else at_most(metric.name, value, g.at_most))
    return {"value": value, "goal": g.text(), "met": met, "gated": dtype in g.dtypes,
            "why": g.why}


def run(spec: ModelSpec, dtype: str = "float32", fail_fast: bool = False,
        reference: bool = True, golden: bool = True, log=print,
        golden_root=golden_store.ROOT, checks: bool = True, tier: str = "default",
        raise_errors: bool = True) -> RunResult:
    """Compare the MLX side of `spec` in `dtype` against the reference and/or its goldens.

    `tier` picks the checks: "default" those of a plain run, "full" the full sweeps (`--full`).
    `log` may be a `Progress`: then each phase line says the time left.
    An exception while running (building a side, a ParityError, a GoldenError) or an interrupt
    is recorded in the result's `error` (the run then fails, keeping the cases finished before
    it); with `raise_errors` it is raised again, without it the result is returned so that the
    caller can write a FAIL report naming the error (`python -m parity run` does).
    """
    spec.tolerance(dtype)  # unknown dtype -> clear error before building anything
    if not (reference or golden):
        raise ValueError("nothing to compare against: enable the reference, the goldens, or both")
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {TIERS}")
    out = RunResult(spec, dtype, config=dict(spec.config), tier=tier,
                    started=datetime.datetime.now(datetime.UTC).isoformat(
                        timespec="seconds"))
    try:
        _run(out, spec, dtype, fail_fast, reference, golden, log, golden_root, checks, tier)
    except (Exception, KeyboardInterrupt) as e:  # recorded for the FAIL report
        out.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        out.exception = e
        if raise_errors:
            raise
    return out


def _run(out: RunResult, spec: ModelSpec, dtype: str, fail_fast: bool, reference: bool,
         golden: bool, log, golden_root, checks: bool, tier: str) -> RunResult:
    """The body of `run`: fills `out` phase by phase (returns early with --fail-fast)."""
    # MLX's CPU matmuls are fast only if mlx_impl preloads MKL/OpenBLAS before mlx itself loads
    # (mlx_impl/_blas.py); a spec's builder that imports mlx first got the bundled BLAS, ~20x
    # slower (whisper-base's encoder: 37 s of CPU instead of 1.8 s).
    import mlx_impl  # noqa: F401

    out.versions = {"python": platform.python_version(), "numpy": np.__version__,
                    "MLX_ENABLE_TF32": os.environ.get("MLX_ENABLE_TF32", "unset"),
                    "blas": mlx_impl.blas_info()["library"]}
    phase = _Phases(log, out.timings)
    run_checks = [c for c in (spec.checks if checks and reference else ())
                  if tier in c.tiers and dtype in c.dtypes]
    for c in spec.checks:
        if tier not in c.tiers:
            continue
        why = ("not run by request (--no-checks)" if not checks else
               "not run: the checks need the reference (--golden-only)" if not reference else
               f"not defined for {dtype}" if dtype not in c.dtypes else None)
        if why:
            out.checks_skipped[c.name] = why
    phase.plan("build mlx side")
    if reference:
        phase.plan("build reference side")
        for case in spec.golden_cases:
            phase.plan(f"case {case.name} vs reference")
        for c in run_checks:
            phase.plan(f"check {c.name}", c.estimate_s)
    with phase("build mlx side", f"building mlx side ({dtype}) of {spec.name}"):
        mlx = _Memo(spec.build_mlx(dtype))
    out.versions.update(mlx.versions)
    if reference:
        with phase("build reference side", f"building reference side of {spec.name}"):
            ref = spec.build_reference()
        out.versions.update(getattr(ref, "versions", {}))
        for case in spec.golden_cases:
            with phase(f"case {case.name} vs reference", f"case {case.name}: mlx vs reference"):
                inp = spec.make_inputs(case)
                try:
                    want = ref(inp.arrays)
                except ParityError as e:
                    out.cases.append(CaseResult(case.name, "reference", None, meta=inp.meta,
                                                error=str(e)))
                    want = None
                if want is not None:
                    out.cases.append(_run_case(case.name, "reference", mlx, inp.arrays, want,
                                               spec, dtype, fail_fast, inp.meta, metrics=True))
            if fail_fast and not out.cases[-1].passed:
                return out
        for name, why in out.checks_skipped.items():
            log(f"check {name}: {why}")
        for check in run_checks:
            with phase(f"check {check.name}", f"check {check.name}: {check.description}"):
                try:
                    out.checks.append(check.fn(dtype, log))
                except ParityError as e:
                    out.checks.append(CheckResult(check.name, False, {}, [], error=str(e)))
            if out.checks[-1].status == "not run":
                log(f"check {check.name}: NOT RUN: {out.checks[-1].not_run}")
            if fail_fast and not out.checks[-1].passed:
                return out
    if golden:
        g = golden_store.read(spec.name, root=golden_root)
        out.versions["golden"] = {k: g.manifest.get(k) for k in ("generated", "packages")}
        for case in g.cases:
            phase.plan(f"case {case.name} vs golden")
        for case in g.cases:
            with phase(f"case {case.name} vs golden", f"case {case.name}: mlx vs golden"):
                out.cases.append(_run_case(case.name, "golden", mlx, case.inputs, case.taps,
                                           spec, dtype, fail_fast, case.meta.get("inputs", {}),
                                           metrics=False))
            if fail_fast and not out.cases[-1].passed:
                return out
    return out


def reference_case(spec: ModelSpec, ref, case, log=print):
    """(inputs, taps) of the reference side `ref` on `case`: every spec tap recorded and finite,
    else a ParityError naming the missing taps."""
    log(f"case {case.name}: running the reference")
    inp = spec.make_inputs(case)
    taps = ref(inp.arrays)
    missing = [t for t in spec.taps if t not in taps]
    if missing:
        raise ParityError(f"reference did not record taps {missing}; it recorded {list(taps)}")
    for t in spec.taps:
        check_finite(t, "reference", np.asarray(taps[t]))
    return inp, taps


def generate_golden(spec: ModelSpec, log=print, root=golden_store.ROOT):
    """Run the reference on every golden case and store the taps (`python -m parity golden`)."""
    if not spec.golden_cases:
        raise ValueError(f"spec {spec.name!r} has no golden cases")
    ref = spec.build_reference()
    cases, tensors = [], {}
    for case in spec.golden_cases:
        inp, taps = reference_case(spec, ref, case, log)
        ordered = {k: np.asarray(v) for k, v in taps.items() if k in spec.taps}
        t, entries = golden_store.pack_case(inp.arrays, ordered, spec.discrete, spec.golden_whole)
        tensors[case.name] = t
        cases.append({"name": case.name, "description": case.description,
                      "params": dict(case.params), "inputs": inp.meta,
                      "input_arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                                       for k, v in inp.arrays.items()},
                      "taps": entries})
    manifest = {
        "format_version": golden_store.FORMAT_VERSION,
        "model": spec.name,
        "description": spec.description,
        "weights": spec.weights,
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "generator": f"python -m parity golden {spec.name}",
        "packages": {"python": platform.python_version(), "numpy": np.__version__,
                     **getattr(ref, "versions", {})},
        "config": dict(spec.config),
        "fingerprint": {"max_whole_elements": golden_store.MAX_WHOLE,
                        "max_frame_blocks": MAX_ROW_BLOCKS, "max_channel_blocks": MAX_COL_BLOCKS,
                        "min_samples": golden_store.MIN_SAMPLES, "max_edge": MAX_EDGE,
                        "edge_1d": EDGE_1D, "index_seed": golden_store.INDEX_SEED,
                        "statistics": list(STATS),
                        "rule": "golden/README.md: sum, L2, min, max of every frame block and "
                                "channel block; samples stratified over frame blocks "
                                "(numpy.random.default_rng(index_seed)); first and last frame "
                                "whole"},
        "tolerances": {d: t.to_dict() for d, t in spec.tolerances.items()},
        "cases": cases,
    }
    return golden_store.write(spec.name, manifest, tensors, root=root)


