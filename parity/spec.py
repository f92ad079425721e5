"""The spec object that describes one model to the parity harness.

A `ModelSpec` says how to build both sides (the MLX port and the upstream reference), how to make
their inputs, which taps to compare, how tight each comparison is per dtype, and which golden
cases to store. Specs are plain data plus callables; building a side is lazy, so importing a spec
(and listing the registry) never imports torch or mlx.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from parity.exercise import DISCRETE_KINDS, Exercise

DTYPES = ("float32", "float16", "bfloat16")  # MLX compute dtypes; every spec has a table for each
TIERS = ("default", "full")  # `python -m parity run MODEL` and `... run MODEL --full`

Arrays = dict[str, np.ndarray]


class ParityError(Exception):
    """A comparison that cannot pass: zero taps, a missing tap, NaN/Inf, a shape mismatch."""


class Side(Protocol):
    """One built side of a comparison (reference or MLX)."""

    config: dict  # the model configuration it was built with (recorded in reports and goldens)
    versions: dict  # upstream package versions that produced its numbers

    def __call__(self, inputs: Arrays) -> Arrays:
        """Run on `inputs`; return taps in execution order, numpy, in the MLX layout."""
        ...


@dataclass(frozen=True)
class Tolerance:
    """Per-element bound: |got - want| <= max(atol, k_rms * rms(want)) + rtol * |want|.

    `k_rms` ties the absolute slack to the tap's scale (the RMS of the whole reference tap), so
    one default means the same thing on a tap of RMS 0.002 and on one of RMS 30; `atol` is the
    floor that keeps an all-zero or tiny tap from demanding exact equality.
    """

    atol: float  # absolute floor of the slack per element
    rtol: float  # slack relative to |reference| per element
    k_rms: float = 0.0  # slack relative to the tap's RMS: floor = max(atol, k_rms * rms(want))

    def floor(self, rms: float) -> float:
        """The absolute part of the bound for a reference tap of this RMS."""
        return max(self.atol, self.k_rms * float(rms))


# The float32 rule every spec's table starts from (MLX fp32 against the fp32 torch reference, CPU).
# Measured over the fp32 reports of 2026-12-04 run at rtol 1e-5 (27 specs, 2458 tap comparisons;
# the rms from the golden summaries) and the re-runs of 2026-12-05 (every test-tiny spec,
# whisper-tiny.en, whisper-base, snac-24khz, vocos-mel-24khz, s3tokenizer-v1/v2, bigvgan-v2-24khz):
# needed floor / rms(tap) has median 4.2e-6, 99th percentile 2.4e-5, 99.5th 3.6e-5; the worst
# tap the default covers needs 4.3e-5 (snac-24khz decoder.model.6, rms 4.2, 2026-12-04; 3.6e-5
# on 2026-12-05; parakeet encoder feed_forward2 3.7e-5), so k_rms 1e-4 is 2.3x that. rtol 1e-5 (~84 fp32 ulps) covers outlier
# elements far above the tap's RMS (whisper's encoder channels at ~600 where rms is 5). atol 1e-7
# only keeps an all-zero or near-silent tap from demanding exact equality. Taps that need more
# carry an Override in their spec, with the measurement; `stale_overrides` flags loose ones.
FP32_ATOL = 1e-7
FP32_K_RMS = 1e-4
FP32_RTOL = 1e-5
STALE_FACTOR = 10.0  # an override granting > this x the floor its taps needed is stale


@dataclass(frozen=True)
class Override:
    pattern: str  # fnmatch glob over tap names, e.g. "decoder.blocks.*.mlp"
    atol: float
    rtol: float
    reason: str  # why this tap needs a looser bound, with the measurement behind it
    k_rms: float = 0.0  # see Tolerance

    def __post_init__(self):
        if not self.reason.strip():
            raise ValueError(f"tolerance override {self.pattern!r} has no reason; every looser "
                             "entry must say why, with the measured error that justified it")


@dataclass(frozen=True)
class ToleranceTable:
    atol: float  # default for every tap without a matching override
    rtol: float
    overrides: tuple[Override, ...] = ()  # first matching pattern wins
    k_rms: float = 0.0  # see Tolerance

    def for_tap(self, name: str) -> tuple[Tolerance, Override | None]:
        for o in self.overrides:
            if fnmatch.fnmatchcase(name, o.pattern):
                return Tolerance(o.atol, o.rtol, o.k_rms), o
        return Tolerance(self.atol, self.rtol, self.k_rms), None

    def default(self) -> Tolerance:
        """The tolerance of a tap that no override matches."""
        return Tolerance(self.atol, self.rtol, self.k_rms)

    def to_dict(self) -> dict:
        return {"atol": self.atol, "rtol": self.rtol, "k_rms": self.k_rms,
                "overrides": [{"pattern": o.pattern, "atol": o.atol, "rtol": o.rtol,
                               "k_rms": o.k_rms, "reason": o.reason} for o in self.overrides]}


def fp32_table(*overrides: Override) -> ToleranceTable:
    """The float32 table of a spec: the stated defaults (FP32_ATOL, FP32_K_RMS, FP32_RTOL) plus
    the spec's measured overrides (first matching pattern wins)."""
    return ToleranceTable(FP32_ATOL, FP32_RTOL, tuple(overrides), k_rms=FP32_K_RMS)


def fp32_override(pattern: str, k_rms: float, reason: str, atol: float = FP32_ATOL) -> Override:
    """An fp32 override that loosens only the scale-relative floor (rtol stays FP32_RTOL)."""
    return Override(pattern, atol, FP32_RTOL, reason, k_rms=k_rms)


@dataclass(frozen=True)
class GoldenCase:
    name: str  # file stem under golden/<model>/ (letters, digits, '-', '_')
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)  # passed to the input maker


@dataclass(frozen=True)
class CaseInputs:
    arrays: Arrays  # what both sides receive, e.g. {"audio": (N,) float32, "tokens": (1, T) int32}
    meta: dict  # JSON-able description (source clip, transcript, token ids...) for reports/goldens


@dataclass(frozen=True)
class Goal:
    """A gate on a metric: `value >= at_least` or `value <= at_most` (exactly one is given),
    applied in `dtypes` (elsewhere the metric is reported against the goal but not gated). A NaN
    value is a hard error, never a pass or a quiet fail (`parity.metrics.at_least`)."""

    why: str  # where the threshold comes from (the bound, a measurement with its date)
    at_least: float | None = None
    at_most: float | None = None
    dtypes: tuple[str, ...] = ("float32",)

    def __post_init__(self):
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("a metric goal takes exactly one of at_least= and at_most=")
        if not self.why.strip():
            raise ValueError("a metric goal must say why its threshold is what it is")

    def text(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    fn: Callable[[Arrays, Arrays], float]  # (reference taps, mlx taps) -> value
    goal: Goal | None = None  # None: reported only; else a value that misses it fails the case


CHECK_STATUSES = ("passed", "failed", "not run")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one `Check`: "passed", "failed", or "not run" (`not_run` says why, e.g.
    the manifest path of missing clips). A check that did not run is never a pass: it fails the
    run, with its reason in the report (`CheckResult.missing`)."""

    name: str
    passed: bool
    summary: dict  # headline numbers (JSON-able), e.g. token identity rate, word-time max diff
    rows: list[dict]  # one JSON-able row per item checked (clip x strategy), shown as a table
    error: str | None = None  # a hard error: the check could not be carried out
    not_run: str | None = None  # why the check could not run at all (missing inputs: the path)

    def __post_init__(self):
        if self.not_run is not None and self.passed:
            raise ValueError(f"check {self.name!r} did not run ({self.not_run}); it cannot pass")

    @property
    def status(self) -> str:
        return "not run" if self.not_run is not None else "passed" if self.passed else "failed"

    @classmethod
    def missing(cls, name: str, reason: str, summary: dict | None = None) -> CheckResult:
        """A check whose required inputs are missing: status "not run", `reason` naming the path
        it looked for and how to provide it."""
        return cls(name, False, dict(summary or {}), [], not_run=reason)


@dataclass(frozen=True)
class Check:
    """An end-to-end check beyond the taps (decoded tokens, word timings, WER): gated, so a
    failing check fails the run. It builds and runs both sides itself."""

    name: str
    description: str
    fn: Callable[[str, Callable[[str], None]], CheckResult]  # (dtype, log) -> result
    dtypes: tuple[str, ...] = ("float32",)  # dtypes in which the check applies
    tiers: tuple[str, ...] = TIERS  # run tiers that include it: "default" (`parity run`), "full"
    estimate_s: float | None = None  # seconds one run takes on 2 cores (progress ETA only)


@dataclass(frozen=True)
class BenchStage:
    name: str  # what one call does: "encode", "decode", "transcribe", "vocode", ...
    run: Callable[[], Any]  # one call on prepared inputs; fully evaluated (mx.eval) before return;
    # a dict it returns is recorded per call (JSON-able facts: transcript, tokens decoded, ...)
    audio_seconds: float  # seconds of audio the call covers: real-time factor = time / this


@dataclass(frozen=True)
class BenchSpec:
    """How `make bench MODEL=...` times a model (benchmarks/runner.py): for each engine, in
    a fresh process, `build(engine, dtype, audio)` loads the model (timed as `load`) and returns
    its stages; each stage gets one untimed warm-up and `repeats` timed calls."""

    engines: tuple[str, ...]  # the first is ours ("mlx"); the others are peers ("torch", ...)
    build: Callable[[str, str, np.ndarray], list[BenchStage]]  # audio: 16 kHz mono float32
    audio_seconds: float = 10.0  # length of the real-speech clip passed to build
    dtypes: tuple[str, ...] = ("float32",)  # dtypes our engine is timed in
    # peers that run the run's dtype, with the dtypes each can run; other peers run float32
    peer_dtypes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prepare: Callable[[str, str], Any] | None = None  # (engine, dtype): untimed, in the parent
    report: str = "stages"  # "stages", or "transcription" (stage facts: text, n_tokens, ...)
    # where `build` can time besides this machine's CPU: "gpu" (MLX's GPU, torch's CUDA); off
    # the CPU the runner calls `build(engine, dtype, audio, device=...)`
    devices: tuple[str, ...] = ("cpu",)
    # on the GPU, the peers that run the run's dtype (torch CUDA runs float16; CPU torch is timed
    # in float32); other peers run float32
    gpu_peer_dtypes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyMapSource:
    """What `python -m parity export` needs to write a model's checkpoint key map: the export
    runs `convert` on `upstream` and matches every converted array to the upstream array it came
    from (same values, possibly transposed), so the map is what the converter does, not a
    second description of it that could drift."""

    upstream: Mapping[str, np.ndarray]  # the upstream checkpoint's state dict, upstream key names
    convert: Callable[[dict], dict]  # the model's converter: upstream state -> our parameter paths
    converter: str  # where that converter lives, e.g. "mlx_impl/whisper/convert.py"
    # (buffer, how the port rebuilds it): arrays the port computes instead of loading
    computed: tuple[tuple[str, str], ...] = ()
    notes: str = ""  # what a porter must know that the map cannot say (checks the loader makes)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    weights: str  # e.g. "real weights: ..." or "seeded random weights, not trained (seed 0)"
    build_mlx: Callable[[str], Side]  # dtype name (one of DTYPES) -> MLX side
    build_reference: Callable[[], Side]  # -> reference side (float32)
    make_inputs: Callable[[GoldenCase], CaseInputs]
    taps: tuple[str, ...]  # names compared, in the reference's execution order
    tolerances: Mapping[str, ToleranceTable]  # dtype name -> table
    golden_cases: tuple[GoldenCase, ...]
    discrete: tuple[str, ...] = ()  # taps compared exactly (tokens, codes); must be integer arrays
    metrics: tuple[Metric, ...] = ()
    checks: tuple[Check, ...] = ()  # end-to-end checks run with the reference (see Check)
    golden_whole: tuple[str, ...] = ()  # taps stored whole in goldens whatever their size
    config: Mapping[str, Any] = field(default_factory=dict)  # model config (reports, goldens)
    bench: BenchSpec | None = None  # how `make bench` times it against its peers (None: not timed)
    # what its decoding must exercise on every case, measured on both sides (parity/exercise.py);
    # an unmet requirement fails the run
    exercise: tuple[Exercise, ...] = ()
    # `python -m parity export` (parity/export.py): the layout of each tap as the MLX side records
    # it, fnmatch pattern -> text, e.g. {"encoder.*": "(B, frames, n_audio_state)"}; first match
    layouts: Mapping[str, str] = field(default_factory=dict)
    # the checkpoint key map for the export (see KeyMapSource); None: the export says that this
    # spec does not provide one
    key_map: Callable[[], KeyMapSource] | None = None

    def __post_init__(self):
        missing = [d for d in DTYPES if d not in self.tolerances]
        if missing:
            raise ValueError(f"spec {self.name!r} has no tolerance table for {missing}; add one "
                             "per dtype, measured with scripts/measure_precision.py "
                             "(docs/PRECISION.md says how the tables are derived)")
        if len(set(self.taps)) != len(self.taps):
            raise ValueError(f"spec {self.name!r} lists a tap twice")
        unknown = sorted(set(self.discrete) - set(self.taps))
        if unknown:
            raise ValueError(f"spec {self.name!r}: discrete taps {unknown} are not in its tap list")
        unknown = sorted({e.tap for e in self.exercise} - set(self.taps))
        if unknown:
            raise ValueError(f"spec {self.name!r}: exercise taps {unknown} are not in its tap "
                             "list")
        continuous = sorted({e.tap for e in self.exercise if e.kind in DISCRETE_KINDS}
                            - set(self.discrete))
        if continuous:
            raise ValueError(f"spec {self.name!r}: exercises {DISCRETE_KINDS} need discrete "
                             f"taps; {continuous} are not in its discrete list")
        names = [c.name for c in self.golden_cases]
        if len(set(names)) != len(names):
            raise ValueError(f"spec {self.name!r} repeats golden case names: {names}")

    def layout(self, tap: str) -> str | None:
        """The layout text of `tap` from `layouts` (first matching pattern), or None."""
        return next((v for k, v in self.layouts.items() if fnmatch.fnmatchcase(tap, k)), None)

    def tolerance(self, dtype: str) -> ToleranceTable:
        if dtype not in self.tolerances:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(self.tolerances)}")
        return self.tolerances[dtype]
