"""Helpers shared by the codec and vocoder parity specs (dac, snac, mimi, encodec, bigvgan,
s3tokenizer, vocos): one implementation each of what those specs do alike.

- clips: `resample` (16 kHz -> a model rate), `fixture_clip` (a committed fixture at a model
  rate), `clip_meta` (the clip block of a case's metadata);
- weights: `seeded_checkpoints` (the per-config cache of a reference's seeded random
  checkpoint), `random_checkpoints(package)` (that cache over `reference.<package>`'s
  `random_checkpoint`), `load_model` (the model package's own `load(path, dtype)`);
- sides: `ReferenceSide` (an adapter hooking the spec's tap list) and `MlxSide` (the model
  recording into a `mlx_impl.taps.Taps`; `layer_taps=False` keeps only `end_tap` names), input
  layouts `mono_batch`, `channels_last_batch`, `torch_batch`; `taps_to_numpy`;
- metrics: `snr_db`, `roundtrip_snr` (over the common length), `codec_metrics` (codes equal,
  decoded SNR, round-trip SNR of each side and their difference), `codes_summary`;
- `roundtrip_check` (one clip's verdict: `roundtrip_row`): the gated codec round trip on a
  ../shared/speech clip (DAC, SNAC);
- `encode_decode_stages`: a codec's "encode" and "decode" benchmark stages;
- `CodecFamily`: what one codec's specs share (package, adapter, MLX side, tap list, tolerance
  tables, metrics, input cut and extras, benchmark calls); `family.spec(name, description,
  config, cases)` is a `ModelSpec` with both sides, the fixture-clip input maker, the
  shared-speech check and the benchmark built here. A codec spec module is its presets, its tap
  list, its input maker pieces and its tolerance tables.

Importing this module imports neither torch nor mlx: functions import them when called.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity import clips
from parity.clips import FIXTURES, missing_shared_speech, read_clip, shared_speech
from parity.compare import compare_row
from parity.exercise import Exercise
from parity.metrics import at_least, at_most, check_pair, snr_db  # noqa: F401  (snr_db: codec.snr_db)
from parity.spec import (BenchSpec, BenchStage, CaseInputs, Check, CheckResult, Goal, GoldenCase,
                         Metric, ModelSpec, ParityError, ToleranceTable)

SNR_MIN_DB = 60.0  # decoded audio vs the reference's
ROUNDTRIP_DIFF_DB = 0.1  # |round-trip SNR ours - reference's|
# The goals the fp32 case metrics are gated on (fp16 reports them against the goal, ungated):
# decoded SNR >= 60 dB (the fp32 reports of 2026-12-04 measure 108-134 dB on every codec and
# vocoder spec; dac-24khz fox 104.8 dB in a run of 2026-12-05) and round-trip SNR within 0.1 dB
# of the reference's (measured 0.0 dB).
SNR_GOAL = Goal("decoded audio SNR vs the reference's >= 60 dB (fp32 goal; measured "
                ">= 104 dB, 2026-12-05)", at_least=SNR_MIN_DB)
ROUNDTRIP_GOAL = Goal("round-trip SNR within 0.1 dB of the reference's (fp32 goal; measured "
                      "0.0 dB, 2026-12-04)", at_most=ROUNDTRIP_DIFF_DB)
SHARED_CLIP = "cmu_arctic_a0024"  # 3.96 s of real English speech
WEIGHTS_SEED = 0  # torch seed of the seeded random checkpoints (`random_checkpoints`)


# ------------------------------------------------------------------------------------------
# clips


def resample(audio16k: np.ndarray, sample_rate: int) -> np.ndarray:
    """16 kHz audio -> `sample_rate` (`parity.clips.resample`), float32."""
    return clips.resample(audio16k, 16000, sample_rate)


def fixture_clip(clip_id: str, sample_rate: int, seconds: float | None = None) -> tuple[dict, np.ndarray]:
    """A committed fixture clip as float32 mono at `sample_rate` (`parity.clips.read_clip`)."""
    return clips.read_clip(clip_id, FIXTURES, sample_rate, seconds)


def clip_meta(entry: Mapping, sample_rate: int, seconds: float | None, n_samples: int,
              file: str | None = None) -> dict:
    """The clip block of a case's metadata: id, file (a fixture unless `file` is given),
    sha256, the rate it was resampled to, the cut and the sample count."""
    return {"clip": entry["id"], "file": file or f"tests/fixtures/speech/{entry['file']}",
            "clip_sha256": entry.get("sha256"), "resampled_to_hz": sample_rate,
            "seconds": seconds, "n_samples": int(n_samples)}


# ------------------------------------------------------------------------------------------
# weights


def seeded_checkpoints(build: Callable[[dict], Path]) -> Callable[[Mapping], Path]:
    """`checkpoint(config)`: the folder `build(config)` writes (a reference's seeded random
    checkpoint), built once per distinct config in this process (keyed by its sorted JSON)."""

    @functools.lru_cache(maxsize=8)
    def cached(config_json: str) -> Path:
        return build(json.loads(config_json))

    def checkpoint(config: Mapping) -> Path:
        return cached(json.dumps(dict(config), sort_keys=True))

    return checkpoint


# ------------------------------------------------------------------------------------------
# sides


class ReferenceSide:
    """A spec's reference side: a reference adapter (reference/<model>.py) built on the seeded
    checkpoint; calling it returns `input_values` (the input audio in the MLX layout, see
    `input_values`) followed by the adapter's taps. `taps` is the spec's tap list: the adapter
    hooks the listed names that are upstream module paths (`layer_taps=False`: none of them)."""

    def __init__(self, adapter, config: Mapping, taps: tuple[str, ...] = (),
                 layout: Callable[[np.ndarray], np.ndarray] | None = None):
        self._ref = adapter
        self.model = adapter.model
        self.config = dict(config)
        self.versions = adapter.versions
        self.taps = tuple(t for t in taps if t != "input_values")
        self._layout = layout or mono_batch

    def input_values(self, audio: np.ndarray) -> np.ndarray:
        return self._layout(audio)

    def __call__(self, inputs, layer_taps: bool = True):
        audio = np.asarray(inputs["audio"], dtype=np.float32)
        taps = {"input_values": self.input_values(audio)}
        taps.update(self._ref(inputs, taps=self.taps if layer_taps else ()))
        return taps


def mono_batch(audio: np.ndarray) -> np.ndarray:
    """(N,) -> (1, N): the input layout of the MLX codecs that take mono (B, N) audio."""
    return audio[None]


def channels_last_batch(audio: np.ndarray) -> np.ndarray:
    """(N,) or (N, channels) -> (1, N, channels) (MLX EnCodec, Mimi)."""
    return audio.reshape(1, audio.shape[0], -1)


def torch_batch(audio: np.ndarray):
    """(N,) or (N, channels) -> a (1, channels, N) torch tensor, the upstream codecs' input."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(audio.reshape(audio.shape[0], -1).T[None]))


def end_tap(name: str) -> bool:
    """The taps kept on long clips (`layer_taps=False`): the input, the quantizer's (codes) and
    the output audio, so that no layer's activations are held."""
    return name.startswith("quantizer.") or name in ("input_values", "audio_values")


class MlxSide:
    """A spec's MLX side: `self.model` is `mlx_impl.<package>.load.load(checkpoint(config),
    dtype)` (the model package owns its loading); subclasses set `package` and `checkpoint` and
    define `run(x, inputs, taps)` (call the model on the input audio `x`, recording into
    `taps`), or `__call__(inputs) -> taps` where the generic one does not fit."""

    package: str  # the mlx_impl package, e.g. "dac"
    checkpoint: Callable[[Mapping], Path]  # staticmethod: config -> the seeded checkpoint folder
    layout = staticmethod(mono_batch)  # numpy audio -> the model's input layout

    def __init__(self, config: Mapping, dtype: str):
        import mlx.core as mx

        self._mx = mx
        self.model = load_model(self.package, self.checkpoint(config), dtype)
        self.config = dict(config)
        self.versions = {"mlx": mx.__version__}

    def input_values(self, inputs):
        """The model's input audio in its layout (`layout`)."""
        return self._mx.array(self.layout(np.asarray(inputs["audio"], dtype=np.float32)))

    def __init_subclass__(cls, **kwargs):
        # checked when a spec module defines its side, not when a run first calls it
        super().__init_subclass__(**kwargs)
        if not hasattr(cls, "run") and cls.__call__ is MlxSide.__call__:
            raise TypeError(f"{cls.__name__} must define run(x, inputs, taps) or __call__(inputs)")

    def __call__(self, inputs, layer_taps: bool = True) -> dict[str, np.ndarray]:
        """Taps as numpy (`taps_to_numpy`); `layer_taps=False` keeps only `end_tap` names."""
        from mlx_impl.taps import Taps

        taps = Taps() if layer_taps else Taps(keep=end_tap)
        self.run(taps("input_values", self.input_values(inputs)), inputs, taps)
        return taps_to_numpy(self._mx, taps)


def load_model(package: str, path: Path, dtype: str = "float32"):
    """`mlx_impl.<package>.load.load(path, dtype)`: the model package's own loader."""
    import importlib

    return importlib.import_module(f"mlx_impl.{package}.load").load(path, dtype)


def taps_to_numpy(mx, taps: Mapping) -> dict[str, np.ndarray]:
    """Evaluate MLX taps and return them as numpy: floats as float32, integer taps (codes) as
    int64, the reference's dtype."""
    mx.eval(list(taps.values()))
    return {k: np.array(v.astype(mx.int64) if mx.issubdtype(v.dtype, mx.integer)
                        else v.astype(mx.float32)) for k, v in taps.items()}


# ------------------------------------------------------------------------------------------
# metrics


def decoded_snr(ref, got) -> float:
    """SNR of the MLX decoded audio against the reference's."""
    return snr_db(ref["audio_values"], got["audio_values"], "audio_values")


def roundtrip_snr(side, time_axis: int = -1) -> float:
    """SNR of one side's reconstruction against its input, over their common length along
    `time_axis` (-1 for (B, N) audio, 1 for (B, N, channels)).

    DAC: with an odd upsampling stride the decoder is shorter than the input: a transposed conv
    of kernel 2s, stride s and padding ceil(s/2) gives s*L - 1 samples, so the 24 and 16 kHz
    configurations (upsampling strides 8, 5, 4, 2) decode 11832 samples from 11840, in the
    reference as in the port. Whole-hop inputs otherwise decode to their own length, and the
    other codecs' decoded audio is cut to the input length: there the whole arrays are compared.
    """
    x, y = side["input_values"], side["audio_values"]
    n = min(x.shape[time_axis], y.shape[time_axis])
    return snr_db(np.take(x, np.arange(n), axis=time_axis),
                  np.take(y, np.arange(n), axis=time_axis), "input_values vs audio_values")


def roundtrip_diff(ref, got, time_axis: int = -1) -> float:
    """|round-trip SNR of the MLX side - the reference's| in dB."""
    return abs(roundtrip_snr(ref, time_axis) - roundtrip_snr(got, time_axis))


def codec_metrics(codes_equal: Callable[[Any, Any], float], codes_description: str,
                  time_axis: int = -1) -> tuple[Metric, ...]:
    """Codes equal (`codes_equal`), decoded SNR, each side's round-trip SNR and their
    difference; `time_axis` as in `roundtrip_snr`."""
    return (
        Metric("codes_equal_fraction", codes_description, codes_equal),
        Metric("decoded_snr_db", "SNR of the MLX decoded audio against the reference's (dB)",
               decoded_snr, goal=SNR_GOAL),
        Metric("roundtrip_snr_ref_db", "SNR(input, reference reconstruction) in dB",
               lambda r, g: roundtrip_snr(r, time_axis)),
        Metric("roundtrip_snr_mlx_db", "SNR(input, MLX reconstruction) in dB",
               lambda r, g: roundtrip_snr(g, time_axis)),
        Metric("roundtrip_snr_abs_diff_db", "|roundtrip SNR MLX - reference| in dB",
               lambda r, g: roundtrip_diff(r, g, time_axis), goal=ROUNDTRIP_GOAL),
    )


def codes_summary(want: np.ndarray, got: np.ndarray) -> dict:
    """Fraction equal and the first mismatch (index, mlx, reference) of two code arrays."""
    if want.shape != got.shape:
        return {"codes_equal_fraction": 0.0, "first_mismatch": f"shapes {got.shape} vs {want.shape}"}
    bad = np.argwhere(want != got)
    first = None if bad.size == 0 else {"index": [int(i) for i in bad[0]],
                                        "mlx": int(got[tuple(bad[0])]),
                                        "reference": int(want[tuple(bad[0])])}
    return {"codes_equal_fraction": float(np.mean(want == got)), "first_mismatch": first}


# ------------------------------------------------------------------------------------------
# checks


EXACT = ToleranceTable(atol=0.0, rtol=0.0)  # for comparisons of discrete taps only


def roundtrip_row(want: dict, got: dict, code_taps: tuple[str, ...]) -> dict:
    """One clip of `roundtrip_check`: the codes through the harness's comparison (exactly),
    decoded SNR >= SNR_MIN_DB (shapes and finiteness checked first), round-trip SNR within
    ROUNDTRIP_DIFF_DB of the reference's. A NaN/Inf or a shape mismatch fails the row with an
    error naming the tap."""
    row = compare_row(got, want, EXACT, taps=code_taps, discrete=code_taps)
    del row["worst_tap"], row["worst_over_tolerance"]  # no continuous taps here
    if row["error"] is not None:
        return row
    for t in code_taps:
        s = codes_summary(want[t], got[t])
        row[f"{t} equal"] = s["codes_equal_fraction"]
        row[f"{t} first mismatch"] = s["first_mismatch"]
    try:
        for t in ("input_values", "audio_values"):  # not compared element-wise: gated on SNR
            check_pair(t, np.asarray(got[t]), np.asarray(want[t]))
        row["decoded_snr_db"] = decoded_snr(want, got)
        row["roundtrip_snr_ref_db"] = roundtrip_snr(want)
        row["roundtrip_snr_mlx_db"] = roundtrip_snr(got)
        row["roundtrip_snr_abs_diff_db"] = roundtrip_diff(want, got)
        row["passed"] = (row["passed"]
                         and at_least("decoded_snr_db", row["decoded_snr_db"], SNR_MIN_DB)
                         and at_most("roundtrip_snr_abs_diff_db",
                                     row["roundtrip_snr_abs_diff_db"], ROUNDTRIP_DIFF_DB))
    except ParityError as e:
        row.update(passed=False, error=str(e))
    return row


def shared_speech_missing(name: str) -> CheckResult | None:
    """None when the real-speech clips are there (`parity.clips.shared_speech`), else the result
    of a check that needs them and cannot run: "not run", naming the manifest path it looked for
    (it fails the run; never a pass)."""
    reason = missing_shared_speech()
    return None if reason is None else CheckResult.missing(name, reason)


def roundtrip_check(name: str, clip_id: str, make_inputs: Callable[[np.ndarray], dict],
                    build_ref: Callable[[], Callable], build_mlx: Callable[[str], Callable],
                    code_taps: tuple[str, ...]) -> Check:
    """Gated codec round trip on a ../shared/speech clip: codes identical, decoded SNR >= 60 dB
    against the reference, round-trip SNR within 0.1 dB of the reference's."""

    def fn(dtype: str, log) -> CheckResult:
        if (missing := shared_speech_missing(name)) is not None:
            return missing
        entry, audio16k = read_clip(clip_id, shared_speech())
        inputs = make_inputs(audio16k)
        log(f"  {clip_id}: reference")
        want = build_ref()(inputs, layer_taps=False)
        log(f"  {clip_id}: mlx ({dtype})")
        got = build_mlx(dtype)(inputs, layer_taps=False)
        row = {"clip": entry["id"], "seconds": round(len(audio16k) / 16000, 3),
               **roundtrip_row(want, got, code_taps)}
        ok = row.pop("passed")
        row["PASS/FAIL"] = "PASS" if ok else "FAIL"
        return CheckResult(name, ok, {k: v for k, v in row.items() if k != "PASS/FAIL"}, [row])

    return Check(name, f"codec round trip on ../shared/speech/{clip_id}: codes identical, "
                 f"decoded SNR >= {SNR_MIN_DB} dB vs the reference, round-trip SNR within "
                 f"{ROUNDTRIP_DIFF_DB} dB of the reference's", fn)


# ------------------------------------------------------------------------------------------
# benchmark


# BenchSpec fields of a benchmark that also times on the GPU (`mlx_on`/`torch_on`), in float32
# and float16 there (torch CUDA runs `.half()`; on the CPU torch stays float32)
GPU_BENCH = {"devices": ("cpu", "gpu"), "dtypes": ("float32", "float16"),
             "gpu_peer_dtypes": {"torch": ("float32", "float16")}}


def mlx_on(device: str):
    """`mlx.core` set up for a benchmark on `device`: "cpu" leaves MLX's default device as it
    is (this Linux CPU build has no other); "gpu" is MLX's GPU (Metal, or CUDA with mlx-cuda),
    an error where MLX has none."""
    import mlx.core as mx

    if device == "gpu":
        if not mx.is_available(mx.gpu):
            raise RuntimeError("MLX has no GPU on this machine (it needs Metal, or CUDA with the "
                               "mlx-cuda-13 package); benchmark on the CPU instead")
        mx.set_default_device(mx.gpu)
    elif device != "cpu":
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'gpu'")
    return mx


def torch_on(device: str, dtype: str, model, *inputs):
    """(model, inputs, finish) for a torch benchmark on `device` ("cpu", or "gpu": CUDA) in
    `dtype`. On CUDA, float32 is full float32 (TF32 off for matmuls and cuDNN convs, as MLX's
    `MLX_ENABLE_TF32=0`) and float16 is `.half()` weights and inputs; `finish(out)` waits for
    the GPU so that a stage's clock stops when its work is done."""
    import torch

    if device == "cpu":
        if dtype != "float32":
            raise ValueError(f"the torch reference is timed in float32 on the CPU, not {dtype}")
        return model, inputs, lambda out: out
    if device != "gpu":
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'gpu'")
    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA GPU on this machine; benchmark on the CPU instead")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    half = {"float32": False, "float16": True}
    if dtype not in half:
        raise ValueError(f"torch on CUDA is timed in float32 or float16, not {dtype}")
    model = model.to("cuda").eval()
    inputs = tuple(x.to("cuda") for x in inputs)
    if half[dtype]:
        model = model.half()
        inputs = tuple(x.half() if x.is_floating_point() else x for x in inputs)

    def finish(out):
        torch.cuda.synchronize()
        return out
    return model, inputs, finish


def encode_decode_stages(encode: Callable[[], Any], decode: Callable[[Any], Any], seconds: float,
                         finish: Callable[[Any], Any] = lambda out: out) -> list[BenchStage]:
    """Stages "encode" (`encode()` -> codes) and "decode" (`decode(codes)` -> audio) on
    prepared input; the codes that "decode" takes are made here, once. `finish(out)` completes
    a result (MLX: `mx.eval`; torch runs eagerly)."""
    codes = encode()
    finish(codes)

    def timed(call: Callable[[], Any]) -> Callable[[], None]:
        # returns nothing: a stage's dict-like result (transformers' EncodecEncoderOutput is a
        # Mapping) would be recorded as the stage's facts, and its tensors are not JSON
        def run() -> None:
            finish(call())
        return run
    return [BenchStage("encode", timed(encode), seconds),
            BenchStage("decode", timed(lambda: decode(codes)), seconds)]


# ------------------------------------------------------------------------------------------
# specs


def random_checkpoints(package: str, seed: int = WEIGHTS_SEED) -> Callable[[Mapping], Path]:
    """`checkpoint(config)`: `reference.<package>.random_checkpoint(config, seed)`, cached per
    config (`seeded_checkpoints`)."""
    import importlib

    return seeded_checkpoints(lambda config: importlib.import_module(
        f"reference.{package}").random_checkpoint(config, seed))


def _no_extras(config: Mapping, audio: np.ndarray, params: Mapping) -> tuple[dict, dict]:
    return {}, {}


@dataclass(frozen=True)
class CodecFamily:
    """What the specs of one codec share; `spec(name, description, config, cases)` is one
    `ModelSpec`. Both sides read `checkpoint(config)`; the reference side is
    `reference.<package>.<adapter>`, hooking the spec's tap list (`ReferenceSide`)."""

    package: str  # "dac": mlx_impl.dac and reference.dac
    adapter: str  # the adapter class in reference.<package>
    mlx_side: type  # a MlxSide subclass (its `run`)
    checkpoint: Callable[[Mapping], Path]  # config -> the seeded checkpoint folder
    taps: Callable[[Mapping], tuple[str, ...]]  # config -> tap names, execution order
    discrete: Callable[[Mapping], tuple[str, ...]]  # config -> the code taps (compared exactly)
    tolerances: Mapping[str, ToleranceTable]  # dtype -> table
    metrics: tuple[Metric, ...]
    weights: str  # how the seeded weights are made (reports)
    # (model, x, config) -> (encode(), decode(codes)): x is the audio in the MLX model's layout
    # (`mlx_side.layout`) for the MLX model, a (1, channels, N) tensor for the torch model
    bench_mlx: Callable[[Any, Any, Mapping], tuple[Callable, Callable]]
    bench_torch: Callable[[Any, Any, Mapping], tuple[Callable, Callable]]
    # (config, audio at the model rate) -> the audio both sides get (e.g. whole hops)
    prepare: Callable[[Mapping, np.ndarray], np.ndarray] = lambda config, audio: audio
    # (config, audio, case params) -> (extra input arrays, extra metadata)
    extras: Callable[[Mapping, np.ndarray, Mapping], tuple[dict, dict]] = _no_extras
    sample_rate: Callable[[Mapping], int] = lambda config: config["sampling_rate"]
    shared_check: bool = True  # `roundtrip_check` on SHARED_CLIP
    reference_class: type = ReferenceSide  # a subclass adds side-made taps

    def reference_side(self, config: Mapping) -> ReferenceSide:
        import importlib

        adapter = getattr(importlib.import_module(f"reference.{self.package}"), self.adapter)
        return self.reference_class(adapter(self.checkpoint(config)), config, self.taps(config),
                                    self.mlx_side.layout)

    def inputs(self, config: Mapping, audio: np.ndarray,
               params: Mapping = {}) -> tuple[dict, dict]:  # noqa: B006 (read only)
        """(arrays, extra metadata) for audio at the model rate."""
        audio = self.prepare(config, audio)
        arrays, meta = self.extras(config, audio, params)
        return {"audio": audio, **arrays}, meta

    def make_inputs_for(self, config: Mapping) -> Callable[[GoldenCase], CaseInputs]:
        """A case's input: its fixture clip (`params`: clip, seconds; `start`: seconds skipped
        first, e.g. a silent onset) at the model rate."""
        def make_inputs(case: GoldenCase) -> CaseInputs:
            p, sr = case.params, self.sample_rate(config)
            start, seconds = p.get("start", 0.0), p.get("seconds")
            entry, audio = fixture_clip(p["clip"], sr, None if seconds is None else start + seconds)
            audio = np.ascontiguousarray(audio[round(start * sr):])
            arrays, meta = self.inputs(config, audio, p)
            n = arrays["audio"].shape[0]
            return CaseInputs(arrays, {**clip_meta(entry, sr, seconds, n),
                                       **({"start": start} if start else {}), **meta})
        return make_inputs

    def bench_build_for(self, config: Mapping):
        def build(engine: str, dtype: str, audio16k: np.ndarray,
                  device: str = "cpu") -> list[BenchStage]:
            sr = self.sample_rate(config)
            audio = self.prepare(config, resample(audio16k, sr))
            seconds = audio.shape[0] / sr
            if engine == "mlx":
                mx = mlx_on(device)
                model = load_model(self.package, self.checkpoint(config), dtype)
                encode, decode = self.bench_mlx(model, mx.array(self.mlx_side.layout(audio)),
                                                config)
                return encode_decode_stages(encode, decode, seconds, finish=mx.eval)
            if engine == "torch":
                import torch

                model, (x,), finish = torch_on(device, dtype, self.reference_side(config).model,
                                               torch_batch(audio))
                encode, decode = self.bench_torch(model, x, config)
                return encode_decode_stages(torch.no_grad()(encode), torch.no_grad()(decode),
                                            seconds, finish=finish)
            raise ValueError(f"unknown engine {engine!r}; use 'mlx' or 'torch'")
        return build

    def spec(self, name: str, description: str, config: Mapping,
             cases: tuple[GoldenCase, ...], tolerances: Mapping[str, ToleranceTable] | None = None,
             checks: tuple[Check, ...] = (), exercise: tuple[Exercise, ...] = (),
             **extra_config) -> ModelSpec:
        """`tolerances`: this spec's tables where they differ from the family's; `checks`: its
        own end-to-end checks; `exercise`: what its decoding must exercise (parity/exercise.py);
        `extra_config`: more entries for the reports' config block."""
        config = dict(config)
        if self.shared_check:
            checks += (roundtrip_check(
                "shared-speech", SHARED_CLIP,
                lambda audio16k: self.inputs(config, resample(audio16k, self.sample_rate(config)))[0],
                lambda: self.reference_side(config), lambda dtype: self.mlx_side(config, dtype),
                self.discrete(config)),)
        return ModelSpec(
            name=name, description=description, weights=self.weights,
            build_mlx=lambda dtype: self.mlx_side(config, dtype),
            build_reference=lambda: self.reference_side(config),
            make_inputs=self.make_inputs_for(config), taps=self.taps(config),
            tolerances=tolerances or self.tolerances, golden_cases=cases, discrete=self.discrete(config),
            metrics=self.metrics, checks=checks, exercise=exercise,
            config={f"{self.package}_config": config, "weights_seed": WEIGHTS_SEED,
                    **extra_config},
            bench=BenchSpec(engines=("mlx", "torch"), build=self.bench_build_for(config),
                            audio_seconds=10.0, **GPU_BENCH),
            key_map=lambda: self.key_map(config))

    def key_map(self, config: Mapping):
        """The export's key map source: the package's loader on the seeded checkpoint."""
        from parity.export import loader_key_map

        return loader_key_map(self.package, self.checkpoint(config))
