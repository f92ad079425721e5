"""Compare two sets of taps (MLX against the reference, or against a stored golden).

Taps are compared in the reference's execution order. Hard errors (`ParityError`), never passes:
zero taps compared, a tap missing on one side (exact names only, both lists shown), NaN/Inf,
a shape mismatch. Discrete taps are compared exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from parity.metrics import DiscreteStats, TapStats, check_finite, discrete_stats, tap_stats
from parity.spec import STALE_FACTOR, ParityError, Tolerance, ToleranceTable

Result = TapStats | DiscreteStats


@dataclass(frozen=True)
class Fingerprint:
    """A large reference tap kept as values at fixed flat indices plus summary statistics."""

    shape: tuple[int, ...]
    indices: np.ndarray  # (K,) int64 flat indices into the row-major array, sorted
    values: np.ndarray  # (K,) float32 reference values at `indices`
    mean: float
    std: float
    min: float
    max: float
    l2: float  # Euclidean norm of the whole tap

    @classmethod
    def of(cls, a: np.ndarray, indices: np.ndarray) -> Fingerprint:
        a64 = a.astype(np.float64).ravel()
        return cls(tuple(a.shape), indices.astype(np.int64),
                   a.ravel()[indices].astype(np.float32), float(a64.mean()), float(a64.std()),
                   float(a64.min()), float(a64.max()), float(np.linalg.norm(a64)))

    def summary(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "l2": self.l2}


def compare_fingerprint(name: str, got: np.ndarray, fp: Fingerprint, tol: Tolerance) -> TapStats:
    """Elementwise check at the fingerprint's indices, then the summary statistics.

    If every element passed `|g-w| <= f + rtol|w|` (f = max(atol, k_rms*rms), the RMS of the
    whole tap from its summary), then with b = f + rtol*max|w| the
    mean, min, max and std move by at most b and the L2 norm by at most b*sqrt(n). A summary
    outside these bounds proves an element outside the sampled set failed.
    """
    if tuple(got.shape) != fp.shape:
        raise ParityError(f"tap {name!r}: shape mismatch, mlx {tuple(got.shape)} vs golden "
                          f"{fp.shape}; fix the layout on the MLX side (channels-last)")
    check_finite(name, "mlx", got)
    rms = float(np.sqrt(fp.std ** 2 + fp.mean ** 2))  # of the whole tap, not of the sample
    s = tap_stats(name, got.ravel()[fp.indices], fp.values,
                  Tolerance(tol.floor(rms), tol.rtol))
    worst = tuple(int(i) for i in np.unravel_index(int(fp.indices[s.worst_index[0]]), fp.shape))
    g = got.astype(np.float64).ravel()
    have = {"mean": float(g.mean()), "std": float(g.std()), "min": float(g.min()),
            "max": float(g.max()), "l2": float(np.linalg.norm(g))}
    rms = float(np.sqrt(fp.std ** 2 + fp.mean ** 2))  # RMS of the whole reference tap
    bound = tol.floor(rms) + tol.rtol * max(abs(fp.min), abs(fp.max))
    limits = {"mean": bound, "std": bound, "min": bound, "max": bound,
              "l2": bound * float(np.sqrt(g.size))}
    bad = [k for k, v in fp.summary().items() if abs(have[k] - v) > limits[k]]
    passed = s.passed and not bad
    return dataclasses.replace(
        s, shape=fp.shape, dtype=str(got.dtype), worst_index=worst, passed=passed,
        atol=tol.atol, k_rms=tol.k_rms, rms=rms, floor=tol.floor(rms),
        size=int(got.size),
        n_fail=s.n_fail if not bad else max(s.n_fail, 1),
        note=(f"fingerprint {fp.indices.size}/{got.size}"
              + ("; summary out of bounds: " + ", ".join(
                  f"{k} {have[k]:.6g} vs {fp.summary()[k]:.6g} (limit {limits[k]:.3g})"
                  for k in bad) if bad else "")))


@dataclass
class Comparison:
    results: list[Result] = field(default_factory=list)
    not_compared: dict[str, list[str]] = field(default_factory=dict)  # side -> extra tap names
    stopped_early: bool = False  # --fail-fast stopped at the first failure

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results) and not self.stopped_early

    @property
    def first_failure(self) -> Result | None:
        return next((r for r in self.results if not r.passed), None)


def compare_taps(
    got: Mapping[str, np.ndarray],  # MLX taps
    want: Mapping[str, np.ndarray | Fingerprint],  # reference (or golden) taps, execution order
    taps: Sequence[str],  # the spec's tap list
    table: ToleranceTable,
    discrete: Sequence[str] = (),
    fail_fast: bool = False,
    want_label: str = "reference",
) -> Comparison:
    if not taps:
        raise ParityError("zero taps to compare; a comparison of nothing is not a pass. List the "
                          "taps in the model spec")
    missing_got = [t for t in taps if t not in got]
    missing_want = [t for t in taps if t not in want]
    if missing_got or missing_want:
        raise ParityError(
            "taps missing on one side (names are matched exactly): "
            f"missing in mlx: {missing_got or 'none'}; missing in {want_label}: "
            f"{missing_want or 'none'}. mlx recorded {list(got)}; {want_label} recorded "
            f"{list(want)}")
    listed = set(taps)
    order = [t for t in want if t in listed]  # reference execution order
    out = Comparison(not_compared={
        "mlx": [t for t in got if t not in listed],
        want_label: [t for t in want if t not in listed]})
    for name in order:
        g, w = np.asarray(got[name]), want[name]
        if name in discrete:
            if isinstance(w, Fingerprint):
                raise ParityError(f"discrete tap {name!r} was stored as a fingerprint; discrete "
                                  "taps must be stored whole")
            r: Result = discrete_stats(name, g, np.asarray(w))
        else:
            tol, _ = table.for_tap(name)
            if isinstance(w, Fingerprint):
                r = compare_fingerprint(name, g, w, tol)
            else:
                r = tap_stats(name, g, np.asarray(w), tol)
        out.results.append(r)
        if fail_fast and not r.passed:
            out.stopped_early = len(out.results) < len(order)
            break
    return out


def compare_row(
    got: Mapping[str, np.ndarray],  # MLX taps
    want: Mapping[str, np.ndarray],  # reference taps, execution order
    table: ToleranceTable,
    taps: Sequence[str] | None = None,  # None: every tap the reference recorded
    discrete: Sequence[str] = (),
) -> dict:
    """One row of an end-to-end check (a clip, a codebook count) through `compare_taps`.

    Checks never compute their own error ratio: this is their way in. A hard error (NaN/Inf,
    shape mismatch, missing tap) fails the row, and its message, which names the tap, is the
    row's `error`. Returns JSON-able {"passed", "error", "failing_taps", "worst_tap",
    "worst_over_tolerance"} (the largest max |got-want| / (floor + rtol |want|), floor =
    max(atol, k_rms * rms(want)), over the continuous taps; <= 1 passes).
    """
    names = tuple(want) if taps is None else tuple(taps)
    try:
        cmp = compare_taps(got, want, names, table, discrete)
    except ParityError as e:
        return {"passed": False, "error": str(e), "failing_taps": [], "worst_tap": None,
                "worst_over_tolerance": None}
    cont = [r for r in cmp.results if isinstance(r, TapStats)]
    worst = max(cont, key=lambda r: r.over_tol, default=None)
    return {"passed": cmp.passed, "error": None,
            "failing_taps": [r.name for r in cmp.results if not r.passed],
            "worst_tap": worst.name if worst else None,
            "worst_over_tolerance": worst.over_tol if worst else 0.0}


def worst_pairs(got: np.ndarray, want: np.ndarray, tol: Tolerance, k: int = 5) -> list[tuple]:
    """The k elements with the largest excess over the tolerance: (index, got, want, |diff|)."""
    g = got.astype(np.float64).ravel()
    w = want.astype(np.float64).ravel()
    d = np.abs(g - w)
    excess = d - (tol.floor(np.sqrt(np.mean(w * w))) + tol.rtol * np.abs(w))
    top = np.argsort(excess)[::-1][:k]
    return [(tuple(int(i) for i in np.unravel_index(int(j), want.shape)), float(g[j]),
             float(w[j]), float(d[j])) for j in top]


def stale_overrides(table: ToleranceTable, results: Iterable[Result],
                    factor: float = STALE_FACTOR) -> list[dict]:
    """The overrides of `table` that are more than `factor` x looser than the run needed.

    For each continuous tap an override governs (the first matching pattern), its looseness is
    `granted / max(needed, default)`: the absolute floor it grants on that tap
    (max(atol, k_rms * rms)) over the larger of the floor the tap needed (`needed_atol`, at the
    override's rtol) and the floor the table's default would grant there (an override is never
    asked to be tighter than the default); for an override that loosens rtol, the same ratio of
    its rtol to max(needed rtol at its floor, the table's rtol) counts too (the larger of the
    two). An override is stale when its looseness exceeds `factor` on every tap it governed in
    `results` (all cases of a run), or when it governed none. Returns one JSON-able dict per
    stale override, in table order.
    """
    default = table.default()
    seen: dict[str, list[tuple[float, TapStats]]] = {o.pattern: [] for o in table.overrides}
    for r in results:
        if not isinstance(r, TapStats):
            continue
        _, o = table.for_tap(r.name)
        if o is None:
            continue
        looseness = max(r.floor / max(r.needed_atol, default.floor(r.rms), 1e-300),
                        r.rtol / max(r.needed_rtol, default.rtol, 1e-300))
        seen[o.pattern].append((looseness, r))
    out = []
    for o in table.overrides:
        base = {"pattern": o.pattern, "atol": o.atol, "k_rms": o.k_rms, "rtol": o.rtol,
                "reason": o.reason}
        got = seen[o.pattern]
        if not got:
            out.append(dict(base, taps=0, why="matched no tap of this run: remove it"))
            continue
        looseness, r = min(got, key=lambda x: x[0])
        if looseness > factor:
            out.append(dict(base, taps=len(got), looseness=looseness, tightest_tap=r.name,
                            granted_floor=r.floor, needed_floor=r.needed_atol, rms=r.rms,
                            why=(f"grants >= {looseness:.3g}x the floor needed on every tap it "
                                 f"matched ({len(got)} tap comparisons; tightest {r.name!r}: "
                                 f"floor {r.floor:.3g}, needed {r.needed_atol:.3g}, default "
                                 f"{default.floor(r.rms):.3g}); re-derive it from this run")))
    return out
