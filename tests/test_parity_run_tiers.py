"""The run's tiers (default / --full), its timings and progress lines, the reuse of the MLX
side's taps for goldens, and the worker processes that share out a check's jobs."""

from __future__ import annotations

import dataclasses
import os

import pytest
from test_parity_harness import TOY

from parity import report, workers
from parity.progress import Progress
from parity.runner import run
from parity.spec import Check, CheckResult


def quiet(*_):
    pass


def _check(name: str, tiers: tuple[str, ...], ran: list[str]) -> Check:
    def fn(dtype, log):
        ran.append(name)
        return CheckResult("transcription", True, {"tier": name},
                           [{"clip": f"clip-{name}", "tokens_identical": True}])
    return Check("transcription", f"{name} items", fn, tiers=tiers, estimate_s=1.0)


def test_tier_picks_the_checks_and_the_report_names_tier_and_clips(tmp_path):
    ran: list[str] = []
    spec = dataclasses.replace(TOY, checks=(_check("default", ("default",), ran),
                                            _check("full", ("full",), ran),
                                            _check("both", ("default", "full"), ran)))
    res = run(spec, "float32", golden=False, log=quiet)
    assert ran == ["default", "both"] and res.tier == "default" and res.passed
    ran.clear()
    full = run(spec, "float32", golden=False, log=quiet, tier="full")
    assert ran == ["full", "both"] and full.tier == "full"
    assert report.clips_ran(full) == ["clip-full", "clip-both"]
    md, js = report.write(full, root=tmp_path)
    text = md.read_text()
    assert "- Tier: full" in text and "- Clips: clip-full, clip-both" in text
    assert "full items" in text and "default items" not in text  # each check's own text
    assert "full tier (--full)" in report.header(full)
    with pytest.raises(ValueError, match="unknown tier 'slow'"):
        run(spec, "float32", golden=False, log=quiet, tier="slow")


def test_timings_cover_every_phase_in_order():
    ran: list[str] = []
    spec = dataclasses.replace(TOY, checks=(_check("default", ("default",), ran),))
    res = run(spec, "float32", golden=False, log=quiet)
    phases = [t["phase"] for t in res.timings]
    assert phases == ["build mlx side", "build reference side",
                      *[f"case {c.name} vs reference" for c in TOY.golden_cases],
                      "check transcription"]
    assert all(t["wall_s"] >= 0 and t["cpu_s"] >= 0 for t in res.timings)
    table = report.timing_table(res)
    assert table.splitlines()[-1].startswith("| total | ")


def test_golden_case_with_the_live_inputs_reuses_the_mlx_run(tmp_path):
    from parity.runner import generate_golden

    calls = []

    def counting(dtype):
        side = TOY.build_mlx(dtype)

        def call(inputs):
            calls.append(1)
            return side(inputs)
        call.versions = getattr(side, "versions", {})
        return call

    generate_golden(TOY, log=quiet, root=tmp_path)
    spec = dataclasses.replace(TOY, build_mlx=counting)
    res = run(spec, "float32", log=quiet, golden_root=tmp_path)
    n = len(TOY.golden_cases)
    assert [c.against for c in res.cases] == ["reference"] * n + ["golden"] * n
    assert res.passed and len(calls) == n  # one MLX run per distinct input, not 2n
    for live, gold in zip(res.cases[:n], res.cases[n:]):
        assert [r.name for r in live.comparison.results] == \
            [r.name for r in gold.comparison.results]


def test_progress_scales_the_plan_by_the_measured_speed():
    now = [0.0]
    lines: list[str] = []
    p = Progress(lines.append, clock=lambda: now[0])
    p.plan("a", 10.0)
    p.plan("b", 30.0)
    assert p.left_s() == 40.0  # nothing measured yet: the plan as it is
    now[0] = 40.0
    p.finish("a", 40.0)  # 4x as slow as estimated: speed (40 + 20) / (10 + 20) = 2
    assert p.left_s() == 60.0
    p("case b")
    assert lines == ["[0:40 elapsed, ~1:00 left] case b"]
    p.drop("b")
    assert p.left_s() == 0.0


def _square_or_fail(x: int) -> tuple[int, int, str | None]:
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x, os.getpid(), os.environ.get("OMP_NUM_THREADS")


@pytest.mark.parametrize("n_workers", [1, 2])
def test_workers_run_every_job_and_report_errors(n_workers):
    jobs = [workers.Job(f"j{i}", (i,)) for i in (3, 1, -2, 2)]
    started: list[str] = []
    done = {d.job.key: d for d in workers.run(_square_or_fail, jobs, n_workers,
                                              on_start=lambda j: started.append(j.key))}
    assert sorted(done) == sorted(started) == ["j-2", "j1", "j2", "j3"]
    assert [done[k].result[0] for k in ("j3", "j1", "j2")] == [9, 1, 4]
    assert done["j-2"].result is None and "ValueError: negative -2" in done["j-2"].error
    pids = {done[k].result[1] for k in ("j3", "j1", "j2")}
    if n_workers == 1:
        assert pids == {os.getpid()}
    else:  # spawned workers, one thread each
        assert os.getpid() not in pids
        assert {done[k].result[2] for k in ("j3", "j1", "j2")} == {"1"}
