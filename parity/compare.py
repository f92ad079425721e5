"""Compare two sets of taps (MLX against the reference, or against a stored golden).

Taps are compared in the reference's execution order. Hard errors (`ParityError`), never passes:
zero taps compared, a tap missing on one side (exact names only, both lists shown), NaN/Inf,
a shape mismatch. Discrete taps are compared exactly. A large golden tap is a `Fingerprint`
(statistics of every frame block and channel block, stratified samples, the first and last frame;
golden/README.md), compared by `compare_fingerprint` with limits that a tap whose every element
passes cannot leave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from parity.metrics import DiscreteStats, TapStats, check_finite, discrete_stats, tap_stats
from parity.spec import STALE_FACTOR, ParityError, Tolerance, ToleranceTable

Result = TapStats | DiscreteStats


# ------------------------------------------------------------------------------------------
# fingerprints of large taps (stored in goldens; golden/README.md)

STATS = ("sum", "l2", "min", "max")  # the rows of Fingerprint.rows / Fingerprint.cols
MAX_ROW_BLOCKS = 1024  # frames are grouped so a tap has at most this many frame blocks (golden/ size: README)
MAX_COL_BLOCKS = 1024  # channels are grouped so a tap has at most this many channel blocks
MAX_EDGE = 4096  # the first and last frame are stored whole up to this many elements each
EDGE_1D = 1024  # a 1-D signal stores its first and last this many samples whole
ROUNDING = 2.0 ** -23  # relative slack for a statistic stored in float32 (2x its rounding)
SUM_ERROR = 1e-12  # float64 summation error allowance, relative to sqrt(m) * l2 (pairwise sums)


@dataclass(frozen=True)
class Grid:
    """How a tap is cut into frames and channels (channels-last).

    A tap of shape (..., C) with C > 1 and more than one frame is read as a matrix (R, C):
    R = prod(shape[:-1]) frames (batch, head and time axes flattened, row-major), C channels.
    A tap with at most one axis longer than 1, or whose last axis is 1 ((N,), (1, N),
    (1, N, 1): audio), is a 1-D signal: R = N frames of one sample, no channel statistics.
    Frames are grouped into blocks of `rows_per_block` consecutive frames (at most
    MAX_ROW_BLOCKS blocks), channels into blocks of `cols_per_block` (at most MAX_COL_BLOCKS);
    `edge` elements are stored whole at each end of the flat tap (the first and last frame).
    """

    frames: int  # R
    width: int  # C (1 for a 1-D signal)
    rows_per_block: int
    cols_per_block: int  # 0: a 1-D signal, no channel blocks
    edge: int

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> Grid:
        n = int(np.prod(shape, dtype=np.int64))
        if n == 0:
            raise ParityError(f"an empty tap (shape {tuple(shape)}) has no fingerprint")
        c = int(shape[-1]) if shape else 1
        if sum(d > 1 for d in shape) <= 1 or c == 1:
            r = -(-n // MAX_ROW_BLOCKS)
            return cls(n, 1, r, 0, min(n, EDGE_1D))
        rows = n // c
        return cls(rows, c, -(-rows // MAX_ROW_BLOCKS), -(-c // MAX_COL_BLOCKS), min(c, MAX_EDGE))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def one_d(self) -> bool:
        return self.cols_per_block == 0

    def row_starts(self) -> np.ndarray:
        return np.arange(0, self.frames, self.rows_per_block, dtype=np.int64)

    def col_starts(self) -> np.ndarray:
        return np.arange(0, self.width, self.cols_per_block, dtype=np.int64)

    def row_sizes(self) -> np.ndarray:
        """Elements in each frame block."""
        s = self.row_starts()
        return np.diff(np.append(s, self.frames)) * self.width

    def col_sizes(self) -> np.ndarray:
        """Elements in each channel block."""
        s = self.col_starts()
        return np.diff(np.append(s, self.width)) * self.frames


def block_stats(a: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray | None]:
    """(4, n_row_blocks) and (4, n_col_blocks) float64 statistics (STATS: sum, L2 norm, min,
    max) of every frame block and every channel block of `a`; None for a 1-D signal's channels."""
    x = np.asarray(a, dtype=np.float64).reshape(grid.frames, grid.width)

    def reduce(axis: int, starts: np.ndarray) -> np.ndarray:
        per = (x.sum(axis), (x * x).sum(axis), x.min(axis), x.max(axis))
        return np.stack([np.add.reduceat(per[0], starts), np.sqrt(np.add.reduceat(per[1], starts)),
                         np.minimum.reduceat(per[2], starts), np.maximum.reduceat(per[3], starts)])

    rows = reduce(1, grid.row_starts())
    cols = None if grid.one_d else reduce(0, grid.col_starts())
    return rows, cols


def block_limits(stats: np.ndarray, sizes: np.ndarray, floor: float, rtol: float) -> np.ndarray:
    """How far each statistic of a block of m elements can move when every element passes
    |g - w| <= f + rtol |w| (b_i = f + rtol |w_i|; w: the reference block; e = g - w):

    - sum: |sum g - sum w| <= sum b_i = f m + rtol sum|w_i| <= f m + rtol sqrt(m) ||w||
      (Cauchy-Schwarz);
    - L2: | ||g|| - ||w|| | <= ||e|| <= ||b|| <= f sqrt(m) + rtol ||w|| (triangle inequality);
    - max: max g >= g at argmax w >= max w - b, and max g <= max_i (w_i + b_i), so
      |max g - max w| <= f + rtol max|w|; the same for min.

    Each limit also carries the rounding of a statistic stored in float32 (ROUNDING |stat|) and,
    for the sum, the float64 summation error (SUM_ERROR sqrt(m) ||w||). A statistic outside its
    limit proves that some element of that block is outside its bound."""
    s, l2, lo, hi = stats
    m = sizes.astype(np.float64)
    maxabs = np.maximum(np.abs(lo), np.abs(hi))
    limits = np.stack([floor * m + (rtol + SUM_ERROR) * np.sqrt(m) * l2,
                       floor * np.sqrt(m) + rtol * l2,
                       floor + rtol * maxabs,
                       floor + rtol * maxabs])
    return limits + ROUNDING * np.abs(stats)


def needed_floor(stat: int, delta: float, want: float, size: int, maxabs: float, l2: float,
                 rtol: float) -> float:
    """The smallest floor f under which a statistic that moved by `delta` would be within its
    limit (block_limits solved for f): a proven lower bound on the absolute tolerance needed."""
    slack = ROUNDING * abs(want)
    if stat == 0:
        return max(0.0, (delta - slack - (rtol + SUM_ERROR) * np.sqrt(size) * l2) / size)
    if stat == 1:
        return max(0.0, (delta - slack - rtol * l2) / np.sqrt(size))
    return max(0.0, delta - slack - rtol * maxabs)


@dataclass(frozen=True)
class Fingerprint:
    """A large reference tap kept as statistics that cover every frame and every channel, plus
    elements stored whole: stratified samples (at least one in every frame block) and the
    first and last frame. `Grid` says how the tap is cut; golden/README.md the sizes."""

    shape: tuple[int, ...]
    grid: Grid
    indices: np.ndarray  # (K,) int64 flat indices (row-major) of the samples, sorted
    values: np.ndarray  # (K,) float32 reference values at `indices`
    edges: np.ndarray  # (2, E) float32: the first and the last E elements of the flat tap
    rows: np.ndarray  # (4, n_row_blocks) float32 STATS of every frame block
    cols: np.ndarray | None  # (4, n_col_blocks) float32 STATS of every channel block; 1-D: None
    mean: float  # whole-tap summary, float64
    std: float
    min: float
    max: float
    l2: float  # Euclidean norm of the whole tap

    @classmethod
    def of(cls, a: np.ndarray, indices: np.ndarray, grid: Grid | None = None) -> Fingerprint:
        a32 = np.asarray(a).astype(np.float32)
        grid = grid or Grid.of(a32.shape)
        flat, a64 = a32.ravel(), a32.astype(np.float64).ravel()
        rows, cols = block_stats(a32, grid)
        e = grid.edge
        return cls(tuple(a32.shape), grid, indices.astype(np.int64), flat[indices].copy(),
                   np.stack([flat[:e], flat[flat.size - e:]]), rows.astype(np.float32),
                   None if cols is None else cols.astype(np.float32),
                   float(a64.mean()), float(a64.std()), float(a64.min()), float(a64.max()),
                   float(np.linalg.norm(a64)))

    def summary(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "l2": self.l2}

    @property
    def rms(self) -> float:
        return float(np.sqrt(self.std ** 2 + self.mean ** 2))

    def checked(self) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices, reference values) of every element stored whole: samples and edges."""
        n, e = int(np.prod(self.shape, dtype=np.int64)), self.grid.edge
        idx = np.concatenate([self.indices, np.arange(e), np.arange(n - e, n)])
        return idx, np.concatenate([self.values, self.edges[0], self.edges[1]])

    def violations(self, got: np.ndarray, floor: float, rtol: float) -> list[dict]:
        """Every statistic of `got` outside the limit a passing tap keeps it in (block_limits;
        for the whole-tap summary see `summary_limits`), worst first."""
        g_rows, g_cols = block_stats(got, self.grid)
        out = []
        blocks = [("frames", self.rows, g_rows, self.grid.row_sizes())]
        if self.cols is not None:
            blocks.append(("channels", self.cols, g_cols, self.grid.col_sizes()))
        for what, want, have, sizes in blocks:
            w = want.astype(np.float64)
            lim = block_limits(w, sizes, floor, rtol)
            delta = np.abs(have - w)
            for k, j in zip(*np.nonzero(delta > lim)):
                maxabs = max(abs(w[2, j]), abs(w[3, j]))
                out.append({"axis": what, "block": int(j), "where": self._where(what, int(j)),
                            "stat": STATS[k],
                            "got": float(have[k, j]), "want": float(w[k, j]),
                            "limit": float(lim[k, j]), "ratio": float(delta[k, j] / lim[k, j]),
                            "needed_floor": needed_floor(int(k), float(delta[k, j]),
                                                         float(w[k, j]), int(sizes[j]),
                                                         maxabs, float(w[1, j]), rtol)})
        g = np.asarray(got, dtype=np.float64).ravel()
        have = {"mean": float(g.mean()), "std": float(g.std()), "min": float(g.min()),
                "max": float(g.max()), "l2": float(np.linalg.norm(g))}
        lim = summary_limits(self, floor, rtol)
        n = g.size
        for k, v in self.summary().items():
            d = abs(have[k] - v)
            if d > lim[k]:
                maxabs = max(abs(self.min), abs(self.max))
                need = {"mean": d - rtol * self.rms, "std": d - rtol * self.rms,
                        "min": d - rtol * maxabs, "max": d - rtol * maxabs,
                        "l2": (d - rtol * self.l2) / np.sqrt(n)}[k]
                out.append({"axis": "whole", "block": 0, "where": "whole tap", "stat": k,
                            "got": have[k], "want": v,
                            "limit": lim[k], "ratio": d / lim[k],
                            "needed_floor": max(0.0, float(need))})
        return sorted(out, key=lambda v: -v["ratio"])

    def _where(self, what: str, j: int) -> str:
        gr = self.grid
        if what == "channels":
            lo = j * gr.cols_per_block
            hi = min(lo + gr.cols_per_block, gr.width) - 1
            return f"channel {lo}" if lo == hi else f"channels {lo}..{hi}"
        lo = j * gr.rows_per_block
        hi = min(lo + gr.rows_per_block, gr.frames) - 1
        lead = self.shape if gr.one_d else self.shape[:-1]
        a, b = (tuple(int(i) for i in np.unravel_index(x, lead)) for x in (lo, hi))
        unit = "samples" if gr.one_d else "frames"
        return f"{unit[:-1]} {a}" if lo == hi else f"{unit} {a}..{b}"


def summary_limits(fp: Fingerprint, floor: float, rtol: float) -> dict[str, float]:
    """Limits of the whole-tap summary when every element passes (n elements, b_i as in
    block_limits, rms and max|w| of the reference): mean: |mean e| <= mean b <= f + rtol rms;
    std: |std g - std w| <= ||e - mean e|| / sqrt(n) <= ||e|| / sqrt(n) <= f + rtol rms;
    min and max: f + rtol max|w|; L2: f sqrt(n) + rtol ||w||. Plus 1e-12 relative float64 slack."""
    n = float(np.prod(fp.shape, dtype=np.int64))
    maxabs = max(abs(fp.min), abs(fp.max))
    lim = {"mean": floor + rtol * fp.rms, "std": floor + rtol * fp.rms,
           "min": floor + rtol * maxabs, "max": floor + rtol * maxabs,
           "l2": floor * np.sqrt(n) + rtol * fp.l2}
    return {k: float(v + 1e-12 * (abs(fp.summary()[k]) + fp.rms * np.sqrt(n)))
            for k, v in lim.items()}


def compare_fingerprint(name: str, got: np.ndarray, fp: Fingerprint, tol: Tolerance) -> TapStats:
    """Elementwise check of the elements stored whole (samples, first and last frame), then
    every statistic against the limit a passing tap keeps it in (`block_limits`,
    `summary_limits`). The floor is max(atol, k_rms * rms) with the RMS of the whole reference
    tap (from its summary), as in the live comparison. A statistic out of its limit fails the
    tap and is named in the note (which frames or channels); `needed_atol` then is at least the
    floor that statistic proves necessary."""
    if tuple(got.shape) != fp.shape:
        raise ParityError(f"tap {name!r}: shape mismatch, mlx {tuple(got.shape)} vs golden "
                          f"{fp.shape}; fix the layout on the MLX side (channels-last)")
    check_finite(name, "mlx", got)
    floor = tol.floor(fp.rms)
    idx, vals = fp.checked()
    s = tap_stats(name, got.ravel()[idx], vals, Tolerance(floor, tol.rtol))
    worst = tuple(int(i) for i in np.unravel_index(int(idx[s.worst_index[0]]), fp.shape))
    bad = fp.violations(got, floor, tol.rtol)
    note = f"fingerprint {len(np.unique(idx))}/{got.size} elements whole, " \
           f"{fp.rows.shape[1]} frame blocks" + \
           ("" if fp.cols is None else f", {fp.cols.shape[1]} channel blocks")
    if bad:
        note += (f"; {len(bad)} statistics out of bounds (a tap with every element within its "
                 "bound keeps them in): " + "; ".join(
                     f"{v['where']} {v['stat']} {v['got']:.6g} vs {v['want']:.6g} "
                     f"(limit {v['limit']:.3g})" for v in bad[:5])
                 + ("; ..." if len(bad) > 5 else ""))
    return dataclasses.replace(
        s, shape=fp.shape, dtype=str(got.dtype), worst_index=worst, passed=s.passed and not bad,
        atol=tol.atol, k_rms=tol.k_rms, rms=fp.rms, floor=floor, size=int(got.size),
        n_fail=max(s.n_fail, 1) if bad else s.n_fail,
        needed_atol=max([s.needed_atol] + [v["needed_floor"] for v in bad]),
        over_tol=max([s.over_tol] + [v["ratio"] for v in bad]), note=note)


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


def nmse_bound(want: np.ndarray, floor: float, rtol: float) -> float | None:
    """The largest mean((got - want)^2) / mean(want^2) a tap can have while every element is
    within floor + rtol * |want| (the export's aggregate bound); None for an all-zero tap."""
    w = np.abs(np.asarray(want, dtype=np.float64))
    power = float(np.mean(w * w))
    return float(np.mean((floor + rtol * w) ** 2) / power) if power > 0 else None


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
