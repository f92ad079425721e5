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
predicted durations) is known; `source_f0`, the reference's predicted F0 curve (computed by the
input maker), which the MLX harmonic source integrates instead of its own F0 (the `F0_pred` tap
compares the two curves first): the source turns F0 into phases of up to ~3e4 rad, where the
fp32 difference of the two predictions (1e-6 relative) is a phase difference of ~1e-4 rad, and
the STFT phase the generator reads is discontinuous, so free-running sources disagree by jumps
(measured without it: audio SNR 22-33 dB on three cases). Taps: every stage in execution order (module paths of `KModel`),
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

from parity.exercise import AUDIO_VARYING, Exercise
from parity.metrics import snr_db
from parity.spec import CaseInputs, ParityError, Goal, GoldenCase, Metric, ModelSpec, fp32_override, fp32_table

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


@functools.lru_cache(maxsize=2)
def _reference(config_json: str) -> "ReferenceSide":
    return ReferenceSide(json.loads(config_json))


def reference_f0(config: Mapping, arrays: dict) -> np.ndarray:
    """The reference's predicted F0 curve (1, 2F) for these inputs (see `source_f0`)."""
    ref = _reference(json.dumps(dict(config), sort_keys=True, ensure_ascii=False))
    return ref.ref(arrays, source_noise(NOISE_SEED), taps=())["F0_pred"]


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
        arrays["source_f0"] = reference_f0(config, arrays)
        meta = {"text": p["text"], "phonemes": p["phonemes"], "voice": p["voice"],
                "n_tokens": int(ids.shape[1]), "noise": f"numpy default_rng({NOISE_SEED})."
                "standard_normal((1, N, 9))", "phases": f"numpy default_rng({PHASE_SEED})"
                ".random((1, 9))"}
        return CaseInputs(arrays, meta)
    return make_inputs


def _scalar(a, kind):
    """A scalar input as stored (0-d) or read back from a golden (shape (1,))."""
    return kind(np.asarray(a).reshape(-1)[0])


class ReferenceSide:
    def __init__(self, config: Mapping):
        from reference.kokoro import KokoroReference

        self.ref = KokoroReference(checkpoint(config))
        self.config, self.versions = dict(config), self.ref.versions
        self.taps = tap_names(config)

    def __call__(self, inputs):
        noise = source_noise(_scalar(inputs["noise_seed"], int))
        out = self.ref(inputs, noise, taps=self.taps)
        if "source_f0" in inputs and not np.array_equal(out["F0_pred"], inputs["source_f0"]):
            raise ParityError("the reference's F0 differs from the source_f0 it produced for these "
                              "inputs: the reference is not deterministic here")
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

        mx = self._mx
        ids = mx.array(np.asarray(inputs["input_ids"]))
        speed = _scalar(inputs["speed"], float)
        # the reference's F0 fits only where the durations agree; where they differ (seen in
        # float16) the source runs on its own F0 and the comparison fails at `pred_dur`
        ref_s = mx.array(inputs["ref_s"]).astype(self.model.dtype)
        _, duration = self.model.predict(ids, ref_s, speed)
        frames = 2 * int(np.maximum(np.round(duration[0]), 1).sum())
        source_f0 = np.asarray(inputs["source_f0"], np.float32)
        taps = Taps()
        self.model(ids, mx.array(inputs["ref_s"]), mx.array(inputs["phases"]),
                   source_noise(_scalar(inputs["noise_seed"], int)), speed=speed, taps=taps,
                   source_f0=mx.array(source_f0) if source_f0.shape[1] == frames else None)
        out = {}
        for k, v in taps.items():
            a = np.asarray(v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v)
            out[k] = a.astype(np.int64) if k == "pred_dur" else a
        return out


METRICS = (
    Metric("audio_snr_db", "SNR of the MLX audio against the reference's (dB)",
           lambda ref, got: snr_db(ref["audio"], got["audio"]),
           goal=Goal(f"audio SNR vs the reference >= {SNR_MIN_DB} dB (fp32; measured 95.2-96.3 "
                     "dB, 2026-12-06)", at_least=SNR_MIN_DB)),
    Metric("durations_equal", "1 if the rounded durations are identical",
           lambda ref, got: float(np.array_equal(ref["pred_dur"], got["pred_dur"])),
           goal=Goal("durations must be identical (a differing frame count shifts all audio)",
                     at_least=1.0)),
    Metric("duration_max_abs", "max |duration before rounding, MLX - reference| (frames)",
           lambda ref, got: float(np.max(np.abs(ref["duration"] - got["duration"])))),
)

# fp32 on CPU vs torch: the harness defaults, except the generator after its harmonic source.
# With the reference's F0 (see `source_f0`) the source agrees to 144 dB, but the generator reads
# the STFT *phase* of that source unweighted by magnitude, and at bins of ~1e-3 of the frame
# peak the FFTs' fp32 rounding (MKL in torch, pocketfft in MLX) moves it by ~1e-4 rad. Measured
# needed k_rms (2026-12-06; kokoro-test-tiny hello and fox, kokoro-82m hello): noise_res.1
# 1.83e-4, noise_convs.1 1.62e-4, audio 1.62e-4, resblocks <= 1.49e-4, ups.1 1.26e-4,
# conv_post 1.24e-4 (all other taps <= 1e-4, the default); audio SNR 95.2-96.3 dB.
_GEN = ("the generator reads the harmonic source's STFT phase unweighted by magnitude; FFT "
        "rounding moves the phase of small bins by ~1e-4 rad; measured needed k_rms ")
FP32 = fp32_table(
    fp32_override("decoder.generator.noise_*", 5e-4, _GEN + "<= 1.83e-4 (noise_res.1, "
                  "kokoro-test-tiny fox, 2026-12-06)"),
    fp32_override("decoder.generator.resblocks.*", 5e-4, _GEN + "<= 1.49e-4 (resblocks.4, "
                  "kokoro-82m hello, 2026-12-06)"),
    fp32_override("decoder.generator.ups.1", 5e-4, _GEN + "1.26e-4 (kokoro-test-tiny fox, "
                  "2026-12-06; ups.1 reads the first stage's resblocks)"),
    fp32_override("decoder.generator.conv_post", 5e-4, _GEN + "1.24e-4 (kokoro-test-tiny hello, "
                  "2026-12-06)"),
    fp32_override("audio", 5e-4, _GEN + "1.62e-4 (kokoro-82m hello, 2026-12-06)"))
# Half precision is not supported yet: the fp32 table stands in, so a float16 / bfloat16 run
# FAILS against it rather than passing on an unmeasured bound. Measured float16 on
# kokoro-test-tiny (2026-12-06, the harmonic source and iSTFT kept in float32): ALBERT taps
# ~61 dB, decoder 49-60 dB, m_source 66 dB, but the generator 21-26 dB (audio 22 dB: the STFT
# phase, ill-conditioned at small bins, in float16), and on fox the float16 durations differ
# (194 vs 193 frames). bfloat16 was not run.
HALF = FP32

_HELLO = GoldenCase("hello", "'Hello world, this is Kokoro.' (espeak-ng en-us), voice af_seeded",
                    {"text": "Hello world, this is Kokoro.", "voice": "af_seeded",
                     "phonemes": "həlˈoʊ wˈɜːld, ðɪs ɪz kəkˈoːɹoʊ."})
_FOX = GoldenCase("fox", "'The quick brown fox jumps over the lazy dog.' (espeak-ng en-us), "
                  "voices af_seeded and am_seeded blended",
                  {"text": "The quick brown fox jumps over the lazy dog.",
                   "voice": "af_seeded,am_seeded",
                   "phonemes": "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ."})


# What every case must exercise, measured on both sides: the rounded durations are not one
# constant (the seeded predictor gives 3 and 4 frames per phoneme on every golden case,
# 2026-12-06), and the audio varies over time (not an offset).
EXERCISE = (Exercise("distinct", "pred_dur", 2),
            Exercise("time_varying", "audio", AUDIO_VARYING, axis=-1))


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
        exercise=EXERCISE,
        config={"config": dict(config), "weights_seed": WEIGHTS_SEED, "noise_seed": NOISE_SEED,
                "phase_seed": PHASE_SEED})


TEST_TINY = _spec("kokoro-test-tiny", "tiny random Kokoro for CI (ALBERT 64 x 2, real vocabulary, "
                  "iSTFTNet 4 x 2 upsampling, n_fft 8 hop 2; upstream's fixed 1024-wide decoder)",
                  presets()["kokoro-test-tiny"], (_HELLO, _FOX))
KOKORO_82M = _spec("kokoro-82m", "Kokoro-82M configuration (hexgrad/Kokoro-82M config.json: "
                   "ALBERT 768 x 12 shared, iSTFTNet 10 x 6, n_fft 20 hop 5, 24 kHz)",
                   presets()["kokoro-82m"], (_HELLO,))
