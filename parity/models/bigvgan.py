"""BigVGAN v2 parity specs: MLX port (`mlx_impl.bigvgan`) against the `bigvgan` 2.4.1 package
(`BigVGAN(h, use_cuda_kernel=False)`: it imports on this CPU-only machine, so the transformers
Qwen2.5-Omni fallback is not used).

Specs: `bigvgan-v2-24khz` (nvidia/bigvgan_v2_24khz_100band_256x config.json, architecture and mel
keys; ~112M parameters) and `bigvgan-test-tiny` for CI. Weights: seeded random
(`reference.bigvgan.random_checkpoint`), saved as the hub repo (config.json +
bigvgan_generator.pt with weight norm), read by `mlx_impl.bigvgan.load`; the reference hooks the names of `tap_names`.

Inputs: a speech clip at 24 kHz (first ~1 s: the real config is slow on 2 cores) and its log-mel
computed by `bigvgan.meldataset.mel_spectrogram`. Taps: `mel` (each side's own front end of the
audio: compared on its own), `conv_pre`, `ups.{i}`, `stage.{i}`, `activation_post`, `conv_post`,
`audio` (both sides vocode the SAME reference mel).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.clips import display_path, read_clip, shared_speech
from parity.compare import compare_row
from parity.metrics import at_least
from parity.models import codec
from parity.exercise import decoded_audio
from parity.export import loader_key_map
from parity.spec import (BenchSpec, BenchStage, CaseInputs, Check, CheckResult, GoldenCase,
                         Metric, ModelSpec, Override, ToleranceTable, fp32_override, fp32_table)

SAMPLE_RATE = 24000

# nvidia/bigvgan_v2_24khz_100band_256x config.json (architecture + mel keys)
BIGVGAN_V2_24KHZ_CONFIG = {
    "resblock": "1", "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "upsample_initial_channel": 1536,
    "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "use_tanh_at_final": False, "use_bias_at_final": False, "activation": "snakebeta",
    "snake_logscale": True, "num_mels": 100, "num_freq": 1025, "n_fft": 1024, "hop_size": 256,
    "win_size": 1024, "sampling_rate": 24000, "fmin": 0, "fmax": None, "fmax_for_loss": None,
    "segment_size": 65536,
}
TEST_TINY_CONFIG = {
    "resblock": "1", "upsample_rates": [4, 4], "upsample_kernel_sizes": [8, 8],
    "upsample_initial_channel": 32, "resblock_kernel_sizes": [3, 7],
    "resblock_dilation_sizes": [[1, 3], [1, 3]], "use_tanh_at_final": False,
    "use_bias_at_final": False, "activation": "snakebeta", "snake_logscale": True,
    "num_mels": 20, "n_fft": 128, "hop_size": 16, "win_size": 128, "sampling_rate": 24000,
    "fmin": 0, "fmax": None,
}


def tap_names(config: Mapping) -> tuple[str, ...]:
    n = len(config["upsample_rates"])
    stages = [name for i in range(n) for name in (f"ups.{i}", f"stage.{i}")]
    return ("mel", "conv_pre", *stages, "activation_post", "conv_post", "audio")


checkpoint = codec.random_checkpoints("bigvgan")


def make_inputs_for(config: Mapping):
    def make_inputs(case: GoldenCase) -> CaseInputs:
        from reference.bigvgan import reference_mel

        p = case.params
        if "folder" in p:  # ../shared/speech (never copied into the repo)
            entry, audio = read_clip(p["clip"], Path(p["folder"]), SAMPLE_RATE, p.get("seconds"))
            file = display_path(Path(p["folder"]) / entry["file"])
        else:
            entry, audio = codec.fixture_clip(p["clip"], SAMPLE_RATE, p.get("seconds"))
            file = None  # the fixture's
        meta = codec.clip_meta(entry, SAMPLE_RATE, p.get("seconds"), audio.shape[0], file=file)
        meta["mel"] = "bigvgan.meldataset.mel_spectrogram of the audio, (frames, num_mels)"
        return CaseInputs({"audio": audio, "mel": reference_mel(config, audio)}, meta)
    return make_inputs


class ReferenceSide(codec.ReferenceSide):
    def __init__(self, config: Mapping):
        from reference.bigvgan import BigVGANReference

        super().__init__(BigVGANReference(checkpoint(config)), config, tap_names(config))

    def __call__(self, inputs):
        from reference.bigvgan import reference_mel

        taps = {"mel": reference_mel(self.config, np.asarray(inputs["audio"], np.float32))[None]}
        taps.update(self._ref({"mel": inputs["mel"]}, taps=self.taps))
        return taps


class MlxSide(codec.MlxSide):
    package = "bigvgan"
    checkpoint = staticmethod(checkpoint)

    def __init__(self, config: Mapping, dtype: str):
        from mlx_impl.loading import as_dtype

        super().__init__(config, dtype)
        self.dtype = as_dtype(dtype)

    def __call__(self, inputs):
        from mlx_impl.taps import Taps

        mx, taps = self._mx, Taps()
        taps("mel", self.model.mel(mx.array(np.asarray(inputs["audio"], np.float32)[None])))
        self.model(mx.array(np.asarray(inputs["mel"], np.float32)[None]).astype(self.dtype),
                   taps=taps)
        return codec.taps_to_numpy(mx, taps)


METRICS = (
    Metric("decoded_snr_db", "SNR of the MLX audio against the reference's (dB)",
           lambda ref, got: codec.snr_db(ref["audio"], got["audio"]), goal=codec.SNR_GOAL),
)

# fp32 on CPU vs torch: the harness's defaults (parity.spec.fp32_table) plus the log-mel front
# end. Every generator tap needs <= 6.0e-6 x its RMS (bigvgan-v2-24khz, 2026-12-04 report).
MEL_OVERRIDE = fp32_override(
    "mel", 5e-4,
    "log of mel bands near the 1e-5 clamp (log -11.5): fp32 FFT rounding relative to a small "
    "band. The shared_speech check (first 1 s of ../shared/speech jfk_inaugural_1961) measured "
    "0.342 x this bound on 2026-12-05: need k ~1.7e-4 (2.9x under it); bigvgan-v2-24khz fox 0.5 s "
    "needs k 8.45e-5 (needed floor 5.7e-4 at rms 6.74, 2026-12-04 and -05)")
FP32 = fp32_table(MEL_OVERRIDE)
FP32_TEST_TINY = fp32_table()  # its mel needs 1.8e-6 x rms (2026-12-05): no override
# Half precision: MLX in float16 / bfloat16 against the float32 reference, both vocoding the same
# reference mel (`mel` is each side's own front end, computed in float32 whatever the dtype, so
# the fp32 mel override holds). Measured 2026-12-05 on a 2-core AMD EPYC (MKL) with mlx 0.32.4
# (docs/PRECISION.md), as k_rms = max(|got - want| - rtol |want|) / rms(want) per tap:
# - float16 (rtol 1e-3): every tap <= 0.011 x its RMS except activation_post (the Snake before
#   conv_post, 0.023); bigvgan-v2-24khz fox 0.5 s, audio SNR 52.5 dB (tiny: 0.011, 55.7 dB).
# - bfloat16 (rtol 1e-2): every tap <= 0.068 x its RMS except activation_post (0.086);
#   bigvgan-v2-24khz fox, audio SNR 36.2 dB (tiny: 0.071, 39.4 dB).
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=3e-2, overrides=(
    MEL_OVERRIDE,
    Override("activation_post", atol=1e-5, rtol=1e-3, k_rms=7e-2,
             reason="Snake before conv_post: measured k_rms 0.023 (rtol 1e-3) on bigvgan-v2-24khz "
                    "fox, float16, 2026-12-05; 0.011 on bigvgan-test-tiny"),))
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=2e-1, overrides=(
    MEL_OVERRIDE,
    Override("activation_post", atol=1e-5, rtol=1e-2, k_rms=2.5e-1,
             reason="Snake before conv_post: measured k_rms 0.086 (rtol 1e-2) on bigvgan-v2-24khz "
                    "fox, bfloat16, 2026-12-05; 0.071 on bigvgan-test-tiny"),))
TABLES = {"float32": FP32, "float16": FP16, "bfloat16": BF16}


def bench_build_for(config: Mapping):
    def build(engine: str, dtype: str, audio16k: np.ndarray,
              device: str = "cpu") -> list[BenchStage]:
        audio = codec.resample(audio16k, SAMPLE_RATE)
        seconds = audio.shape[0] / SAMPLE_RATE
        if engine == "mlx":
            mx = codec.mlx_on(device)
            model = codec.load_model("bigvgan", checkpoint(config), dtype)
            mel = model.mel(mx.array(audio[None]))
            mx.eval(mel)
            return [BenchStage("vocode", lambda: mx.eval(model(mel)), seconds)]
        if engine == "torch":
            import torch

            from reference.bigvgan import load_reference, reference_mel

            model, (mel,), finish = codec.torch_on(
                device, dtype, load_reference(checkpoint(config)),
                torch.from_numpy(reference_mel(config, audio).T[None].copy()))

            def run():
                with torch.no_grad():
                    return finish(model(mel))
            return [BenchStage("vocode", run, seconds)]
        raise ValueError(f"unknown engine {engine!r}; use 'mlx' or 'torch'")
    return build


SHARED_CLIP = "jfk_inaugural_1961"


def shared_speech_row(want: dict, got: dict, table: ToleranceTable) -> dict:
    """The verdict of `shared_speech_check`: mel and audio through the harness's comparison
    (a NaN/Inf or shape mismatch fails with an error naming the tap), decoded SNR >= 60 dB."""
    row = compare_row(got, want, table, taps=("mel", "audio"))
    if row["error"] is None:
        row["decoded_snr_db"] = codec.snr_db(want["audio"], got["audio"], "audio")
        row["passed"] = row["passed"] and at_least("decoded_snr_db", row["decoded_snr_db"], 60.0)
    return row


def shared_speech_check(config: Mapping) -> Check:
    """Real speech from ../shared/speech (read in place, never stored in goldens): the first 1 s
    of the clip at 24 kHz; each side's mel compared within the fp32 table, both sides vocoding
    the reference mel, audio within the table and SNR >= 60 dB."""

    def fn(dtype: str, log) -> CheckResult:
        if (missing := codec.shared_speech_missing(name)) is not None:
            return missing
        case = GoldenCase(SHARED_CLIP, "", {"clip": SHARED_CLIP, "seconds": 1.0,
                                           "folder": str(shared_speech())})
        inputs = make_inputs_for(config)(case).arrays
        log(f"  {SHARED_CLIP}: reference")
        want = ReferenceSide(config)(inputs)
        log(f"  {SHARED_CLIP}: mlx ({dtype})")
        got = MlxSide(config, dtype)(inputs)
        row = {"clip": SHARED_CLIP, "seconds": 1.0,
               **shared_speech_row(want, got, TABLES[dtype])}
        ok = row.pop("passed")
        row["PASS/FAIL"] = "PASS" if ok else "FAIL"
        return CheckResult(name, ok, {k: v for k, v in row.items() if k != "PASS/FAIL"}, [row])

    name = "shared_speech"
    return Check(name, f"../shared/speech/{SHARED_CLIP} (first 1 s): mel and audio within the "
                 "fp32 table, decoded SNR >= 60 dB", fn)


# the vocoded audio (1, N) varies over time and is not near silence against the clip the mel
# was computed from (measured before this requirement: time-varying 0.79 / 0.91 of the RMS,
# std 3.7x / 0.59x the clip's, test-tiny / v2-24khz)
EXERCISE = decoded_audio("audio", time_axis=1)


def _spec(name, description, config, cases, checks=(), fp32=FP32) -> ModelSpec:
    return ModelSpec(
        name=name, description=description,
        weights=(f"seeded random weights, not trained (torch seed {codec.WEIGHTS_SEED}; Snake "
                 f"log parameters re-drawn N(0, 0.3), seed {codec.WEIGHTS_SEED + 1}); config.json + "
                 "bigvgan_generator.pt with weight norm, as the hub repo"),
        build_mlx=lambda dtype: MlxSide(config, dtype),
        build_reference=lambda: ReferenceSide(config),
        key_map=lambda: loader_key_map("bigvgan", checkpoint(config)),
        make_inputs=make_inputs_for(config),
        taps=tap_names(config),
        tolerances={"float32": fp32, "float16": FP16, "bfloat16": BF16},
        golden_cases=cases,
        metrics=METRICS,
        checks=checks,
        exercise=EXERCISE,
        config={"bigvgan_config": dict(config), "weights_seed": codec.WEIGHTS_SEED},
        bench=BenchSpec(engines=("mlx", "torch"), build=bench_build_for(config), audio_seconds=10.0,
                        **codec.GPU_BENCH),
    )


BIGVGAN_V2_24KHZ = _spec(
    "bigvgan-v2-24khz", "BigVGAN v2 24 kHz 100-band 256x (nvidia/bigvgan_v2_24khz_100band_256x config)",
    BIGVGAN_V2_24KHZ_CONFIG,
    (GoldenCase("fox", "espeak 'quick brown fox' clip at 24 kHz, first 0.5 s",
                {"clip": "espeak_en_fox", "seconds": 0.5}),),
    checks=(shared_speech_check(BIGVGAN_V2_24KHZ_CONFIG),))
TEST_TINY = _spec(
    "bigvgan-test-tiny", "tiny random BigVGAN (2 stages, snakebeta, AMPBlock1)", TEST_TINY_CONFIG,
    (GoldenCase("fox", "espeak 'quick brown fox' clip at 24 kHz, first 0.5 s",
                {"clip": "espeak_en_fox", "seconds": 0.5}),), fp32=FP32_TEST_TINY)
