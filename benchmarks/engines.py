"""Whisper's engines for the benchmark runner, each behind the same two calls (load, run), and
the Whisper BenchSpec (`whisper_bench`) that makes them engines of `benchmarks.runner`.

Every engine transcribes the same float32 16 kHz samples with the same decoding options
(`OPTIONS`): English, transcribe, greedy (temperature 0, one beam, no temperature fallback),
with timestamp tokens (every engine's default; with <|notimestamps|> tiny.en stops after the first
sentence of the 30-s clip, 24 of ~100 tokens, measured on all three torch/CT2 engines, which
would time a mostly idle decoder), no previous-text conditioning, no no-speech skipping,
no word timestamps, no VAD, at most 224 sampled tokens per window (openai-whisper's
n_text_ctx // 2). Each engine computes its own log-mel from the samples (part of the timing).

Encoder time: each engine's encoder call is wrapped with a clock (torch forward hooks; a wrapper
that evaluates the MLX graph before stopping the clock; CTranslate2's synchronous `encode`).
Tokens: text tokens produced (ids below <|endoftext|>; timestamps not counted), all windows.

Imports are lazy: a worker imports only its own engine's packages, so one engine's libraries
(and, for the MLX engines, the MKL or OpenBLAS that `mlx_impl` preloads) never load into
another's process.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.prepare import DEFAULT_CACHE, prepare
from benchmarks.worker import preload_blas
from parity.spec import BenchSpec, BenchStage

ENGINES = ("ours", "openai-whisper", "transformers", "faster-whisper", "mlx-whisper")
# dtypes each peer can run here; torch and CTranslate2 run float32 on CPU (no fp16 CPU kernels)
PEER_DTYPES = {"mlx-whisper": ("float32", "float16"), "openai-whisper": ("float32",),
               "transformers": ("float32",), "faster-whisper": ("float32",)}


@dataclass(frozen=True)
class Options:
    language: str = "en"  # given, so no language detection runs
    task: str = "transcribe"
    temperature: float = 0.0  # greedy; a single temperature, so no fallback
    beam_size: int = 1  # greedy: one hypothesis
    without_timestamps: bool = False  # timestamp tokens on (see the module docstring)
    condition_on_previous_text: bool = False
    no_speech_threshold: None = None  # never skip a window as silence
    word_timestamps: bool = False
    vad: bool = False
    max_new_tokens: int = 224  # openai-whisper's sample_len default, n_text_ctx // 2

    def to_dict(self) -> dict:
        return asdict(self)


OPTIONS = Options()


@dataclass
class RunOutput:
    text: str
    n_tokens: int  # text tokens generated, all windows
    encoder_s: float  # wall time inside the encoder, all windows
    n_windows: int  # encoder calls


class Clock:
    """Sums the durations of start/stop intervals (the encoder calls of one run)."""

    def __init__(self):
        self.total, self.count, self._t0 = 0.0, 0, None

    def reset(self) -> None:
        self.total, self.count, self._t0 = 0.0, 0, None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self._t0 is None:
            raise RuntimeError("Clock.stop() without start()")
        self.total += time.perf_counter() - self._t0
        self.count += 1
        self._t0 = None


class _TimedMLXEncoder:
    """Calls an MLX encoder, evaluates its output (MLX is lazy), and clocks the call."""

    def __init__(self, encoder, clock: Clock):
        self._encoder, self._clock = encoder, clock

    def __call__(self, *args, **kwargs):
        import mlx.core as mx

        self._clock.start()
        out = self._encoder(*args, **kwargs)
        mx.eval(out)
        self._clock.stop()
        return out

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def _wrap_mlx_encoder(model, clock: Clock) -> None:
    # mlx.nn.Module keeps child modules in its dict; an instance attribute of the same name is
    # found first by attribute lookup, so `model.encoder(...)` calls the wrapper.
    object.__setattr__(model, "encoder", _TimedMLXEncoder(model.encoder, clock))


def _count_text_tokens(tokens, eot: int) -> int:
    return int(sum(1 for t in tokens if t < eot))


def _set_torch_threads(threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return {"torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------


class Ours:
    """mlx_impl.whisper.transcribe (MLX)."""

    name = "ours"

    def __init__(self, prepared: dict, dtype: str, threads: int):
        preload_blas()
        import mlx.core as mx

        from mlx_impl.whisper.transcribe import load

        self.model, self.tokenizer = load(prepared["model"], dtype=getattr(mx, dtype))
        self.clock = Clock()
        _wrap_mlx_encoder(self.model, self.clock)
        self.info = {"api": "mlx_impl.whisper.transcribe.transcribe"}

    def run(self, audio: np.ndarray) -> RunOutput:
        from mlx_impl.whisper.transcribe import transcribe

        self.clock.reset()
        o = OPTIONS
        r = transcribe(self.model, audio, tokenizer=self.tokenizer, temperature=o.temperature,
                       compression_ratio_threshold=None, logprob_threshold=None,
                       no_speech_threshold=o.no_speech_threshold,
                       condition_on_previous_text=o.condition_on_previous_text,
                       word_timestamps=o.word_timestamps, language=o.language, task=o.task,
                       without_timestamps=o.without_timestamps, sample_len=o.max_new_tokens)
        n = sum(_count_text_tokens(s.tokens, self.tokenizer.eot) for s in r.segments)
        return RunOutput(r.text, n, self.clock.total, self.clock.count)


class OpenAIWhisper:
    """openai-whisper `whisper.transcribe` (torch, fp32) on a model built from our weights."""

    name = "openai-whisper"

    def __init__(self, prepared: dict, dtype: str, threads: int):
        import torch

        from reference.whisper import build_openai
        from weights.whisper import load

        self.info = {"api": "whisper.transcribe", **_set_torch_threads(threads)}
        w = load(prepared["model"])
        self.model = build_openai(w.dims, w.state)
        del w
        self.clock = Clock()
        self.model.encoder.register_forward_pre_hook(lambda m, a: self.clock.start())
        self.model.encoder.register_forward_hook(lambda m, a, out: self.clock.stop())
        from whisper.model import MultiHeadAttention

        self.info["attention"] = "sdpa" if MultiHeadAttention.use_sdpa else "explicit"
        self._torch = torch

    def run(self, audio: np.ndarray) -> RunOutput:
        import whisper
        from whisper.tokenizer import get_tokenizer

        self.clock.reset()
        o = OPTIONS
        r = whisper.transcribe(
            self.model, audio, verbose=None, temperature=o.temperature,
            compression_ratio_threshold=None, logprob_threshold=None,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=o.condition_on_previous_text,
            word_timestamps=o.word_timestamps, language=o.language, task=o.task,
            without_timestamps=o.without_timestamps, fp16=False, beam_size=None,
            sample_len=o.max_new_tokens)
        eot = get_tokenizer(self.model.is_multilingual,
                            num_languages=self.model.num_languages).eot
        n = sum(_count_text_tokens(s["tokens"], eot) for s in r["segments"])
        return RunOutput(r["text"], n, self.clock.total, self.clock.count)


class Transformers:
    """transformers `WhisperForConditionalGeneration.generate` (torch, fp32, SDPA attention)."""

    name = "transformers"

    def __init__(self, prepared: dict, dtype: str, threads: int):
        import torch
        from transformers import GenerationConfig, WhisperFeatureExtractor
        from transformers.utils import logging as hf_logging
        from whisper.tokenizer import get_tokenizer

        from reference.whisper import build_transformers
        from weights.whisper import load

        hf_logging.set_verbosity_error()  # its per-call deprecation notes would bury the progress
        self.info = {"api": "WhisperForConditionalGeneration.generate", **_set_torch_threads(threads)}
        w = load(prepared["model"])
        dims = dict(w.dims)
        self.model = build_transformers(dims, w.state)
        del w
        # the parity adapter builds it with eager attention; users get SDPA by default
        if hasattr(self.model, "set_attn_implementation"):
            self.model.set_attn_implementation("sdpa")
        self.info["attention"] = self.model.config._attn_implementation
        multilingual = dims["n_vocab"] >= 51865
        tok = get_tokenizer(multilingual, num_languages=dims["n_vocab"] - 51765 - int(multilingual),
                            language="en" if multilingual else None, task="transcribe")
        self.tokenizer, self.multilingual = tok, multilingual
        # the same suppression as openai-whisper's default suppress_tokens="-1"
        suppress = sorted(set(tok.non_speech_tokens) | {tok.transcribe, tok.translate, tok.sot,
                                                       tok.sot_prev, tok.sot_lm, tok.no_speech})
        # English-only models get no lang_to_id/task_to_id: with the attribute present (even
        # empty), generate() runs language detection (a second encoder pass) and puts its
        # result in the prompt (measured: token 0 after <|startoftranscript|>, no text).
        lang = {}
        if multilingual:
            lang_ids = dict(zip(tok.all_language_codes, tok.all_language_tokens))
            lang = {"lang_to_id": {f"<|{c}|>": i for c, i in lang_ids.items()},
                    "task_to_id": {"transcribe": tok.transcribe, "translate": tok.translate}}
        self.generation_config = GenerationConfig(
            decoder_start_token_id=tok.sot, eos_token_id=tok.eot, pad_token_id=tok.eot,
            bos_token_id=tok.eot, no_timestamps_token_id=tok.no_timestamps,
            is_multilingual=multilingual, **lang,
            suppress_tokens=suppress, begin_suppress_tokens=[tok.encode(" ")[0], tok.eot],
            max_new_tokens=OPTIONS.max_new_tokens, max_initial_timestamp_index=50,
            do_sample=False, num_beams=1)
        self.model.generation_config = self.generation_config
        self.features = WhisperFeatureExtractor(feature_size=dims["n_mels"])
        self.clock = Clock()
        enc = self.model.model.encoder
        enc.register_forward_pre_hook(lambda m, a, kw: self.clock.start(), with_kwargs=True)
        enc.register_forward_hook(lambda m, a, kw, out: self.clock.stop(), with_kwargs=True)
        self._torch = torch

    def run(self, audio: np.ndarray) -> RunOutput:
        self.clock.reset()
        o = OPTIONS
        feats = self.features(audio, sampling_rate=16000, return_tensors="pt").input_features
        lang = {"language": o.language, "task": o.task} if self.multilingual else {}
        with self._torch.inference_mode():
            out = self.model.generate(feats, return_timestamps=not o.without_timestamps, **lang)
        seq = out.sequences if hasattr(out, "sequences") else out
        ids = [int(t) for t in seq[0].tolist()]
        text_ids = [t for t in ids if t < self.tokenizer.eot]
        return RunOutput(self.tokenizer.decode(text_ids), len(text_ids), self.clock.total,
                         self.clock.count)


class FasterWhisper:
    """faster-whisper `WhisperModel.transcribe` (CTranslate2, compute_type float32)."""

    name = "faster-whisper"

    def __init__(self, prepared: dict, dtype: str, threads: int):
        from faster_whisper import WhisperModel

        self.model = WhisperModel(prepared["path"], device="cpu", compute_type="float32",
                                  cpu_threads=threads, num_workers=1, local_files_only=True)
        self.info = {"api": "faster_whisper.WhisperModel.transcribe", "cpu_threads": threads,
                     "compute_type": "float32", "model_dir": prepared["path"]}
        self.clock = Clock()
        encode = self.model.encode

        def timed_encode(features):
            self.clock.start()
            out = encode(features)
            self.clock.stop()
            return out

        self.model.encode = timed_encode

    def run(self, audio: np.ndarray) -> RunOutput:
        self.clock.reset()
        o = OPTIONS
        segments, _ = self.model.transcribe(
            audio, language=o.language, task=o.task, beam_size=o.beam_size, best_of=1,
            temperature=[o.temperature], compression_ratio_threshold=None,
            log_prob_threshold=None, no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=o.condition_on_previous_text,
            without_timestamps=o.without_timestamps, word_timestamps=o.word_timestamps,
            vad_filter=o.vad, max_new_tokens=o.max_new_tokens)
        segments = list(segments)  # a generator: decoding happens here
        eot = self.model.hf_tokenizer.token_to_id("<|endoftext|>")
        n = sum(_count_text_tokens(s.tokens, eot) for s in segments)
        return RunOutput("".join(s.text for s in segments), n, self.clock.total, self.clock.count)


class MLXWhisper:
    """mlx-whisper `mlx_whisper.transcribe` (MLX) on our weights converted to its layout."""

    name = "mlx-whisper"

    def __init__(self, prepared: dict, dtype: str, threads: int):
        preload_blas()  # the same BLAS as ours
        import mlx.core as mx
        from mlx.utils import tree_flatten
        from mlx_whisper.transcribe import ModelHolder


        self.path, self.dtype = prepared["path"], dtype
        self.model = ModelHolder.get_model(self.path, getattr(mx, dtype))
        # its loader uses a non-strict update(); check the key set and shapes here instead
        stored = mx.load(f"{self.path}/weights.safetensors")
        # `alignment_heads` is an array attribute set from the model's table, not a weight
        params = {k: v for k, v in tree_flatten(self.model.parameters())
                  if k != "alignment_heads"}
        missing, unexpected = sorted(set(params) - set(stored)), sorted(set(stored) - set(params))
        wrong = [k for k in set(params) & set(stored) if params[k].shape != stored[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(f"mlx-whisper weights in {self.path} do not match its model: missing "
                             f"{missing[:8]}, unexpected {unexpected[:8]}, wrong shape {wrong[:8]}"
                             "; delete the folder to rebuild it")
        del stored
        self.clock = Clock()
        _wrap_mlx_encoder(self.model, self.clock)
        self.info = {"api": "mlx_whisper.transcribe", "model_dir": self.path}

    def run(self, audio: np.ndarray) -> RunOutput:
        import mlx_whisper
        from mlx_whisper.tokenizer import get_tokenizer

        self.clock.reset()
        o = OPTIONS
        r = mlx_whisper.transcribe(
            audio, path_or_hf_repo=self.path, verbose=None, temperature=o.temperature,
            compression_ratio_threshold=None, logprob_threshold=None,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=o.condition_on_previous_text,
            word_timestamps=o.word_timestamps, language=o.language, task=o.task,
            without_timestamps=o.without_timestamps, fp16=self.dtype == "float16",
            beam_size=None, sample_len=o.max_new_tokens)
        eot = get_tokenizer(self.model.is_multilingual,
                            num_languages=self.model.num_languages).eot
        n = sum(_count_text_tokens(s["tokens"], eot) for s in r["segments"])
        return RunOutput(r["text"], n, self.clock.total, self.clock.count)


ENGINE_CLASSES = {c.name: c for c in (Ours, OpenAIWhisper, Transformers, FasterWhisper, MLXWhisper)}


def whisper_bench(model: str, cache: Path = DEFAULT_CACHE, threads: int = 1) -> BenchSpec:
    """The BenchSpec of a Whisper model with installed real weights: one "transcribe" stage of
    the whole clip per engine; each call returns its facts (`RunOutput` and the engine's info).
    The parent puts the weights into each peer's layout (`prepare`, cached) before its process."""

    def build(engine: str, dtype: str, audio: np.ndarray) -> list[BenchStage]:
        if engine not in ENGINE_CLASSES:
            raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
        eng = ENGINE_CLASSES[engine](prepare(engine, model, dtype, cache), dtype, threads)

        def run() -> dict:
            return {**asdict(eng.run(audio)), "engine_info": eng.info}

        return [BenchStage("transcribe", run, audio.size / 16000)]

    return BenchSpec(engines=ENGINES, build=build, audio_seconds=30.0,
                     dtypes=("float32", "float16"), peer_dtypes=PEER_DTYPES,
                     prepare=lambda engine, dtype: prepare(engine, model, dtype, cache),
                     report="transcription")
