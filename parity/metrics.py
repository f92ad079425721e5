"""Error statistics of one tap: MLX output `got` against the reference `want`.

All statistics are computed in float64 on the float values of both arrays. The pass rule is
numpy's allclose rule with the reference on the right and an absolute part tied to the tap's
scale: every element must satisfy `|got - want| <= max(atol, k_rms * rms(want)) + rtol * |want|`
(see `parity.spec.Tolerance`). Nothing passes on "most elements matched".

Gates outside the tap tables (an SNR >= 60 dB, a round-trip difference <= 0.1 dB) use `snr_db`,
which refuses mismatched shapes and NaN/Inf, and `at_least` / `at_most`, which refuse NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from parity.spec import ParityError, Tolerance


@dataclass(frozen=True)
class TapStats:
    name: str
    shape: tuple[int, ...]
    dtype: str  # dtype of the MLX side
    max_abs: float  # max |got - want|
    max_rel: float  # max |got - want| / |want| over want != 0 (inf if got differs where want == 0)
    mean_abs: float
    cosine: float  # cosine similarity of the flattened arrays (1.0 when both are all zero)
    snr_db: float  # 10 log10(sum want^2 / sum (got-want)^2); inf when identical
    needed_atol: float  # smallest absolute floor that passes at the tap's rtol (needed floor)
    needed_rtol: float  # smallest rtol that passes at the table's atol (inf if impossible)
    atol: float
    rtol: float
    passed: bool
    worst_index: tuple[int, ...]  # element with the largest excess over the tolerance
    worst_got: float
    worst_want: float
    n_fail: int  # elements over the tolerance
    size: int
    note: str = ""  # e.g. "fingerprint 4096/576000" when compared against a stored fingerprint
    over_tol: float = 0.0  # max |got - want| / (floor + rtol |want|): <= 1 passes
    rms: float = 0.0  # RMS of the reference tap (the scale k_rms multiplies)
    floor: float = 0.0  # the absolute slack used: max(atol, k_rms * rms)
    k_rms: float = 0.0

    @property
    def needed_k(self) -> float:
        """The needed floor relative to the tap's RMS (the k_rms that would just pass)."""
        if self.rms > 0:
            return self.needed_atol / self.rms
        return 0.0 if self.needed_atol == 0 else float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["worst_index"] = list(self.worst_index)
        d["needed_k"] = self.needed_k
        return d


def check_finite(name: str, side: str, a: np.ndarray) -> None:
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ParityError(f"tap {name!r}: {side} side has {int(bad.sum())} NaN/Inf values of "
                          f"{a.size} (first at index {first}: {a[first]}); a non-finite tap can "
                          "never pass, find where it first appears")


def check_shapes(name: str, got: np.ndarray, want: np.ndarray) -> None:
    if got.shape != want.shape:
        raise ParityError(f"tap {name!r}: shape mismatch, mlx {got.shape} vs reference "
                          f"{want.shape}; if only the steps/frames axis differs, the decoding "
                          "took another path (compare the tokens or codes before this tap); "
                          "otherwise fix the layout on one side (MLX is channels-last)")


def check_pair(name: str, got: np.ndarray, want: np.ndarray) -> None:
    """The hard errors of any comparison: a shape mismatch (no broadcasting), NaN/Inf on either
    side. Raises ParityError naming the tap."""
    check_shapes(name, got, want)
    check_finite(name, "mlx", got)
    check_finite(name, "reference", want)


def tap_stats(name: str, got: np.ndarray, want: np.ndarray, tol: Tolerance) -> TapStats:
    """Statistics of `got` (MLX) against `want` (reference); raises ParityError on hard errors."""
    check_pair(name, got, want)
    if got.size == 0:
        raise ParityError(f"tap {name!r} is empty (shape {got.shape}); nothing to compare")
    g = got.astype(np.float64).ravel()
    w = want.astype(np.float64).ravel()
    d = np.abs(g - w)
    aw = np.abs(w)
    nz = aw > 0
    max_rel = float(np.max(d[nz] / aw[nz])) if nz.any() else 0.0
    if (d[~nz] > 0).any():
        max_rel = float("inf")
    ng, nw = np.linalg.norm(g), np.linalg.norm(w)
    if ng == 0 and nw == 0:
        cosine = 1.0
    elif ng == 0 or nw == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(g, w) / (ng * nw))
    err = float(np.sum(d * d))
    snr_db = float("inf") if err == 0 else float(10 * np.log10(max(float(np.sum(w * w)), 1e-300) / err))
    needed_atol = float(np.max(np.maximum(d - tol.rtol * aw, 0.0)))
    rms = float(np.sqrt(np.mean(w * w)))
    floor = tol.floor(rms)
    over_atol = d > floor
    if not over_atol.any():
        needed_rtol = 0.0
    elif (aw[over_atol] == 0).any():
        needed_rtol = float("inf")
    else:
        needed_rtol = float(np.max((d[over_atol] - floor) / aw[over_atol]))
    bound = floor + tol.rtol * aw
    excess = d - bound
    n_fail = int(np.sum(excess > 0))
    pos = bound > 0
    over_tol = float(np.max(d[pos] / bound[pos])) if pos.any() else 0.0
    if (d[~pos] > 0).any():  # a difference where the tolerance is zero
        over_tol = float("inf")
    flat = int(np.argmax(excess))
    idx = tuple(int(i) for i in np.unravel_index(flat, got.shape))
    return TapStats(
        name=name, shape=tuple(got.shape), dtype=str(got.dtype),
        max_abs=float(d.max()), max_rel=max_rel, mean_abs=float(d.mean()),
        cosine=cosine, snr_db=snr_db, needed_atol=needed_atol, needed_rtol=needed_rtol,
        atol=tol.atol, rtol=tol.rtol, passed=n_fail == 0, worst_index=idx,
        worst_got=float(g[flat]), worst_want=float(w[flat]), n_fail=n_fail, size=int(got.size),
        over_tol=over_tol, rms=rms, floor=floor, k_rms=tol.k_rms)


@dataclass(frozen=True)
class DiscreteStats:
    name: str
    shape: tuple[int, ...]
    dtype: str
    passed: bool
    n_mismatch: int
    first_index: tuple[int, ...] | None  # first mismatch in row-major order
    first_got: int | None
    first_want: int | None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["first_index"] = None if self.first_index is None else list(self.first_index)
        return d


def discrete_stats(name: str, got: np.ndarray, want: np.ndarray) -> DiscreteStats:
    """Exact comparison of integer outputs (tokens, codes)."""
    check_shapes(name, got, want)
    for side, a in (("mlx", got), ("reference", want)):
        if a.dtype.kind not in "iub":
            raise ParityError(f"discrete tap {name!r}: {side} side has dtype {a.dtype}; discrete "
                              "outputs must be integer arrays (take argmax / codes before tapping)")
    neq = got != want
    n = int(neq.sum())
    if n == 0:
        return DiscreteStats(name, tuple(got.shape), str(got.dtype), True, 0, None, None, None)
    first = tuple(int(i) for i in np.argwhere(neq)[0])
    return DiscreteStats(name, tuple(got.shape), str(got.dtype), False, n, first,
                         int(got[first]), int(want[first]))


def snr_db(want: np.ndarray, got: np.ndarray, name: str = "audio") -> float:
    """10 log10(sum want^2 / sum (got - want)^2) in float64; inf when identical. Raises
    ParityError on a shape mismatch (no broadcasting) or a NaN/Inf on either side, so an SNR
    used as a gate can never be NaN."""
    want, got = np.asarray(want), np.asarray(got)
    check_pair(name, got, want)
    w, g = want.astype(np.float64), got.astype(np.float64)
    err = float(np.sum((g - w) ** 2))
    return float("inf") if err == 0 else float(10 * np.log10(max(float(np.sum(w * w)), 1e-300) / err))


def at_least(name: str, value: float, minimum: float) -> bool:
    """Gate `value >= minimum`; a NaN value is a hard error (`nan >= x` would read as a fail
    but `nan > x` as a pass: no gate is left to the direction of its comparison)."""
    if np.isnan(value):
        raise ParityError(f"{name} is NaN: a gate on it cannot pass; find the NaN input")
    return bool(value >= minimum)


def at_most(name: str, value: float, maximum: float) -> bool:
    """Gate `value <= maximum`; a NaN value is a hard error (see `at_least`)."""
    if np.isnan(value):
        raise ParityError(f"{name} is NaN: a gate on it cannot pass; find the NaN input")
    return bool(value <= maximum)
