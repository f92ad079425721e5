"""SNAC parity specs: MLX port (`mlx_impl.snac`) against the `snac` package 1.2.1.

Specs: `snac-test-tiny` (tiny config for CI that turns everything on: local windowed attention
in encoder and decoder, noise blocks, depthwise convs, strides [4, 2, 1]) and `snac-24khz` (the
hubertsiuzdak/snac_24khz configuration: no attention, noise, depthwise), both with seeded
random weights written by `reference.snac.random_checkpoint` (config.json + pytorch_model.bin
as the hub repos) and read by both sides: `SNAC.from_config` + `load_state_dict` and
`mlx_impl.snac.load`. Sides, inputs, metrics, check and benchmark: `codec.CodecFamily`.

Inputs: a fixture clip (16 kHz) resampled to the model rate, cut to its first `seconds`, and
the decoder's noise: `noise.{k}` (1, T_k, 1) float32, standard normal from
`numpy.random.default_rng(NOISE_SEED)`, one per noise block, fed to both sides (the reference
through `reference.snac.fed_noise`, MLX through `SnacModel.decode(noise=...)`), so the noise
blocks are compared like any other layer. Codes are compared exactly per stage
(`quantizer.codes.{q}`). The round-trip SNR compares the input with the decoded audio cut to the
input length (upstream `forward`).

Check `shared-speech`: as DAC's (parity/models/dac.py), on ../shared/speech/cmu_arctic_a0024.

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from parity.exercise import Exercise, decoded_audio
from parity.models import codec
from parity.spec import GoldenCase, Override, ToleranceTable, fp32_table
NOISE_SEED = 1234

TEST_TINY_CONFIG = dict(
    sampling_rate=16000, encoder_dim=8, encoder_rates=[2, 2, 2], decoder_dim=64,
    decoder_rates=[2, 2, 2], attn_window_size=4, codebook_size=64, codebook_dim=4,
    vq_strides=[4, 2, 1], noise=True, depthwise=True)  # latent 64 (one head of 64), hop 8

# hubertsiuzdak/snac_24khz config.json
SNAC_24KHZ_CONFIG = dict(
    sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
    decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
    vq_strides=[4, 2, 1], noise=True, depthwise=True)


def pad_multiple(config: Mapping) -> int:
    return (math.prod(config["encoder_rates"])
            * math.lcm(config["vq_strides"][0], config["attn_window_size"] or 1))


def latent_frames(config: Mapping, n_samples: int) -> int:
    m = pad_multiple(config)
    return -(-n_samples // m) * m // math.prod(config["encoder_rates"])


def noise_arrays(config: Mapping, n_samples: int, seed: int = NOISE_SEED) -> dict[str, np.ndarray]:
    """{"noise.{k}": (1, T_k, 1)} for the noise blocks decoding `n_samples` of input."""
    if not config["noise"]:
        return {}
    rng = np.random.default_rng(seed)
    t, out = latent_frames(config, n_samples), {}
    for k, r in enumerate(config["decoder_rates"]):
        t *= r
        out[f"noise.{k}"] = rng.standard_normal((1, t, 1)).astype(np.float32)
    return out


def tap_names(config: Mapping) -> tuple[str, ...]:
    names = ["input_values", "encoder.block.0"]
    i = 1
    for _ in config["encoder_rates"]:
        names.append(f"encoder.block.{i}")
        i += 1
    if config["attn_window_size"] is not None:
        names.append(f"encoder.block.{i}")
        i += 1
    names.append(f"encoder.block.{i}")
    for q in range(len(config["vq_strides"])):
        names += [f"quantizer.latents.{q}", f"quantizer.codes.{q}"]
    names += ["quantizer.quantized", "quantizer.from_codes"]
    i = 0
    for _ in range(2 if config["depthwise"] else 1):
        names.append(f"decoder.model.{i}")
        i += 1
    if config["attn_window_size"] is not None:
        names.append(f"decoder.model.{i}")
        i += 1
    inner = (1, 2) if config["noise"] else (1,)  # upsampling conv, noise block
    for _ in config["decoder_rates"]:
        names += [f"decoder.model.{i}.block.{j}" for j in inner]
        names.append(f"decoder.model.{i}")
        i += 1
    names += [f"decoder.model.{i}", f"decoder.model.{i + 1}", "audio_values"]
    return tuple(names)


def code_taps(config: Mapping) -> tuple[str, ...]:
    return tuple(f"quantizer.codes.{q}" for q in range(len(config["vq_strides"])))


checkpoint = codec.random_checkpoints("snac")


def noise_inputs(config: Mapping, audio: np.ndarray, params: Mapping) -> tuple[dict, dict]:
    noise = noise_arrays(config, audio.shape[0])
    return noise, {"noise": f"numpy default_rng({NOISE_SEED}).standard_normal, shapes "
                            f"{[list(v.shape) for v in noise.values()]}"}


def bench_mlx(model, x, config: Mapping):
    """Encode; decode drawing its noise from a fixed key (the torch side draws its own)."""
    import mlx.core as mx

    key = mx.random.key(0)
    return (lambda: model.encode(x, config["sampling_rate"]),
            lambda codes: model.decode(codes, key=key))


class MlxSide(codec.MlxSide):
    package = "snac"
    checkpoint = staticmethod(checkpoint)

    def run(self, x, inputs, taps) -> None:
        noise = [self._mx.array(np.asarray(inputs[f"noise.{k}"], np.float32))
                 for k in range(sum(k.startswith("noise.") for k in inputs))]
        self.model(x, self.config["sampling_rate"], noise=noise, taps=taps)


def _codes(taps) -> np.ndarray:
    return np.concatenate([np.asarray(taps[k]).ravel() for k in sorted(taps)
                           if k.startswith("quantizer.codes.")])


# fp32 on CPU vs torch: the harness's defaults (parity.spec.fp32_table). The noise blocks grow
# the decoder's activations and the final Snake cancels x against sin^2(a x) / a, so the decoder
# taps need the most: measured 2026-12-04 on snac-24khz (fox and weather 1.5 s) a needed floor of
# 1.8e-4 at decoder.model.6 (rms 4.2: need k 4.3e-5, the largest any default-covered tap needs),
# audio_values 1.28e-5 (k 1.5e-5); snac-test-tiny <= 5.2e-6 (2026-12-05). Codes identical. The
# earlier overrides (decoder.model.* atol 5e-4, audio_values 3e-5) are covered by the default.
FP32 = fp32_table()
# Half precision: MLX in float16 / bfloat16 against the float32 reference (same noise on both
# sides). Measured 2026-12-05 on a 2-core AMD EPYC (MKL), mlx 0.32.4 (docs/PRECISION.md), as
# k_rms = max(|got - want| - rtol |want|) / rms(want) per tap, over snac-24khz (fox and weather
# 1.5 s) and snac-test-tiny. The code decisions (float32 search on a half-precision encoder) flip
# on a few frames: fp16 snac-test-tiny fox codes.2 99 %; bf16 snac-24khz codes.1 94.4 %, codes.2
# 93.1 %, every tiny case 96-98 %. Those runs FAIL at the first differing codes tap and after it
# (kept, not loosened). The decoder's own rounding is measured with the reference's codes forced
# into the MLX search (`scripts/measure_precision.py --forced-codes`):
# - float16 (rtol 1e-3): encoder <= 0.021, decoder.model.0-4 <= 0.024, decoder.model.5 <= 0.044,
#   decoder.model.6 (the final Snake) 0.062, audio 0.030 (snac-24khz weather); decoded SNR
#   47.2 dB with equal codes.
# - bfloat16 (rtol 1e-2): encoder <= 0.151, decoder.model.0-3 <= 0.121, .4 <= 0.209, .5 <= 0.278,
#   .6 0.434, .7 0.189, audio 0.258 (snac-24khz); decoded SNR 29.3 dB (tiny 32) with equal
#   codes: each noise block and Snake of the upsampling decoder adds bf16 rounding of
#   activations up to ~15.
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=7.5e-2, overrides=(
    Override("decoder.model.[56]*", atol=1e-5, rtol=1e-3, k_rms=2e-1,
             reason="last upsampling block and the final Snake: measured k_rms 0.044 (model.5) "
                    "and 0.062 (model.6) on snac-24khz weather, float16, codes forced equal, "
                    "2026-12-05"),))
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=4.5e-1, overrides=(
    Override("decoder.model.4*", atol=1e-5, rtol=1e-2, k_rms=6e-1,
             reason="measured k_rms 0.209 on snac-24khz weather, bfloat16, codes forced equal, "
                    "2026-12-05"),
    Override("decoder.model.5*", atol=1e-5, rtol=1e-2, k_rms=8e-1,
             reason="measured k_rms 0.278 on snac-24khz fox, bfloat16, codes forced equal, "
                    "2026-12-05"),
    Override("decoder.model.6", atol=1e-5, rtol=1e-2, k_rms=1.3,
             reason="the final Snake (x + sin^2(a x)/a cancels, as in fp32): measured k_rms 0.434 "
                    "on snac-24khz weather, bfloat16, codes forced equal, 2026-12-05"),
    Override("decoder.model.7", atol=1e-5, rtol=1e-2, k_rms=8e-1,
             reason="measured k_rms 0.189 on snac-24khz weather, bfloat16, codes forced equal, "
                    "2026-12-05 (audio_values is this tap cut to the input length)"),
    Override("audio_values", atol=1e-5, rtol=1e-2, k_rms=8e-1,
             reason="measured k_rms 0.258 on snac-24khz weather, bfloat16, codes forced equal, "
                    "2026-12-05 (decoded SNR 29.3 dB)"),))


FAMILY = codec.CodecFamily(
    package="snac", adapter="SnacReference", mlx_side=MlxSide, checkpoint=checkpoint,
    taps=tap_names, discrete=code_taps, tolerances={"float32": FP32, "float16": FP16,
                                                   "bfloat16": BF16},
    # the decoded audio is cut to the input length: round-trip SNR over the whole input
    metrics=codec.codec_metrics(lambda ref, got: float(np.mean(_codes(ref) == _codes(got))),
                                "fraction of codes (all stages) equal between MLX and reference"),
    weights=(f"seeded random weights, not trained (torch seed {codec.WEIGHTS_SEED}, re-drawn "
             f"with seed {codec.WEIGHTS_SEED + 1}, see reference/snac.py); config.json + "
             "pytorch_model.bin as the hub repos"),
    bench_mlx=bench_mlx,
    bench_torch=lambda model, x, config: (lambda: model.encode(x), model.decode),
    extras=noise_inputs)
ReferenceSide = FAMILY.reference_side


def _cases(seconds: float) -> tuple[GoldenCase, ...]:
    return tuple(GoldenCase(clip.split("_")[-1], f"espeak {clip.split('_')[-1]} clip, first "
                            f"{seconds} s", {"clip": clip, "seconds": seconds})
                 for clip in ("espeak_en_fox", "espeak_en_weather"))


def exercise(min_codes: int) -> tuple[Exercise, ...]:
    """Each stage's codes (B, F_k) take at least `min_codes` values; the decoded audio (B, N)
    varies over time and is not near silence (measured before: test-tiny 7-35 codes per stage,
    snac-24khz 15-68 of 18-72 frames; audio time-varying >= 0.91 of its RMS, std >= 5x the
    clip's)."""
    return (*(Exercise("distinct", f"quantizer.codes.{k}", min_codes) for k in range(3)),
            *decoded_audio("audio_values", 1))


TEST_TINY = FAMILY.spec("snac-test-tiny", "tiny random SNAC for CI (local attention window 4, "
                        "noise, depthwise, strides [4, 2, 1])", TEST_TINY_CONFIG, _cases(0.1),
                        exercise=exercise(4), noise_seed=NOISE_SEED)
SNAC_24KHZ = FAMILY.spec("snac-24khz", "SNAC 24 kHz (hubertsiuzdak/snac_24khz configuration), 3 "
                         "stages at 12, 23, 47 Hz", SNAC_24KHZ_CONFIG, _cases(1.5),
                         exercise=exercise(8), noise_seed=NOISE_SEED)
