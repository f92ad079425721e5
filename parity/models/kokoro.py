"""Kokoro parity specs: MLX port (`mlx_impl.kokoro`) against the `kokoro` package 0.9.4.

Specs: `kokoro-test-tiny` (tiny ALBERT and iSTFTNet, real vocabulary; see
mlx_impl/kokoro/presets.py) and `kokoro-82m` (hexgrad/Kokoro-82M's config.json from the
kokoro-onnx 0.6.1 wheel), both with seeded random weights in kokoro's own `.pth` format
(`reference.kokoro.random_checkpoint`), read by kokoro's `KModel` and by `mlx_impl.kokoro.load`.

Inputs: espeak-ng phonemes of a sentence (stored in the case: parity does not depend on
espeak's version), mapped through the real vocabulary as `KModel.forward` does (0 at both
ends); `ref_s` = the seeded voice pack's row for that length (kokoro's `KPipeline`); the sine
source's initial phases `phases` (1, 9) and the additive source noise drawn by both sides from
`numpy.random.default_rng(noise_seed).standard_normal((1, N, 9))` once N (set by the
predicted durations) is known. Taps: every stage in execution order (module paths of `KModel`),
`duration` before rounding and `pred_dur` (exact) after it, `en` (the aligned prosody input)
and the audio. reference/kokoro.py and mlx_impl/kokoro/model.py document the one shared
deviation (the STFT phase of real negative bins).

Importing this module imports neither torch nor mlx.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping

import numpy as np

from parity.metrics import snr_db
from parity.spec import CaseInputs, Goal, GoldenCase, Metric, ModelSpec, fp32_override, fp32_table

WEIGHTS_SEED = 0
NOISE_SEED = 11
PHASE_SEED = 12
SNR_MIN_DB = 60.0


def presets() -> dict:
    from mlx_impl.kokoro.presets import PRESETS

    return PRESETS


def tap_names(config: Mapping) -> tuple[str, ...]:
    ist = config["istftnet"]
    n_ups, n_k = len(ist["upsample_rates"]), len(ist["resblock_kernel_sizes"])
    g = "decoder.generator"
    names = ["bert", "bert_encoder", "predictor.text_encoder", "predictor.lstm",
             "predictor.duration_proj", "duration", "pred_dur", "en", "predictor.shared"]
    for name in ("F0", "N"):
        names += [f"predictor.{name}.{i}" for i in range(3)] + [f"predictor.{name}_proj"]
    names += ["F0_pred", "N_pred"]
    names += [f"text_encoder.cnn.{i}" for i in range(config["n_layer"])] + ["text_encoder"]
    names += ["decoder.F0_conv", "decoder.N_conv", "decoder.encode", "decoder.asr_res",
              *[f"decoder.decode.{i}" for i in range(4)], f"{g}.m_source"]
    for i in range(n_ups):
        names += [f"{g}.noise_convs.{i}", f"{g}.noise_res.{i}", f"{g}.ups.{i}",
                  *[f"{g}.resblocks.{i * n_k + j}" for j in range(n_k)]]
    return (*names, f"{g}.conv_post", "audio")


@functools.lru_cache(maxsize=4)
def _checkpoint(config_json: str):
    from reference.kokoro import random_checkpoint

    return random_checkpoint(json.loads(config_json), WEIGHTS_SEED)


def checkpoint(config: Mapping):
    return _checkpoint(json.dumps(dict(config), sort_keys=True, ensure_ascii=False))


def source_noise(seed: int):
    def noise(shape: tuple) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return noise


def make_inputs_for(config: Mapping):
    def make_inputs(case: GoldenCase) -> CaseInputs:
        from mlx_impl.kokoro.phonemes import to_ids
        from mlx_impl.kokoro.voices import load_voice, style_for

        p = case.params
        ids = np.asarray([to_ids(p["phonemes"], config["vocab"])], np.int32)
        pack = load_voice(checkpoint(config), p["voice"])
        phases = np.random.default_rng(PHASE_SEED).random((1, 9)).astype(np.float32)
        arrays = {"input_ids": ids, "ref_s": style_for(pack, ids.shape[1] - 2),
                  "phases": phases, "noise_seed": np.asarray(NOISE_SEED, np.int64),
                  "speed": np.asarray(1.0, np.float32)}
        meta = {"text": p["text"], "phonemes": p["phonemes"], "voice": p["voice"],
                "n_tokens": int(ids.shape[1]), "noise": f"numpy default_rng({NOISE_SEED})."
                "standard_normal((1, N, 9))", "phases": f"numpy default_rng({PHASE_SEED})"
                ".random((1, 9))"}
        return CaseInputs(arrays, meta)
    return make_inputs


class ReferenceSide:
    def __init__(self, config: Mapping):
        from reference.kokoro import KokoroReference

        self.ref = KokoroReference(checkpoint(config))
        self.config, self.versions = dict(config), self.ref.versions
        self.taps = tap_names(config)

    def __call__(self, inputs):
        noise = source_noise(int(np.asarray(inputs["noise_seed"])))
        out = self.ref(inputs, noise, taps=self.taps)
        return {k: out[k] for k in self.taps}


class MlxSide:
    def __init__(self, config: Mapping, dtype: str):
        import mlx.core as mx

        from mlx_impl.kokoro.load import load

        self._mx = mx
        self.model = load(checkpoint(config), dtype)
        self.config, self.versions = dict(config), {"mlx": mx.__version__}

    def __call__(self, inputs):
        from mlx_impl.taps import Taps

        mx, taps = self._mx, Taps()
        self.model(mx.array(np.asarray(inputs["input_ids"])), mx.array(inputs["ref_s"]),
                   mx.array(inputs["phases"]), source_noise(int(np.asarray(inputs["noise_seed"]))),
                   speed=float(np.asarray(inputs["speed"])), taps=taps)
        out = {}
        for k, v in taps.items():
            a = np.asarray(v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v)
            out[k] = a.astype(np.int64) if k == "pred_dur" else a
        return out


METRICS = (
    Metric("audio_snr_db", "SNR of the MLX audio against the reference's (dB)",
           lambda ref, got: snr_db(ref["audio"], got["audio"]),
           goal=Goal(f"audio SNR vs the reference >= {SNR_MIN_DB} dB (fp32; measured 72.6 dB "
                     "on kokoro-test-tiny hello, 2026-12-06)", at_least=SNR_MIN_DB)),
    Metric("durations_equal", "1 if the rounded durations are identical",
           lambda ref, got: float(np.array_equal(ref["pred_dur"], got["pred_dur"])),
           goal=Goal("durations must be identical (a differing frame count shifts all audio)",
                     at_least=1.0)),
    Metric("duration_max_abs", "max |duration before rounding, MLX - reference| (frames)",
           lambda ref, got: float(np.max(np.abs(ref["duration"] - got["duration"])))),
)

# fp32 on CPU vs torch: the harness defaults up to the harmonic source (m_source needs k 1.3e-5,
# 112 dB), then the generator: it reads the source's STFT *phase*, unweighted by magnitude, and
# the phase of bins of ~1e-4 of the frame peak moves by ~1e-2 rad under the fp32 rounding of
# its input (m_source max error 4e-6). Measured on kokoro-test-tiny hello (2026-12-06): needed
# k_rms 1.7e-3 (noise_convs.0) .. 3.2e-3 (noise_convs.1), audio 1.5e-3 (SNR 72.6 dB).
_GEN = ("the generator reads the harmonic source's STFT phase, unweighted by magnitude; at bins "
        "of ~1e-4 of the frame peak fp32 rounding of the source (4e-6) moves it by ~1e-2 rad; "
        "measured needed k_rms 1.7e-3 .. 3.2e-3 (kokoro-test-tiny hello, 2026-12-06)")
FP32 = fp32_table(
    fp32_override("decoder.generator.noise_*", 1e-2, _GEN),
    fp32_override("decoder.generator.resblocks.*", 1e-2, _GEN),
    fp32_override("decoder.generator.ups.1", 1e-2, _GEN + " (ups.1 reads resblocks.0-1)"),
    fp32_override("decoder.generator.conv_post", 1e-2, _GEN),
    fp32_override("audio", 5e-3, _GEN + "; audio needed 1.5e-3"))
# Half precision was not measured for Kokoro (the deadline of this port): the fp32 table stands
# in, so a float16 / bfloat16 run fails against it instead of passing on an unmeasured bound.
HALF = FP32

_HELLO = GoldenCase("hello", "'Hello world, this is Kokoro.' (espeak-ng en-us), voice af_seeded",
                    {"text": "Hello world, this is Kokoro.", "voice": "af_seeded",
                     "phonemes": "həlˈoʊ wˈɜːld, ðɪs ɪz kəkˈoːɹoʊ."})
# Not a golden case yet: 'The quick brown fox jumps over the lazy dog.' (voices af_seeded +
# am_seeded) FAILS (audio SNR 33 dB): one Nyquist bin of the source STFT (frame 2771) has a
# magnitude of 1.0000e-4 of its frame's peak, on the threshold of the phase rule above, so the
# two sides take 0 and pi there. The threshold rule moves the discontinuity of upstream's
# phase, it does not remove it; see the report of this port (open problem).
def _spec(name: str, description: str, config: Mapping, cases) -> ModelSpec:
    return ModelSpec(
        name=name, description=description,
        weights=f"seeded random weights, not trained (torch.manual_seed({WEIGHTS_SEED}) + "
                "kokoro's init, norms/Snake alphas/duration and F0 biases re-drawn, see "
                "reference/kokoro.py); kokoro's .pth format; seeded random voice packs",
        build_mlx=lambda dtype: MlxSide(config, dtype),
        build_reference=lambda: ReferenceSide(config),
        make_inputs=make_inputs_for(config),
        taps=tap_names(config),
        tolerances={"float32": FP32, "float16": HALF, "bfloat16": HALF},
        golden_cases=cases,
        discrete=("pred_dur",),
        metrics=METRICS,
        config={"config": dict(config), "weights_seed": WEIGHTS_SEED, "noise_seed": NOISE_SEED,
                "phase_seed": PHASE_SEED})


TEST_TINY = _spec("kokoro-test-tiny", "tiny random Kokoro for CI (ALBERT 64 x 2, real vocabulary, "
                  "iSTFTNet 4 x 2 upsampling, n_fft 8 hop 2; upstream's fixed 1024-wide decoder)",
                  presets()["kokoro-test-tiny"], (_HELLO,))
KOKORO_82M = _spec("kokoro-82m", "Kokoro-82M configuration (hexgrad/Kokoro-82M config.json: "
                   "ALBERT 768 x 12 shared, iSTFTNet 10 x 6, n_fft 20 hop 5, 24 kHz)",
                   presets()["kokoro-82m"], (_HELLO,))
