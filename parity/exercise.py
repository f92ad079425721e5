"""What a spec's decoding must exercise, measured on each side's taps.

Random weights can leave the decoding paths idle: a transducer that emits only blanks, a CTC
head with one class in every frame, a codec whose encoder output hardly varies over time (its
codes then pick one entry, its decoded audio is a DC offset). Such a model still compares tap by
tap, but a bug in the token loop, the duration handling or the codebook search would pass. A
spec therefore declares `Exercise` requirements (`ModelSpec.exercise`); the runner measures them
on the reference's taps and on the MLX side's for every case, the report shows the measured value
next to the requirement, and an unmet requirement fails the run.

Kinds (each measured value must be >= `minimum`):
- `distinct`: distinct values of a discrete tap along `axis` (one axis or a tuple taken
  together; ids in `ignore` not counted); for a tap with more axes, the fewest over the other
  axes' slices (e.g. every codebook over time);
- `non_blank`: fraction of the entries of a discrete tap that are not `blank`;
- `non_mode`: fraction of the entries that differ from the tap's most frequent value (1 - the
  share of the commonest token; ids in `ignore` are dropped first);
- `time_varying`: rms(x - mean of x over `axis`) / rms(x) of a continuous tap: the part of the
  signal that changes over time, relative to its whole scale (a near-constant latent is ~0);
- `output_variance`: std(tap) / std(inputs[`input`]) over all elements: the output's variance
  against the input's (decoded audio that is only an offset gives ~0).

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

KINDS = ("distinct", "non_blank", "non_mode", "time_varying", "output_variance")
DISCRETE_KINDS = ("distinct", "non_blank", "non_mode")


class ExerciseError(ValueError):
    """A requirement that cannot be measured: a tap or input missing, a wrong kind of tap."""


@dataclass(frozen=True)
class Exercise:
    kind: str  # one of KINDS
    tap: str  # the tap it is measured on (a discrete tap for DISCRETE_KINDS)
    minimum: float  # the measured value must be at least this
    axis: int | tuple[int, ...] = -1  # distinct: the axes counted along (the rest are slices);
    # time_varying: the time axis
    ignore: tuple[int, ...] = ()  # distinct / non_mode: ids not counted (blank, padding)
    blank: int | None = None  # non_blank: the blank id
    input: str = ""  # output_variance: the input array compared against ("audio")

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown exercise kind {self.kind!r}; choose one of {KINDS}")
        if self.kind == "non_blank" and self.blank is None:
            raise ValueError(f"exercise non_blank on {self.tap!r} needs blank= (the blank id)")
        if self.kind == "output_variance" and not self.input:
            raise ValueError(f"exercise output_variance on {self.tap!r} needs input= (the "
                             "input array name, e.g. 'audio')")

    def describe(self) -> str:
        """One line: what is required, e.g. `distinct(tokens) >= 5 (ignoring 1024)`."""
        extra = []
        if self.kind == "distinct" and self.axis != -1:
            extra.append(f"along axes {self.axis}" if isinstance(self.axis, tuple)
                         else f"along axis {self.axis}")
        if self.kind == "time_varying":
            extra.append(f"time axis {self.axis}")
        if self.ignore:
            extra.append("ignoring " + ", ".join(map(str, self.ignore)))
        if self.blank is not None:
            extra.append(f"blank {self.blank}")
        if self.input:
            extra.append(f"vs input {self.input!r}")
        return (f"{self.kind}({self.tap}) >= {self.minimum:g}"
                + (f" ({'; '.join(extra)})" if extra else ""))

    def measure(self, taps: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> float:
        if self.tap not in taps:
            raise ExerciseError(f"exercise {self.describe()}: tap {self.tap!r} was not recorded "
                                f"(recorded: {sorted(taps)}); fix the spec's exercise list")
        x = np.asarray(taps[self.tap])
        if x.size == 0:
            raise ExerciseError(f"exercise {self.describe()}: tap {self.tap!r} is empty")
        if self.kind in DISCRETE_KINDS and not np.issubdtype(x.dtype, np.integer):
            raise ExerciseError(f"exercise {self.describe()}: {self.kind} needs an integer "
                                f"(discrete) tap, {self.tap!r} is {x.dtype}")
        if self.kind == "distinct":
            return float(distinct_along(x, self.axis, self.ignore))
        if self.kind == "non_blank":
            return float(np.mean(x != self.blank))
        if self.kind == "non_mode":
            v = x.ravel()
            v = v[~np.isin(v, self.ignore)]
            if v.size == 0:
                return 0.0
            _, counts = np.unique(v, return_counts=True)
            return float(1.0 - counts.max() / v.size)
        x = x.astype(np.float64)
        if self.kind == "time_varying":
            total = np.sqrt(np.mean(x ** 2))
            varying = np.sqrt(np.mean((x - x.mean(axis=self.axis, keepdims=True)) ** 2))
            return float(varying / total) if total > 0 else 0.0
        if self.input not in inputs:
            raise ExerciseError(f"exercise {self.describe()}: input {self.input!r} is not among "
                                f"the case's inputs {sorted(inputs)}")
        ref = np.asarray(inputs[self.input], dtype=np.float64)
        s = float(np.std(ref))
        if s == 0:
            raise ExerciseError(f"exercise {self.describe()}: input {self.input!r} is constant")
        return float(np.std(x)) / s


def distinct_along(x: np.ndarray, axis: int | tuple[int, ...],
                   ignore: tuple[int, ...] = ()) -> int:
    """The fewest distinct values (ignoring `ignore`) among the slices of `x` along `axis` (one
    axis, or several taken together: (chunks, frames) of chunked codes)."""
    axes = tuple(a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis))
    rows = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    rows = rows.reshape(-1, int(np.prod([x.shape[a] for a in axes])))
    return min(len(np.setdiff1d(np.unique(r), np.asarray(ignore, dtype=x.dtype))) for r in rows)


@dataclass(frozen=True)
class ExerciseResult:
    exercise: Exercise
    reference: float | None  # measured on the reference's taps (None: not measurable there,
    # e.g. a golden's fingerprint of a continuous tap)
    mlx: float | None  # measured on the MLX side's taps
    error: str | None = None  # could not be measured (ExerciseError): a failure

    @property
    def passed(self) -> bool:
        vals = [v for v in (self.reference, self.mlx) if v is not None]
        return self.error is None and bool(vals) and all(v >= self.exercise.minimum for v in vals)

    def to_dict(self) -> dict:
        e = self.exercise
        return {"requirement": e.describe(), "kind": e.kind, "tap": e.tap, "minimum": e.minimum,
                "reference": self.reference, "mlx": self.mlx, "passed": self.passed,
                "error": self.error}


def evaluate(exercises, want: Mapping, got: Mapping, inputs: Mapping) -> list[ExerciseResult]:
    """Each requirement measured on the reference taps `want` (plain arrays only: a golden's
    fingerprint cannot be measured) and on the MLX taps `got`."""
    out = []
    for e in exercises:
        try:
            w = want.get(e.tap)
            ref = e.measure(want, inputs) if isinstance(w, np.ndarray) else None
            out.append(ExerciseResult(e, ref, e.measure(got, inputs)))
        except ExerciseError as err:
            out.append(ExerciseResult(e, None, None, error=str(err)))
    return out


# ------------------------------------------------------------------------------------------
# declarations shared by the spec families

AUDIO_VARYING = 0.5  # decoded audio: at least half its RMS varies over time (not an offset)
AUDIO_VARIANCE = 0.05  # decoded audio's std at least 5 % of the input's (not silence)


def decoded_audio(tap: str, time_axis: int, input: str = "audio",
                  varying: float = AUDIO_VARYING,
                  variance: float = AUDIO_VARIANCE) -> tuple[Exercise, ...]:
    """A codec's or vocoder's output: time-varying (not a DC offset) and not near silence
    against the input clip."""
    return (Exercise("time_varying", tap, varying, axis=time_axis),
            Exercise("output_variance", tap, variance, input=input))


def argmax_tokens(tap: str, distinct: int, non_mode: float) -> tuple[Exercise, ...]:
    """A teacher-forced or per-frame argmax: several tokens, none taking most positions."""
    return (Exercise("distinct", tap, distinct), Exercise("non_mode", tap, non_mode))
