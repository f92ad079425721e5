"""Mimi parity specs: MLX port (`mlx_impl.mimi`) against transformers `MimiModel`.

Specs: `mimi-test-tiny` (tiny config for CI, sliding window 6) and `mimi` (the kyutai/mimi
configuration, = transformers 5.24.0 `MimiConfig()` defaults), both with seeded random weights
written by `reference.mimi.random_checkpoint` (transformers `save_pretrained`) and read by both
sides: transformers `from_pretrained` and `mlx_impl.mimi.load`. Sides, inputs and benchmark:
`codec.CodecFamily`; the reference hooks the names of `tap_names` (reference/mimi.py maps them to
`MimiModel` paths).

Inputs: a clip from tests/fixtures/speech/ resampled to 24 kHz (`scipy.signal.resample_poly`),
cut to its first `seconds`, and `num_quantizers` (0-d int32). Taps (see reference/mimi.py):
`input_values`, `encoder.layers.{i}`, `encoder_transformer.layers.{i}`, `downsample`,
`audio_codes` (exact), `quantizer.quantized`, `upsample`, `decoder_transformer.layers.{i}`,
`decoder.layers.{i}`, `audio_values`, and `streaming.audio_values`: our frame-by-frame streaming
decode of the codes against the reference's one-shot decode (upstream has no streaming SEANet
decoder; its conv layers re-pad on every call).

Goldens hold short cases (1 s) to stay small; the `roundtrip` check runs the whole fixture clips
and a ../shared/speech clip longer than the 10-s attention window (jfk, 11 s: 275 transformer
steps > 250) with every tap compared, codes exact, decoded SNR, round-trip SNR and streaming;
without the shared clips it is "not run" (a run FAIL naming the manifest path).

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from parity.clips import FIXTURES, manifest, read_audio, shared_speech
from parity.clips import resample as resample_rate
from parity.compare import compare_row
from parity.metrics import at_least, at_most
from parity.exercise import Exercise, decoded_audio
from parity.models import codec
from parity.models.codec import ROUNDTRIP_DIFF_DB, SNR_MIN_DB
from parity.spec import (Check, CheckResult, GoldenCase, Metric, ToleranceTable,
                         fp32_table)

SAMPLE_RATE = 24000
TIME_AXIS = 1  # audio taps are (B, N, channels)

TEST_TINY_CONFIG = dict(
    sampling_rate=24000, audio_channels=1, hidden_size=16, num_filters=4, num_residual_layers=1,
    upsampling_ratios=[4, 2], kernel_size=7, last_kernel_size=3, residual_kernel_size=3,
    dilation_growth_rate=2, use_causal_conv=True, pad_mode="constant", compress=2,
    trim_right_ratio=1.0, codebook_size=16, codebook_dim=8, num_quantizers=4,
    use_conv_shortcut=False, vector_quantization_hidden_dimension=8, num_semantic_quantizers=1,
    upsample_groups=16, num_hidden_layers=2, intermediate_size=32, num_attention_heads=2,
    num_key_value_heads=2, head_dim=8, hidden_act="gelu", max_position_embeddings=8000,
    norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
    sliding_window=6, layer_scale_initial_scale=0.01, attention_bias=False)
# hop 8, frame 16 samples: 1500 codes/s; window 6 transformer steps

MIMI_CONFIG = dict(
    sampling_rate=24000, audio_channels=1, hidden_size=512, num_filters=64, num_residual_layers=1,
    upsampling_ratios=[8, 6, 5, 4], kernel_size=7, last_kernel_size=3, residual_kernel_size=3,
    dilation_growth_rate=2, use_causal_conv=True, pad_mode="constant", compress=2,
    trim_right_ratio=1.0, codebook_size=2048, codebook_dim=256, num_quantizers=32,
    use_conv_shortcut=False, vector_quantization_hidden_dimension=256, num_semantic_quantizers=1,
    upsample_groups=512, num_hidden_layers=8, intermediate_size=2048, num_attention_heads=8,
    num_key_value_heads=8, head_dim=64, hidden_act="gelu", max_position_embeddings=8000,
    norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
    sliding_window=250, layer_scale_initial_scale=0.01, attention_bias=False)
# kyutai/mimi: 24 kHz, 12.5 codes/s (frame 1920 samples), 32 codebooks of 2048, 8+8 layers


def tap_names(config: Mapping) -> tuple[str, ...]:
    n_res, n_r = config["num_residual_layers"], len(config["upsampling_ratios"])
    enc, i = [0], 1
    for _ in range(n_r):
        enc += list(range(i, i + n_res)) + [i + n_res + 1]
        i += n_res + 2
    enc += [i + 1]
    dec, i = [0], 1
    for _ in range(n_r):
        dec += [i + 1] + list(range(i + 2, i + 2 + n_res))
        i += 2 + n_res
    dec += [i + 1]
    n_layers = config["num_hidden_layers"]
    return ("input_values", *[f"encoder.layers.{j}" for j in enc],
            *[f"encoder_transformer.layers.{j}" for j in range(n_layers)], "downsample",
            "audio_codes", "quantizer.quantized", "upsample",
            *[f"decoder_transformer.layers.{j}" for j in range(n_layers)],
            *[f"decoder.layers.{j}" for j in dec], "audio_values", "streaming.audio_values")


checkpoint = codec.random_checkpoints("mimi")


def resample(audio: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    return resample_rate(audio, sr, target)


def read_clip(entry: dict, seconds: float | None = None) -> np.ndarray:
    """A manifest entry's clip as 24 kHz mono float32, cut to its first `seconds`."""
    return read_audio(entry["path"], SAMPLE_RATE, seconds)


def num_quantizers(inputs) -> int:
    """The `num_quantizers` input (0-d, or (1,) as goldens store it) as an int."""
    return int(np.asarray(inputs["num_quantizers"]).reshape(-1)[0])


def num_quantizers_input(config: Mapping, audio: np.ndarray, params: Mapping) -> tuple[dict, dict]:
    n_q = int(params["num_quantizers"])
    return {"num_quantizers": np.asarray(n_q, dtype=np.int32)}, {"num_quantizers": n_q}


# ------------------------------------------------------------------------------------------
# sides


class _ReferenceSide(codec.ReferenceSide):
    def __init__(self, adapter, config: Mapping, taps, layout):
        super().__init__(adapter, config, tuple(t for t in taps if t != "streaming.audio_values"),
                         layout)

    def __call__(self, inputs, **kwargs):
        taps = super().__call__(inputs, **kwargs)
        # upstream has no streaming SEANet decoder: our streaming decode is held to its one-shot
        taps["streaming.audio_values"] = taps["audio_values"]
        return taps


def stream_decode(model, codes, frames_per_step: int = 1):
    """Our streaming decode: `frames_per_step` code frames per call, chunks concatenated."""
    import mlx.core as mx

    dec = model.streaming_decoder()
    chunks = []
    for f in range(0, codes.shape[-1], frames_per_step):
        chunk = dec.step(codes[:, :, f:f + frames_per_step])
        mx.eval(chunk)
        chunks.append(chunk)
    return mx.concatenate(chunks, axis=1)


class MlxSide(codec.MlxSide):
    package = "mimi"
    checkpoint = staticmethod(checkpoint)
    layout = staticmethod(codec.channels_last_batch)  # (1, N, 1)

    def run(self, x, inputs, taps) -> None:
        self.model(x, SAMPLE_RATE, num_quantizers(inputs), taps=taps)
        self._mx.eval(list(taps.values()))
        taps("streaming.audio_values",
             stream_decode(self.model, taps["audio_codes"])[:, : x.shape[1]])


# ------------------------------------------------------------------------------------------
# metrics


def _codes_equal(ref, got) -> float:
    return float(np.mean(ref["audio_codes"] == got["audio_codes"]))


def _streaming_vs_oneshot(ref, got) -> float:
    return float(np.max(np.abs(got["streaming.audio_values"] - got["audio_values"])))


# decoded audio is cut to the input length: round-trip SNR over the whole (1, N, 1) input
METRICS = codec.codec_metrics(_codes_equal, "fraction of codes equal between MLX and reference",
                              TIME_AXIS) + (
    Metric("streaming_vs_oneshot_max_abs", "max |MLX streaming decode - MLX one-shot decode|",
           _streaming_vs_oneshot),
)

# fp32 on CPU vs torch: the harness's defaults (parity.spec.fp32_table). The seeded random model
# has large activations (encoder taps up to |16|, rms 3; decoder taps up to |62|, rms 5-14):
# errors are fp32 accumulation over fan-ins of up to 7168 terms. Measured 2026-12-04 on the real
# configuration (fox 2 s, 8 and 32 codebooks): needed floor over the tap's RMS <= 1.19e-5
# (decoder.layers.12, floor 9.0e-5), decoded SNR 115 dB; mimi-test-tiny <= 1.4e-6 (2026-12-05).
# The whole-clip check (fixtures and the 11-s jfk clip) measured at most 0.885 x the old
# downsample bound (5e-5 + 1e-5 |w|, rms ~3), i.e. need k ~1.5e-5. The earlier atol overrides
# (5e-5 to 2e-4 over a default of 1e-5) are covered by the default k_rms 1e-4 at >= 6x.
FP32 = fp32_table()
# Half precision: MLX in float16 / bfloat16 against the float32 reference. Measured 2026-12-05 on
# a 2-core AMD EPYC (MKL), mlx 0.32.4 (docs/PRECISION.md), as k_rms = max(|got - want| -
# rtol |want|) / rms(want) per tap, over mimi (fox 0.5 s, 32 codebooks) and mimi-test-tiny. The
# code decisions (float32 search on a half-precision encoder) flip: fp16 mimi 84 %, test-tiny
# fox 98.8 % of codes equal; bf16 mimi 56 %, test-tiny 95.5-98 %. Those runs FAIL at
# `audio_codes` and after it (kept, not loosened). The decoder's own rounding is measured with
# the reference's codes forced into the MLX search (`scripts/measure_precision.py --forced-codes`):
# - float16 (rtol 1e-3): worst 0.013 (decoder.layers.12, mimi); encoder <= 0.0074; audio 0.010;
#   decoded SNR 53.5 dB with equal codes.
# - bfloat16 (rtol 1e-2): worst 0.074 (audio_values, mimi); encoder <= 0.073 (test-tiny
#   encoder.layers.4); decoded SNR 36.4 dB with equal codes.
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=4e-2)
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=2.2e-1)
TABLES = {"float32": FP32, "float16": FP16, "bfloat16": BF16}


# ------------------------------------------------------------------------------------------
# whole-clip check


LONG_CLIP = "jfk_inaugural_1961"  # 11 s: longer than the 10-s attention window


def _check_clips() -> list[dict]:
    """The fixtures and the shared long clip; raises KeyError when that clip is not in the
    shared manifest (the caller checks the manifest exists: `codec.shared_speech_missing`)."""
    out = [dict(e, folder="tests/fixtures/speech") for e in manifest(FIXTURES)]
    shared = {e["id"]: e for e in manifest(shared_speech())}
    if LONG_CLIP not in shared:
        raise KeyError(f"clip {LONG_CLIP!r} is not in {shared_speech() / 'manifest.jsonl'}")
    return out + [dict(shared[LONG_CLIP], folder="../shared/speech")]


def roundtrip_row(want: dict, got: dict, table: ToleranceTable) -> dict:
    """One clip x codebook count of the `roundtrip` check: every tap through the harness's
    comparison (codes exactly), then decoded SNR >= SNR_MIN_DB and round-trip SNR within
    ROUNDTRIP_DIFF_DB of the reference's. A NaN/Inf or shape mismatch fails the row."""
    row = compare_row(got, want, table, discrete=("audio_codes",))
    if row["error"] is not None:
        return row
    row.update({"codes_equal_fraction": _codes_equal(want, got),
                "decoded_snr_db": codec.decoded_snr(want, got),
                "roundtrip_snr_ref_db": codec.roundtrip_snr(want, TIME_AXIS),
                "roundtrip_snr_mlx_db": codec.roundtrip_snr(got, TIME_AXIS),
                "streaming_vs_oneshot_max_abs": _streaming_vs_oneshot(want, got)})
    row["roundtrip_snr_abs_diff_db"] = abs(row["roundtrip_snr_ref_db"]
                                           - row["roundtrip_snr_mlx_db"])
    row["passed"] = (row["passed"] and at_least("decoded_snr_db", row["decoded_snr_db"], SNR_MIN_DB)
                     and at_most("roundtrip_snr_abs_diff_db", row["roundtrip_snr_abs_diff_db"],
                                 ROUNDTRIP_DIFF_DB))
    return row


def roundtrip_check_for(config: Mapping, num_quantizers: tuple[int, ...]):
    def run(dtype: str, log) -> CheckResult:
        # the check's point is the clip longer than the attention window: without the shared
        # clips it is "not run" (a FAIL naming the path), never a pass on the short fixtures
        if (missing := codec.shared_speech_missing("roundtrip")) is not None:
            return missing
        try:
            clips = _check_clips()
        except KeyError as e:
            return CheckResult.missing("roundtrip", e.args[0])
        ref, ours = ReferenceSide(config), MlxSide(config, dtype)
        table = TABLES[dtype]
        # each fixture clip at one codebook count (taking turns), the shared clip at all of them
        plan = [(e, (num_quantizers[i % len(num_quantizers)],) if e["folder"].startswith("tests")
                 else num_quantizers) for i, e in enumerate(clips)]
        rows = []
        for e, counts in plan:
            audio = read_clip(e)
            for n_q in counts:
                inputs = {"audio": audio, "num_quantizers": np.int32(n_q)}
                row = {"clip": e["id"], "folder": e["folder"], "seconds": len(audio) / SAMPLE_RATE,
                       "num_quantizers": n_q, **roundtrip_row(ref(inputs), ours(inputs), table)}
                log(f"  {e['id']} n_q={n_q}: " + (row["error"] or (
                    f"codes {row['codes_equal_fraction']:.4f}, decoded SNR "
                    f"{row['decoded_snr_db']:.1f} dB, round trip {row['roundtrip_snr_ref_db']:.3f}"
                    f" / {row['roundtrip_snr_mlx_db']:.3f} dB, worst {row['worst_tap']} at "
                    f"{row['worst_over_tolerance']:.3f} x tol, streaming "
                    f"{row['streaming_vs_oneshot_max_abs']:.2e}")))
                rows.append(row)
        summary = {"rows": len(rows), "passed": sum(r["passed"] for r in rows),
                   "errors": [r["error"] for r in rows if r["error"]]}
        done = [r for r in rows if r["error"] is None]
        if done:
            summary.update(
                min_decoded_snr_db=min(r["decoded_snr_db"] for r in done),
                max_roundtrip_snr_abs_diff_db=max(r["roundtrip_snr_abs_diff_db"] for r in done),
                max_streaming_vs_oneshot_abs=max(r["streaming_vs_oneshot_max_abs"] for r in done))
        return CheckResult("roundtrip", all(r["passed"] for r in rows), summary, rows)

    return Check("roundtrip",
                 "whole fixture clips and the 11-s jfk clip (longer than the attention window): "
                 "every tap within tolerance, codes identical, decoded SNR >= 60 dB, round-trip "
                 "SNR within 0.1 dB, streaming decode equal to one-shot", run)


# ------------------------------------------------------------------------------------------
# benchmark


def bench_num_quantizers(config: Mapping) -> int:
    return min(8, config["num_quantizers"])  # 8 codebooks (1.1 kbps), fewer on tiny models


FAMILY = codec.CodecFamily(
    package="mimi", adapter="MimiReference", mlx_side=MlxSide, checkpoint=checkpoint,
    reference_class=_ReferenceSide, taps=tap_names, discrete=lambda config: ("audio_codes",),
    tolerances=TABLES, metrics=METRICS,
    weights=(f"seeded random weights, not trained (torch seed {codec.WEIGHTS_SEED}; codebooks "
             "drawn from the encoder's residual statistics, seed "
             f"{codec.WEIGHTS_SEED + 1}); transformers save_pretrained checkpoint"),
    bench_mlx=lambda model, x, config: (
        lambda: model.encode(x, SAMPLE_RATE, bench_num_quantizers(config)), model.decode),
    bench_torch=lambda model, x, config: (
        lambda: model.encode(x, num_quantizers=bench_num_quantizers(config)).audio_codes,
        lambda codes: model.decode(codes).audio_values),
    extras=num_quantizers_input, shared_check=False)
ReferenceSide = FAMILY.reference_side
bench_build_for = FAMILY.bench_build_for
make_inputs = FAMILY.make_inputs_for(MIMI_CONFIG)  # both configs: 24 kHz mono

def exercise(min_codes: int) -> tuple[Exercise, ...]:
    """Every codebook's codes (B, n_q, F) take at least `min_codes` values over the frames; the
    decoded audio (B, N, 1), whole and streamed, varies over time and is not near silence
    (measured before: test-tiny 7-15 codes per codebook; audio time-varying >= 0.83 of its
    RMS, std >= 52x the clip's)."""
    return (Exercise("distinct", "audio_codes", min_codes),
            *decoded_audio("audio_values", TIME_AXIS),
            *decoded_audio("streaming.audio_values", TIME_AXIS))


TEST_TINY = FAMILY.spec(
    "mimi-test-tiny", "tiny random Mimi for CI (4 filters, ratios 4x2, 16 codes, 4 codebooks, "
    "2+2 layers, window 6)", TEST_TINY_CONFIG,
    (GoldenCase("fox-nq4", "espeak fox clip at 24 kHz, first 0.1 s, 4 codebooks",
                {"clip": "espeak_en_fox", "seconds": 0.1, "num_quantizers": 4}),
     GoldenCase("weather-nq2", "espeak weather clip at 24 kHz, first 0.1 s, 2 codebooks",
                {"clip": "espeak_en_weather", "seconds": 0.1, "num_quantizers": 2})),
    exercise=exercise(4))
MIMI = FAMILY.spec(
    "mimi", "Mimi (kyutai/mimi configuration): 24 kHz, 12.5 Hz, split RVQ 1 + 31 codebooks",
    MIMI_CONFIG,
    # one short golden case (the goldens stay ~3 MB); 8 codebooks and whole clips: the check
    (GoldenCase("fox-nq32", "espeak fox clip at 24 kHz, first 1 s, 32 codebooks",
                {"clip": "espeak_en_fox", "seconds": 1.0, "num_quantizers": 32}),),
    checks=(roundtrip_check_for(MIMI_CONFIG, (8, 32)),),
    exercise=exercise(4))  # 13 frames
