"""The test helpers every test file shares: one `assert_close`, one `assert_spec_passes`.

`assert_close` is the harness's own statistics (`parity.metrics.tap_stats`) turned into an
AssertionError: name, shape, how many elements failed, max abs / max rel / mean abs error, the
atol (at the given rtol) and the rtol (at the given atol) that would have passed, and the worst
element's index with both values. A shape mismatch (no broadcasting), NaN/Inf and empty arrays
fail. `assert_spec_passes` runs a parity spec through `parity.runner.run` with the spec's own
tolerance table and prints the failing tap tables; `assert_taps_pass` does the same for taps a
test computed itself (other inputs, a cached reference), through `parity.compare.compare_taps`;
`tol_for` is one tap's entry of a spec's table, for a test comparing one output on its own.
"""

from __future__ import annotations

import numpy as np

from parity.compare import compare_taps
from parity.metrics import tap_stats
from parity.spec import ModelSpec, ParityError, Tolerance


def assert_close(name: str, got, want, atol: float = 0.0, rtol: float = 0.0, *,
                 k_rms: float = 0.0, mean_atol: float | None = None,
                 match_nonfinite: bool = False, inputs=None) -> None:
    """Pass iff every element has |got - want| <= max(atol, k_rms rms(want)) + rtol |want|, the
    harness's rule (parity.spec.Tolerance; rms over the compared elements; with `mean_atol`,
    mean |got - want| <= mean_atol). `match_nonfinite`: NaN/Inf in `want` must be matched
    exactly by `got` (special-value sweeps); otherwise any NaN/Inf fails. `inputs` (same number
    of elements): the input at the worst element is shown too."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {got.shape} != expected {want.shape}")
    if want.size == 0:
        raise AssertionError(f"{name}: nothing compared (empty arrays)")
    src = np.asarray(inputs).ravel() if inputs is not None else None
    g, w = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    where = np.arange(w.size)  # flat indices compared with the tolerance
    if match_nonfinite:
        special = ~np.isfinite(w)
        bad = np.flatnonzero(special & ~((g == w) | (np.isnan(g) & np.isnan(w))))
        if bad.size:
            i = bad[:5]
            raise AssertionError(f"{name}: special values differ at flat {i}: got {g[i]} want "
                                 f"{w[i]}" + ("" if src is None else f" (inputs {src[i]})"))
        where = np.flatnonzero(~special)
        if where.size == 0:
            return
    for side, a in (("got", g), ("want", w)):
        nonfinite = np.flatnonzero(~np.isfinite(a[where]))
        if nonfinite.size:
            first = np.unravel_index(int(where[nonfinite[0]]), want.shape)
            raise AssertionError(f"{name}: {side} has {nonfinite.size} NaN/Inf of {where.size} "
                                 f"(first at {tuple(map(int, first))}: {a[where[nonfinite[0]]]})")
    s = tap_stats(name, g[where], w[where], Tolerance(atol, rtol, k_rms))
    over_mean = mean_atol is not None and s.mean_abs > mean_atol
    if s.passed and not over_mean:
        return
    flat = int(where[s.worst_index[0]])
    idx = tuple(int(i) for i in np.unravel_index(flat, want.shape))
    why = (f"{s.n_fail}/{s.size} elements outside floor {s.floor:.3g} = max(atol {atol:g}, "
           f"k_rms {k_rms:g} x rms {s.rms:.3g}) + rtol {rtol:g} |want|" if not s.passed
           else f"mean_abs {s.mean_abs:.3g} > mean_atol {mean_atol:g}")
    raise AssertionError(
        f"{name} {tuple(want.shape)}: {why}; max_abs {s.max_abs:.3g} max_rel {s.max_rel:.3g} "
        f"mean_abs {s.mean_abs:.3g}; needs floor >= {s.needed_atol:.3g} (k {s.needed_k:.3g}, at "
        f"rtol {rtol:g}) or rtol >= {s.needed_rtol:.3g} (at floor {s.floor:.3g}); worst at "
        f"{idx}: got {s.worst_got!r} "
        f"want {s.worst_want!r}" + ("" if src is None else f", input {src[flat].item()!r}"))


def assert_spec_passes(spec: ModelSpec, dtype: str = "float32", golden: bool = False,
                       checks: bool = True):
    """Run `spec` (MLX against the live reference, and its stored goldens with `golden=True`)
    with the spec's own tolerance table; every case and every check must pass. On failure the
    message holds each failing case's tap table (or its hard error) and each failing check."""
    from parity import report, runner

    res = runner.run(spec, dtype, golden=golden, checks=checks, log=lambda m: None)
    if res.passed:
        assert res.cases and all(c.comparison and c.comparison.results for c in res.cases)
        return res
    lines = [f"{spec.name} ({dtype}) failed"]
    for case in res.cases:
        if not case.passed:
            report.print_case(case, log=lines.append)
    for check in res.checks:
        if not check.passed:
            report.print_check(check, log=lines.append)
    raise AssertionError("\n".join(lines))


def tol_for(spec: ModelSpec, tap: str, dtype: str = "float32") -> dict[str, float]:
    """{"atol", "rtol", "k_rms"} of `tap` in the spec's table:
    `assert_close(..., **tol_for(spec, t))`."""
    tol, _ = spec.tolerance(dtype).for_tap(tap)
    return {"atol": tol.atol, "rtol": tol.rtol, "k_rms": tol.k_rms}


def assert_taps_pass(spec: ModelSpec, got: dict, want: dict, label: str = "",
                     taps=None, dtype: str = "float32"):
    """MLX taps `got` against reference taps `want` through the harness's comparison with the
    spec's table and discrete list; `taps`: the names compared (default: all of the spec's)."""
    from parity import report
    from parity.runner import CaseResult

    names = tuple(spec.taps if taps is None else taps)
    try:
        cmp = compare_taps(got, want, names, spec.tolerance(dtype),
                           [t for t in spec.discrete if t in names])
    except ParityError as e:
        raise AssertionError(f"{spec.name} {label}: {e}") from None
    if not cmp.passed:
        lines = [f"{spec.name} ({dtype}) {label} failed"]
        report.print_case(CaseResult(label, "reference", cmp), log=lines.append)
        raise AssertionError("\n".join(lines))
    assert len(cmp.results) == len(names)
    return cmp


# --- audio input errors shared by every transcriber (all read through mlx_impl.audio_io) ------
# id -> (audio, what the error says)
BAD_AUDIO_ARRAYS = {
    "inf": (np.full(16000, np.inf, np.float32), "NaN/inf"),
    "channels-first": (np.zeros((2, 16000), np.float32), "more channels than frames"),
    "3-d": (np.zeros((2, 3, 16000), np.float32), "must be 1-D"),
    "uint8": (np.zeros(16000, np.uint8), "dtype uint8"),
    "list": ([0.0] * 16000, "expected a path or a numpy array"),
}


def assert_bad_audio_files_raise(transcribe, tmp_path) -> None:
    """`transcribe(path)` refuses a missing file, a text file and an empty file, each with an
    error naming the problem."""
    import pytest

    with pytest.raises(FileNotFoundError, match="not found"):
        transcribe(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    with pytest.raises(ValueError, match="not an audio file"):
        transcribe(text)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        transcribe(empty)
