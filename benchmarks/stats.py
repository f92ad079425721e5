"""Summary statistics of repeated timings: median and spread (min, max, quartiles)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarize(values: Sequence[float]) -> dict:
    """n, median, min, max, q1, q3, iqr and mean of `values` (linear-interpolated quartiles).

    Raises ValueError on an empty sequence or a non-finite value: a timing that is missing or NaN
    means the measurement failed, and a summary of it would hide that.
    """
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        raise ValueError("no values to summarize; run at least one timed repeat (--repeats >= 1)")
    if not np.isfinite(a).all():
        raise ValueError(f"non-finite values in the timings: {a.tolist()}")
    q1, med, q3 = (float(x) for x in np.percentile(a, [25, 50, 75]))
    return {"n": int(a.size), "median": med, "min": float(a.min()), "max": float(a.max()),
            "q1": q1, "q3": q3, "iqr": q3 - q1, "mean": float(a.mean())}


def spread_str(s: dict, scale: float = 1.0, fmt: str = "{:.3g}") -> str:
    """'median [min-max]' of a summary, values multiplied by `scale`."""
    med, lo, hi = (fmt.format(s[k] * scale) for k in ("median", "min", "max"))
    return med if s["n"] == 1 else f"{med} [{lo}-{hi}]"
