"""Progress lines of a parity run: one per phase, with the elapsed time and the time left.

The time left is the estimate of the phases still planned, scaled by how the finished phases
compared with their own estimates (a loaded machine runs slower than the estimates' quiet one).
Estimates are seconds on the 2-core reference machine; a check states its own
(`Check.estimate_s`) and may plan its items one by one (`plan`). With `lanes` > 1 phases run
side by side (`python -m parity sweep --jobs N`): the time left is the pending work over the lanes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

# a build or one teacher-forced case of a real-size model on 2 cores, when nothing better is
# known (whisper-base, measured: 0.6-7 s of CPU per build, 2-8 s per case)
DEFAULT_PHASE_S = 5.0
PRIOR_S = 20.0  # seconds of phases assumed to have taken exactly their estimates


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 60}:{s % 60:02d}"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Progress:
    """Callable as a `log`: prefixes each line with `[elapsed, ~left]`."""

    def __init__(self, write: Callable[[str], None] = _stderr,
                 clock: Callable[[], float] = time.perf_counter, lanes: int = 1):
        self.write = write
        self.lanes = max(1, int(lanes))
        self.clock = clock
        self.t0 = clock()
        self.pending: dict[str, float] = {}  # planned phase -> estimated seconds
        self.finished_estimate = 0.0  # sum of the estimates of the finished phases
        self.finished_actual = 0.0  # the seconds those phases took (wall, as run)

    def plan(self, name: str, estimate_s: float | None = None) -> None:
        self.pending[name] = DEFAULT_PHASE_S if estimate_s is None else float(estimate_s)

    def finish(self, name: str, actual_s: float) -> None:
        """Phase `name` is over after `actual_s` seconds of wall time."""
        est = self.pending.pop(name, None)
        if est is not None:
            self.finished_estimate += est
            self.finished_actual += actual_s

    def drop(self, name: str) -> None:
        """Forget a planned phase (replaced by a finer plan of its parts)."""
        self.pending.pop(name, None)

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def left_s(self) -> float:
        """The pending estimates times this machine's speed relative to them, measured on the
        finished phases and pulled towards 1 by PRIOR_S of phases that took their estimate (one
        quick build must not scale the rest by 0.2)."""
        speed = ((self.finished_actual + PRIOR_S) / (self.finished_estimate + PRIOR_S))
        return sum(self.pending.values()) * speed / self.lanes

    def __call__(self, message: str) -> None:
        self.write(f"[{_clock(self.elapsed())} elapsed, ~{_clock(self.left_s())} left] {message}")
