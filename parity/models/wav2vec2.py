"""Wav2Vec2 CTC parity specs: MLX port (`mlx_impl.wav2vec2`) against transformers
`Wav2Vec2ForCTC` (`reference.wav2vec2`).

Specs (all with seeded random weights: no wav2vec2 checkpoint is available offline, so outputs
are not speech recognition, only their agreement between the two sides means anything):
- `wav2vec2-test-tiny`: tiny CI config, group-norm feature encoder, post-LN transformer;
- `wav2vec2-test-tiny-stable`: tiny, layer-norm feature encoder with conv bias, pre-LN
  ("stable layer norm") transformer, the large-lv60 architecture;
- `wav2vec2-base-960h`: facebook/wav2vec2-base-960h's architecture (transformers
  `Wav2Vec2Config()` defaults with vocab_size 32), ~94M parameters.

The reference builds the model under `torch.manual_seed` and writes it with `save_pretrained` to
a cache folder outside the repository (`reference.wav2vec2.build_checkpoint`); the MLX side reads
those files with `weights.wav2vec2.load` and converts them with `mlx_impl.wav2vec2.convert`. Both
sides normalise the raw clip themselves (the `input_values` tap compares that step).

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.models import codec
from parity.exercise import argmax_tokens
from parity.sides import AdapterSide, LoadedMlxSide
from parity.spec import (BenchSpec, BenchStage, GoldenCase, Metric, ModelSpec, Override, ParityError, ToleranceTable, fp32_table)
from parity.clips import read_clip  # noqa: F401  (tests read clips through the spec module)
from parity.clips import audio_inputs as make_inputs

WEIGHTS_SEED = 0

_STRIDES = dict(conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2))
BASE_960H_CONFIG = dict(
    vocab_size=32, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-5, feat_extract_norm="group",
    feat_extract_activation="gelu", conv_dim=(512,) * 7, **_STRIDES, conv_bias=False,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, do_stable_layer_norm=False,
    pad_token_id=0)
TEST_TINY_CONFIG = dict(
    BASE_960H_CONFIG, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=37, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4)
TEST_TINY_STABLE_CONFIG = dict(TEST_TINY_CONFIG, feat_extract_norm="layer", conv_bias=True,
                               do_stable_layer_norm=True, num_conv_pos_embeddings=15)


def tap_names(config: Mapping) -> tuple[str, ...]:
    """Taps in execution order (mlx_impl/wav2vec2/model.py), plus the discrete greedy path."""
    names = ["input_values"]
    names += [f"feature_extractor.conv_layers.{i}" for i in range(len(config["conv_dim"]))]
    names += ["feature_projection", "encoder.pos_conv_embed"]
    if not config["do_stable_layer_norm"]:
        names.append("encoder.layer_norm")
    for i in range(config["num_hidden_layers"]):
        names += [f"encoder.layers.{i}.attention", f"encoder.layers.{i}.feed_forward",
                  f"encoder.layers.{i}"]
    if config["do_stable_layer_norm"]:
        names.append("encoder.layer_norm")
    return (*names, "logits", "logits.argmax")


def vocab() -> dict[str, int]:
    from mlx_impl.wav2vec2.tokenizer import BASE_960H_VOCAB  # plain Python, no mlx import

    return dict(BASE_960H_VOCAB)


def checkpoint(config: Mapping, seed: int = WEIGHTS_SEED) -> Path:
    """The cached save_pretrained folder of the seeded model (the reference builds it once)."""
    from reference.wav2vec2 import build_checkpoint

    return build_checkpoint(dict(config), seed, vocab())


def _argmax(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=-1).astype(np.int64)  # (B, T) greedy CTC path


class ReferenceSide(AdapterSide):
    def __init__(self, config: Mapping, seed: int = WEIGHTS_SEED):
        from reference.wav2vec2 import Wav2Vec2Reference

        super().__init__(Wav2Vec2Reference(checkpoint(config, seed)), config, tap_names(config))

    def __call__(self, inputs):
        taps = super().__call__(inputs)
        taps["logits.argmax"] = _argmax(taps["logits"])
        return taps


class MlxSide(LoadedMlxSide):
    package = "wav2vec2"

    def __init__(self, config: Mapping, dtype: str, seed: int = WEIGHTS_SEED):
        super().__init__(checkpoint(config, seed), config, dtype)

    def __call__(self, inputs):
        from mlx_impl.taps import Taps
        from mlx_impl.wav2vec2.features import normalize

        mx, taps = self._mx, Taps()
        iv = taps("input_values",
                  mx.array(normalize(np.asarray(inputs["audio"], dtype=np.float32))[None]))
        self.model(iv, taps=taps)
        out = codec.taps_to_numpy(mx, taps)
        if "logits" not in out:
            raise ParityError(f"the MLX model recorded no 'logits' tap; it recorded {list(out)}")
        out["logits.argmax"] = _argmax(out["logits"])
        return out


def _argmax_agreement(ref, got) -> float:
    return float(np.mean(ref["logits.argmax"] == got["logits.argmax"]))


def _min_top2_gap(ref, got) -> float:
    top = np.sort(ref["logits"], axis=-1)
    return float(np.min(top[..., -1] - top[..., -2]))


METRICS = (
    Metric("argmax_agreement", "fraction of frames where MLX and reference pick the same CTC "
           "class", _argmax_agreement),
    Metric("reference_min_top2_gap", "smallest margin between the reference's best and second "
           "logit over frames (how close the greedy path came to a tie)", _min_top2_gap),
)

# fp32, CPU, MLX against transformers, fixture clips fox + weather: the harness's defaults
# (parity.spec.fp32_table). Needed floor over the tap's RMS: base-960h <= 1.8e-5
# (encoder.layers.9; feature-encoder convs after a 20k-frame group norm 1.3e-5), 2026-12-04;
# tiny configs <= 4.5e-6 (2026-12-05). An earlier loaded-machine run saw the difference move by
# ~1e-5 absolute between processes (conv_layers.2, maps up to ~20): the default floor there is
# 1e-4 x rms, several times that.
FP32 = fp32_table()
# Half precision: MLX in float16 / bfloat16 against the float32 reference, fixture clips fox +
# weather. Measured 2026-12-05 on a 2-core AMD EPYC (MKL), mlx 0.32.4 (docs/PRECISION.md), as
# k_rms = max(|got - want| - rtol |want|) / rms(want) per tap, over wav2vec2-base-960h (fox) and
# both tiny configs:
# - float16 (rtol 1e-3): worst 0.019 (feature_extractor.conv_layers.0, base-960h; maps of
#   magnitude 8-16 where one fp16 step is 7.8e-3); encoder layers <= 0.016; the attention
#   outputs (residual branches of RMS ~0.05) <= 0.0056; logits 0.011; tap SNR >= 52.8 dB.
# - bfloat16 (rtol 1e-2): worst 0.19 (conv_layers.0, base-960h); encoder layers <= 0.162;
#   attention outputs <= 0.039; logits 0.104; tap SNR >= 34.7 dB.
# The greedy path stays exact (never loosened) and does differ in half precision where the
# random-weight reference has near-ties: fp16 test-tiny weather 1 of 315 frames (frame 274:
# reference top-2 gap 2.7e-4, fp16 logit error there 3.5e-4), test-tiny-stable fox 2 of 322
# frames (frames 31 and 102: gaps 1.9e-4 and 7.1e-5, errors 6.9e-4 and 4.9e-4); bf16 every tiny
# case (97.8-99.1 % of frames) and base-960h fox (98.45 %). Those reports FAIL on
# logits.argmax (kept, not hidden).
_W2V_ATTN = "the attention outputs are small residual branches (RMS ~0.05) whose error is "
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=5.5e-2, overrides=(
    Override("encoder.layers.*.attention", atol=1e-5, rtol=1e-3, k_rms=1.5e-2,
             reason=_W2V_ATTN + "a third of the rest: measured k_rms <= 0.0056 (base-960h "
                    "layers.11, float16, 2026-12-05); tighter than the default"),))
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=5.5e-1, overrides=(
    Override("encoder.layers.*.attention", atol=1e-5, rtol=1e-2, k_rms=1.2e-1,
             reason=_W2V_ATTN + "a quarter of the rest: measured k_rms <= 0.039 (base-960h "
                    "layers.10, bfloat16, 2026-12-05); tighter than the default"),))

_FOX = GoldenCase("fox", "espeak 'quick brown fox' clip", {"clip": "espeak_en_fox"})
_WEATHER = GoldenCase("weather", "espeak weather-forecast clip", {"clip": "espeak_en_weather"})
# base-960h: 48 taps of ~98 KB fingerprints (768/512 wide) make 5 MB per whole clip, so its
# parity and golden case is the fox clip alone; the tiny specs keep both clips (3.1 MB).


def bench_build_for(config: Mapping):
    """`BenchSpec.build`: one "transcribe" stage per engine on the 16 kHz clip (wav2vec 2.0's
    own rate): ours is `Wav2Vec2Transcriber.transcribe` (normalise, forward, greedy CTC, text,
    word offsets); torch is transformers' feature extractor, `Wav2Vec2ForCTC`, argmax and
    `Wav2Vec2CTCTokenizer.decode` with word offsets; same seeded checkpoint."""
    def build(engine: str, dtype: str, audio16k: np.ndarray) -> list[BenchStage]:
        audio = np.ascontiguousarray(audio16k, dtype=np.float32)
        seconds = audio.shape[0] / 16000
        folder = checkpoint(config)
        if engine == "mlx":
            from mlx_impl.loading import as_dtype

            from mlx_impl.wav2vec2.transcribe import Wav2Vec2Transcriber

            stt = Wav2Vec2Transcriber.from_pretrained(
                folder, as_dtype(dtype))
            return [BenchStage("transcribe", lambda: stt.transcribe(audio), seconds)]
        if engine == "torch":
            import torch

            from reference.wav2vec2 import Wav2Vec2Reference

            ref = Wav2Vec2Reference(folder)

            def run():
                with torch.no_grad():
                    logits = ref.model(torch.from_numpy(ref.input_values(audio))).logits
                return ref.decode(logits.argmax(-1)[0].numpy(), offsets=True)

            return [BenchStage("transcribe", run, seconds)]
        raise ValueError(f"unknown engine {engine!r}; use 'mlx' or 'torch'")
    return build


# per-frame CTC argmax (1, T): several classes, none in most frames (measured before: 16-21
# classes; the commonest in 17-52 % of the frames)
EXERCISE = argmax_tokens("logits.argmax", distinct=5, non_mode=0.3)


def _spec(name: str, description: str, config: Mapping,
          cases: tuple[GoldenCase, ...] = (_FOX, _WEATHER), bench: bool = False) -> ModelSpec:
    return ModelSpec(
        name=name, description=description,
        weights=f"seeded random weights, not trained (torch.manual_seed({WEIGHTS_SEED}) + "
                "transformers init, norms and biases perturbed); no real checkpoint offline",
        build_mlx=lambda dtype: MlxSide(config, dtype),
        build_reference=lambda: ReferenceSide(config),
        make_inputs=make_inputs,
        taps=tap_names(config),
        tolerances={"float32": FP32, "float16": FP16, "bfloat16": BF16},
        golden_cases=cases,
        discrete=("logits.argmax",),
        metrics=METRICS,
        exercise=EXERCISE,
        config={"config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
                "weights_seed": WEIGHTS_SEED},
        bench=BenchSpec(engines=("mlx", "torch"), build=bench_build_for(config),
                        audio_seconds=10.0) if bench else None,
    )


TEST_TINY = _spec("wav2vec2-test-tiny", "tiny random Wav2Vec2ForCTC for CI (width 32, 2 layers, "
                  "group-norm feature encoder, post-LN)", TEST_TINY_CONFIG)
TEST_TINY_STABLE = _spec("wav2vec2-test-tiny-stable", "tiny random Wav2Vec2ForCTC, layer-norm "
                         "feature encoder with conv bias, stable (pre-LN) transformer",
                         TEST_TINY_STABLE_CONFIG)
BASE_960H = _spec("wav2vec2-base-960h", "wav2vec2-base-960h architecture (768 wide, 12 layers, "
                  "12 heads, 32-character CTC vocab)", BASE_960H_CONFIG, (_FOX,),
                  bench=True)
