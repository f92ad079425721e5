"""Terminal table and the Markdown/JSON reports of a run (reports/parity/<model>[-<dtype>])."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from parity.metrics import DiscreteStats, TapStats
from parity.runner import CaseResult, RunResult
from parity.spec import STALE_FACTOR

REPORTS = Path(__file__).resolve().parent.parent / "reports" / "parity"
TIER_TEXT = {"default": "the default items; `--full` runs every clip and strategy",
             "full": "every clip and strategy (`--full`)"}
# tolerance used: floor = max(atol, k_rms * rms) and rtol; needed: the smallest floor that
# passes at that rtol, and that floor over the tap's RMS (the k_rms that would just pass)
HEADER = ("tap", "shape", "dtype", "max_abs", "max_rel", "cos", "snr_db", "rms",
          "tol floor (k_rms) / rtol", "needed floor (k)", "PASS/FAIL")


def _g(x: float, digits: int = 3) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}" if x != 0 else "0"


def rows(case: CaseResult) -> list[tuple[str, ...]]:
    out = []
    for r in case.comparison.results if case.comparison else []:
        shape = "x".join(map(str, r.shape))
        verdict = "PASS" if r.passed else "FAIL"
        if isinstance(r, DiscreteStats):
            extra = "exact" if r.passed else (f"{r.n_mismatch} differ; first at {r.first_index}: "
                                              f"{r.first_got} vs {r.first_want}")
            out.append((r.name, shape, r.dtype, "-", "-", "-", "-", "-", "exact", extra, verdict))
        else:
            assert isinstance(r, TapStats)
            fp = " (fp)" if r.note.startswith("fingerprint") else ""
            out.append((r.name + fp, shape, r.dtype, _g(r.max_abs), _g(r.max_rel),
                        f"{r.cosine:.7f}", _g(r.snr_db, 4), _g(r.rms),
                        f"{_g(r.floor)} ({_g(r.k_rms)}) / {_g(r.rtol)}",
                        f"{_g(r.needed_atol)} ({_g(r.needed_k)})", verdict))
    return out


def table(case: CaseResult) -> str:
    body = rows(case)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(HEADER)]

    def fmt(row):
        return " | ".join(c.ljust(w) for c, w in zip(row, widths))

    return "\n".join([fmt(HEADER), "-+-".join("-" * w for w in widths), *map(fmt, body)])


def exercise_rows(case: CaseResult) -> list[tuple[str, ...]]:
    """(requirement, reference, mlx, PASS/FAIL) per declared exercise of the case."""
    def val(v):
        return "-" if v is None else _g(v, 4)

    return [(e.exercise.describe(), val(e.reference), val(e.mlx),
             ("PASS" if e.passed else "FAIL") + (f": {e.error}" if e.error else ""))
            for e in case.exercised]


EXERCISE_HEADER = ("requirement", "reference", "mlx", "PASS/FAIL")


def exercise_section(res: RunResult) -> list[str]:
    """Markdown lines of the "Decoding exercised" section: every case's requirements."""
    head = ["", "## Decoding exercised", "",
            "What the spec requires its decoding to exercise (parity/exercise.py), measured on "
            "the reference's taps and on the MLX side's; an unmet requirement fails the run. "
            "Reference `-`: a golden fingerprint of a continuous tap, not measurable.", ""]
    if not res.spec.exercise:
        return head + ["No requirement declared by this spec."]
    lines = head + ["| case | against | " + " | ".join(EXERCISE_HEADER) + " |",
                    "|" + "---|" * (2 + len(EXERCISE_HEADER))]
    for c in res.cases:
        if not c.exercised:
            lines.append(f"| {c.case} | {c.against} | not measured: "
                         f"{'the case errored' if c.error else 'no taps'} | - | - | FAIL |")
        lines += [f"| {c.case} | {c.against} | " + " | ".join(r) + " |"
                  for r in exercise_rows(c)]
    return lines


def print_case(case: CaseResult, log=print) -> None:
    log(f"\n== case {case.case} vs {case.against}: {'PASS' if case.passed else 'FAIL'}")
    if case.error:
        log(f"ERROR: {case.error}")
        return
    log(table(case))
    for r in case.comparison.results:
        if isinstance(r, TapStats) and "out of bounds" in r.note and r.note not in case.detail:
            log(f"{r.name}: {r.note}")
    if case.comparison.stopped_early:
        log("stopped at the first failing tap (--fail-fast)")
    if case.detail:
        log(case.detail)
    for row in exercise_rows(case):
        log("decoding exercised: " + " | ".join(row))
    for k, v in case.metrics.items():
        log(f"metric {k}: {metric_text(case, k, v)}")


def metric_text(case: CaseResult, name: str, value: float) -> str:
    """`value`, and against its goal where the metric has one: "112.7 (goal >= 60: met)"."""
    g = case.goals.get(name)
    if g is None:
        return f"{value:.6g}"
    verdict = "met" if g["met"] else "MISSED"
    gate = "" if g["gated"] else ", not gated in this dtype"
    return f"{value:.6g} (goal {g['goal']}: {verdict}{gate}; {g['why']})"


def check_verdict(check) -> str:
    """PASS, FAIL, or NOT RUN (a check that could not run fails the run)."""
    return {"passed": "PASS", "failed": "FAIL", "not run": "NOT RUN"}[check.status]


def run_verdict(res: RunResult) -> str:
    """PASS or FAIL, and what made it fail beyond the tap tables: checks that did not run (with
    their reason), failed checks, missed metric goals; and the checks left out on request."""
    why = [f"the run stopped on {res.error}"] if res.error else []
    why += [f"check {c.name} not run: {c.not_run}" for c in res.checks_not_run]
    why += [f"check {c.name} failed" for c in res.checks if c.status == "failed"]
    why += [f"{c.case} vs {c.against}: metric {k} missed its goal {c.goals[k]['goal']}"
            for c in res.cases for k in c.goals_missed]
    why += [f"{c.case} vs {c.against}: decoding not exercised: {e.exercise.kind} of {e.exercise.tap}" for c in res.cases
            for e in c.exercised if not e.passed]
    text = "PASS" if res.passed else "FAIL"
    if why:
        text += " (" + "; ".join(why) + ")"
    if res.checks_skipped:
        text += " [checks left out: " + "; ".join(f"{k}: {v}" for k, v in
                                                   res.checks_skipped.items()) + "]"
    return text


def check_table(check) -> list[str]:
    """Markdown lines of a check's rows (a table) and summary."""
    lines = []
    if check.not_run is not None:
        return [f"NOT RUN (this fails the run): {check.not_run}"]
    if check.error:
        return [f"ERROR: {check.error}"]
    if check.rows:
        cols = list(check.rows[0])
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for r in check.rows:
            lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
        lines.append("")
    lines += [f"- {k}: {_cell(v)}" for k, v in check.summary.items()]
    return lines


def _cell(v) -> str:
    if isinstance(v, float):
        return _g(v, 4)
    return str(v)


def print_check(check, log=print) -> None:
    log(f"\n== check {check.name}: {check_verdict(check)}")
    for line in check_table(check):
        log(line)


def clips_ran(res: RunResult) -> list[str]:
    """Clip ids the run fed the model, in order: the cases' inputs, then the checks' rows."""
    ids = [c.meta["clip"] for c in res.cases if isinstance(c.meta.get("clip"), str)]
    ids += [r["clip"] for ch in res.checks for r in ch.rows if isinstance(r.get("clip"), str)]
    return list(dict.fromkeys(ids))


def header(res: RunResult) -> str:
    """One line: model, dtype, tier, weights and the clips that ran."""
    tier = "full tier (--full)" if res.tier == "full" else "default tier (--full runs more)"
    return (f"{res.spec.name} ({res.dtype}), {tier} — weights: {res.spec.weights}; clips: "
            f"{', '.join(clips_ran(res)) or 'none'}")


def timing_table(res: RunResult) -> str:
    """Per-phase wall and CPU seconds (CPU: this process and its worker processes)."""
    lines = ["| phase | wall s | cpu s |", "|---|---|---|"]
    lines += [f"| {t['phase']} | {t['wall_s']:.1f} | {t['cpu_s']:.1f} |" for t in res.timings]
    wall = sum(t["wall_s"] for t in res.timings)
    cpu = sum(t["cpu_s"] for t in res.timings)
    return "\n".join(lines + [f"| total | {wall:.1f} | {cpu:.1f} |"])


def stale_lines(res: RunResult) -> list[str]:
    """Markdown/terminal lines on the overrides more than STALE_FACTOR x looser than needed."""
    stale = res.stale_overrides
    if stale is None:
        why = ("no case ran against the live reference (--golden-only): the tables are "
               "measured against it" if not any(c.against == "reference" for c in res.cases)
               else "a case did not compare every tap")
        return [f"Stale overrides: not evaluated ({why})"]
    if not stale:
        return [f"Stale overrides: none (no override grants more than {STALE_FACTOR:g}x the "
                "floor its taps needed)"]
    lines = [f"**STALE overrides: {len(stale)}** (each grants more than {STALE_FACTOR:g}x the "
             "floor its taps needed, or matched no tap; re-derive them from this run):"]
    lines += [f"- `{o['pattern']}` (atol {o['atol']:g}, k_rms {o['k_rms']:g}): {o['why']}"
              for o in stale]
    return lines


def _json_safe(x):
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return str(x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def to_dict(res: RunResult) -> dict:
    spec = res.spec
    return _json_safe({
        "model": spec.name, "description": spec.description, "weights": spec.weights,
        "dtype": res.dtype, "passed": res.passed, "error": res.error, "started": res.started,
        "tier": res.tier,
        "clips": clips_ran(res), "timings": res.timings,
        "config": res.config, "versions": res.versions,
        "tolerances": spec.tolerance(res.dtype).to_dict(),
        "stale_factor": STALE_FACTOR,
        "stale_overrides": res.stale_overrides,  # null: not evaluated (a case stopped early)
        "cases": [{
            "case": c.case, "against": c.against, "passed": c.passed, "error": c.error,
            "inputs": c.meta, "metrics": c.metrics, "goals": c.goals, "detail": c.detail,
            "stopped_early": bool(c.comparison and c.comparison.stopped_early),
            "not_compared": c.comparison.not_compared if c.comparison else {},
            "taps": [r.to_dict() for r in (c.comparison.results if c.comparison else [])],
            "exercised": [e.to_dict() for e in c.exercised],
        } for c in res.cases],
        "verdict": run_verdict(res), "checks_skipped": res.checks_skipped,
        "checks": [{"name": c.name, "status": c.status, "passed": c.passed, "error": c.error,
                    "not_run": c.not_run, "summary": c.summary, "rows": c.rows}
                   for c in res.checks]})


def to_markdown(res: RunResult) -> str:
    spec = res.spec
    tol = spec.tolerance(res.dtype)
    stale = res.stale_overrides
    flag = f" (with {len(stale)} STALE tolerance overrides)" if stale else ""
    lines = [f"# Parity: {spec.name} ({res.dtype})", "",
             f"**{run_verdict(res)}**{flag} — {spec.description}", "",
             *([f"**ERROR: the run stopped on {res.error}**", "",
                "The cases below (if any) finished before it; nothing after it ran.", ""]
               if res.error else []),
             f"- Weights: {spec.weights}", f"- Run: {res.started}",
             f"- Tier: {res.tier} ({TIER_TEXT[res.tier]})",
             f"- Clips: {', '.join(clips_ran(res)) or 'none'}",
             "- Versions: " + ", ".join(f"{k} {v}" for k, v in res.versions.items()
                                          if not isinstance(v, dict)),
             f"- Tolerance ({res.dtype}): each element within max(atol, k_rms x rms(tap)) + "
             f"rtol x |reference|; default atol {tol.atol:g}, k_rms {tol.k_rms:g}, "
             f"rtol {tol.rtol:g}"]
    for o in tol.overrides:
        lines.append(f"  - `{o.pattern}`: atol {o.atol:g}, k_rms {o.k_rms:g}, rtol {o.rtol:g} — "
                     f"{o.reason}")
    lines += [("- " if i == 0 else "  ") + line for i, line in enumerate(stale_lines(res))]
    lines.append("- `(fp)`: compared against the golden's fingerprint: samples in every frame "
                 "block, the first and last frame, and bounds on the sum, L2, min and max of every "
                 "frame block and channel block (golden/README.md)")
    lines += exercise_section(res)
    for c in res.cases:
        lines += ["", f"## {c.case} vs {c.against}: {'PASS' if c.passed else 'FAIL'}", ""]
        if c.meta:
            lines.append("Inputs: " + ", ".join(f"{k}={v}" for k, v in c.meta.items()
                                                if not isinstance(v, (list, dict))))
            lines.append("")
        if c.error:
            lines += [f"ERROR: {c.error}"]
            continue
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "---|" * len(HEADER))
        lines += ["| " + " | ".join(r) + " |" for r in rows(c)]
        extra = {k: v for k, v in c.comparison.not_compared.items() if v}
        if extra:
            lines += ["", "Recorded but not in the spec's tap list (not compared): "
                      + "; ".join(f"{k}: {', '.join(v)}" for k, v in extra.items())]
        if c.detail:
            lines += ["", "```", c.detail, "```"]
        for k, v in c.metrics.items():
            desc = next(m.description for m in spec.metrics if m.name == k)
            lines.append(f"\n- {k}: {metric_text(c, k, v)} ({desc})")
    for ch in res.checks:
        desc = next((c.description for c in spec.checks
                     if c.name == ch.name and res.tier in c.tiers), "")
        lines += ["", f"## check {ch.name}: {check_verdict(ch)}", "", desc, ""]
        lines += check_table(ch)
    if res.timings:
        lines += ["", "## timings", "", "Wall and CPU seconds per phase (CPU includes the worker "
                  "processes).", "", timing_table(res)]
    return "\n".join(lines) + "\n"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write(res: RunResult, root: Path = REPORTS) -> tuple[Path, Path]:
    stem = res.spec.name if res.dtype == "float32" else f"{res.spec.name}-{res.dtype}"
    md, js = root / f"{stem}.md", root / f"{stem}.json"
    atomic_write(md, to_markdown(res))
    atomic_write(js, json.dumps(to_dict(res), indent=2) + "\n")
    return md, js
