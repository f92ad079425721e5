"""Helpers shared by the codec and vocoder parity specs (dac, snac, mimi, encodec, bigvgan,
s3tokenizer, vocos): one implementation each of what those specs do alike.

- clips: `resample` (16 kHz -> a model rate), `fixture_clip` (a committed fixture at a model
  rate), `clip_meta` (the clip block of a case's metadata);
- weights: `seeded_checkpoints` (the per-config cache of a reference's seeded random
  checkpoint), `load_model` (the model package's own `load(path, dtype)`);
- sides: `ReferenceSide` and `MlxSide`, the bases of each spec's two sides; `taps_to_numpy`,
  `mlx_taps`;
- metrics: `snr_db`, `roundtrip_snr` (over the common length), `codec_metrics` (codes equal,
  decoded SNR, round-trip SNR of each side and their difference), `codes_summary`;
- `roundtrip_check` (one clip's verdict: `roundtrip_row`): the gated codec round trip on a ../shared/speech clip (DAC, SNAC);
- `encode_decode_stages`: a codec's "encode" and "decode" benchmark stages.

Importing this module imports neither torch nor mlx: functions import them when called.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from parity import clips
from parity.clips import FIXTURES, SHARED_SPEECH, read_clip
from parity.compare import compare_row
from parity.metrics import at_least, at_most, check_pair, snr_db  # noqa: F401  (snr_db: codec.snr_db)
from parity.spec import BenchStage, Check, CheckResult, Metric, ParityError, ToleranceTable

SNR_MIN_DB = 60.0  # decoded audio vs the reference's
ROUNDTRIP_DIFF_DB = 0.1  # |round-trip SNR ours - reference's|
SHARED_CLIP = "cmu_arctic_a0024"  # 3.96 s of real English speech


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
    `input_values`) followed by the adapter's taps."""

    def __init__(self, adapter, config: Mapping):
        self._ref = adapter
        self.model = adapter.model
        self.config = dict(config)
        self.versions = adapter.versions

    def input_values(self, audio: np.ndarray) -> np.ndarray:
        return audio[None]  # (1, N)

    def __call__(self, inputs, *args, **kwargs):
        """Extra arguments (e.g. `layer_taps=`) go to the adapter."""
        audio = np.asarray(inputs["audio"], dtype=np.float32)
        taps = {"input_values": self.input_values(audio)}
        taps.update(self._ref(inputs, *args, **kwargs))
        return taps


class MlxSide:
    """A spec's MLX side: `self.model` is `mlx_impl.<package>.load.load(checkpoint(config),
    dtype)` (the model package owns its loading); subclasses set `package` and `checkpoint` and
    define `__call__(inputs) -> taps`."""

    package: str  # the mlx_impl package, e.g. "dac"
    checkpoint: Callable[[Mapping], Path]  # staticmethod: config -> the seeded checkpoint folder

    def __init__(self, config: Mapping, dtype: str):
        import mlx.core as mx

        self._mx = mx
        self.model = load_model(self.package, self.checkpoint(config), dtype)
        self.config = dict(config)
        self.versions = {"mlx": mx.__version__}


def load_model(package: str, path: Path, dtype: str = "float32"):
    """`mlx_impl.<package>.load.load(path, dtype)`: the model package's own loader."""
    import importlib

    return importlib.import_module(f"mlx_impl.{package}.load").load(path, dtype)


class EndTaps(dict):
    """A taps dict that keeps only the input, the quantizer taps and the output audio, so that
    long clips do not hold every layer's activations."""

    def __setitem__(self, key, value):
        if key.startswith("quantizer.") or key in ("input_values", "audio_values"):
            super().__setitem__(key, value)


def taps_to_numpy(mx, taps: Mapping) -> dict[str, np.ndarray]:
    """Evaluate MLX taps and return them as numpy: floats as float32, integer taps (codes) as
    int64, the reference's dtype."""
    mx.eval(list(taps.values()))
    return {k: np.array(v.astype(mx.int64) if mx.issubdtype(v.dtype, mx.integer)
                        else v.astype(mx.float32)) for k, v in taps.items()}


def mlx_taps(mx, run: Callable[[dict], None], layer_taps: bool = True) -> dict[str, np.ndarray]:
    """Run `run(taps)` and return the taps as numpy (`taps_to_numpy`); `layer_taps=False` keeps
    only the input, quantizer and output taps (`EndTaps`)."""
    taps: dict = {} if layer_taps else EndTaps()
    run(taps)
    return taps_to_numpy(mx, taps)


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
               decoded_snr),
        Metric("roundtrip_snr_ref_db", "SNR(input, reference reconstruction) in dB",
               lambda r, g: roundtrip_snr(r, time_axis)),
        Metric("roundtrip_snr_mlx_db", "SNR(input, MLX reconstruction) in dB",
               lambda r, g: roundtrip_snr(g, time_axis)),
        Metric("roundtrip_snr_abs_diff_db", "|roundtrip SNR MLX - reference| in dB (goal <= 0.1)",
               lambda r, g: roundtrip_diff(r, g, time_axis)),
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


def roundtrip_check(name: str, clip_id: str, make_inputs: Callable[[np.ndarray], dict],
                    build_ref: Callable[[], Callable], build_mlx: Callable[[str], Callable],
                    code_taps: tuple[str, ...]) -> Check:
    """Gated codec round trip on a ../shared/speech clip: codes identical, decoded SNR >= 60 dB
    against the reference, round-trip SNR within 0.1 dB of the reference's."""

    def fn(dtype: str, log) -> CheckResult:
        if not (SHARED_SPEECH / "manifest.jsonl").exists():
            return CheckResult(name, True, {"skipped": f"{SHARED_SPEECH} is absent on this "
                                            "machine: real-speech round trip not run"}, [])
        entry, audio16k = read_clip(clip_id, SHARED_SPEECH)
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


def encode_decode_stages(encode: Callable[[], Any], decode: Callable[[Any], Any], seconds: float,
                         finish: Callable[[Any], Any] = lambda out: out) -> list[BenchStage]:
    """Stages "encode" (`encode()` -> codes) and "decode" (`decode(codes)` -> audio) on
    prepared input; the codes that "decode" takes are made here, once. `finish(out)` completes
    a result (MLX: `mx.eval`; torch runs eagerly)."""
    codes = encode()
    finish(codes)
    return [BenchStage("encode", lambda: finish(encode()), seconds),
            BenchStage("decode", lambda: finish(decode(codes)), seconds)]
