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

`WhisperRun` says where and on what: the CPU (default) or the GPU (ours on MLX's default device,
which must then be a GPU; openai-whisper and transformers on torch CUDA, float16 allowed), TF32
on or off, the real weights or seeded random weights of the same dimensions (the parity spec's
`random_state`, saved once by the reference adapter as a transformers folder), and which stages
run: "transcribe" (the whole clip), and on ours, openai-whisper and transformers also "encode"
(the clip's first 30-s window through the encoder, synchronised) and "decode" (`decode_tokens`
greedy steps on that window's encoder output, each token read back to the host).

Imports are lazy: a worker imports only its own engine's packages, so one engine's libraries
(and, for the MLX engines, the MKL or OpenBLAS that `mlx_impl` preloads) never load into
another's process.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.prepare import DEFAULT_CACHE, prepare, random_checkpoint
from benchmarks.worker import preload_blas
from parity.spec import BenchSpec, BenchStage

ENGINES = ("ours", "openai-whisper", "transformers", "faster-whisper", "mlx-whisper")
GPU_ENGINES = ("ours", "openai-whisper", "transformers")
# dtypes each peer can run here; torch and CTranslate2 run float32 on CPU (no fp16 CPU kernels)
PEER_DTYPES = {"mlx-whisper": ("float32", "float16"), "openai-whisper": ("float32",),
               "transformers": ("float32",), "faster-whisper": ("float32",)}
GPU_PEER_DTYPES = {"openai-whisper": ("float32", "float16"),
                   "transformers": ("float32", "float16")}
STAGES = ("encode", "decode", "transcribe")


@dataclass(frozen=True)
class WhisperRun:
    device: str = "cpu"  # "cpu", or "gpu" (torch CUDA for the peers; MLX's GPU for ours)
    tf32: bool = False  # TF32 matmuls and convs on CUDA (torch's flags; MLX_ENABLE_TF32=1)
    random_weights: bool = False  # seeded random weights of the model's dims (random_state)
    seed: int = 0  # of the random weights
    tokenizer_json: str | None = None  # random weights: default the installed package's
    stages: tuple[str, ...] = ("transcribe",)  # of STAGES, in this order
    decode_tokens: int = 100  # greedy steps of the "decode" stage
    quantize: int | None = None  # ours only: bits (8 or 4), mlx_impl.whisper's quantize policy
    group_size: int = 64  # of `quantize` (MLX affine)

    def __post_init__(self):
        if self.quantize is not None:
            from mlx_impl.quantization import check_settings

            check_settings(self.quantize, self.group_size)
        if self.device not in ("cpu", "gpu"):
            raise ValueError(f"device {self.device!r}: use 'cpu' or 'gpu'")
        bad = [x for x in self.stages if x not in STAGES]
        if bad or not self.stages:
            raise ValueError(f"stages {list(self.stages)}: choose from {STAGES}")
        if self.decode_tokens < 1:
            raise ValueError(f"decode_tokens must be >= 1, got {self.decode_tokens}")


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
    decoder_calls: int | None = None  # decoder forward calls (None: the engine hides them)


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


class _MLXProxy:
    """Calls an MLX module and counts the calls; with a clock, evaluates the output (MLX is
    lazy) and clocks the call."""

    def __init__(self, inner, clock: Clock | None = None):
        self._inner, self._clock, self.calls = inner, clock, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self._clock is None:
            return self._inner(*args, **kwargs)
        import mlx.core as mx

        self._clock.start()
        out = self._inner(*args, **kwargs)
        mx.eval(out)
        self._clock.stop()
        return out

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _wrap_mlx(model, clock: Clock) -> _MLXProxy:
    """Clock `model.encoder`; return the counting proxy now standing for `model.decoder`."""
    # mlx.nn.Module keeps child modules in its dict; an instance attribute of the same name is
    # found first by attribute lookup, so `model.encoder(...)` calls the wrapper.
    object.__setattr__(model, "encoder", _MLXProxy(model.encoder, clock))
    decoder = _MLXProxy(model.decoder)
    object.__setattr__(model, "decoder", decoder)
    return decoder


def _count_text_tokens(tokens, eot: int) -> int:
    return int(sum(1 for t in tokens if t < eot))


def _torch_setup(run: WhisperRun, threads: int) -> tuple[str, dict]:
    """(torch device, facts): threads, and on the GPU the TF32 flags of `run`."""
    import torch

    torch.set_num_threads(threads)
    info = {"torch_threads": torch.get_num_threads()}
    if run.device == "cpu":
        return "cpu", info
    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device; run on a CUDA machine or with device cpu")
    torch.backends.cuda.matmul.allow_tf32 = run.tf32
    torch.backends.cudnn.allow_tf32 = run.tf32
    return "cuda", info | {"cuda_device": torch.cuda.get_device_name(0),
                           "torch_cuda": torch.version.cuda, "allow_tf32": run.tf32}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _hook_clock(module, clock: Clock, device: str) -> None:
    """Clock a torch module's forward calls (synchronised on CUDA before the clock stops)."""
    def stop(*_):
        _sync(device)
        clock.stop()

    module.register_forward_pre_hook(lambda *_: clock.start())
    module.register_forward_hook(stop)


def _whisper_weights(prepared: dict):
    from weights.whisper import load

    return load(prepared["model"])


# ---------------------------------------------------------------------------------------------


class Ours:
    """mlx_impl.whisper.transcribe (MLX), loaded by mlx_impl.whisper's loader."""

    name = "ours"

    def __init__(self, prepared: dict, dtype: str, threads: int, run: WhisperRun = WhisperRun()):
        preload_blas()
        import mlx.core as mx

        from mlx_impl.whisper.transcribe import load

        if run.device == "gpu" and mx.default_device() != mx.gpu:
            raise RuntimeError(f"MLX runs on {mx.default_device()}, not a GPU; install mlx-cuda "
                               "(or run with device cpu)")
        self.model, self.tokenizer = load(prepared["model"], dtype=getattr(mx, dtype))
        self.clock = Clock()
        self.decoder = _wrap_mlx(self.model, self.clock)
        self.info = {"api": "mlx_impl.whisper.transcribe.transcribe",
                     "mlx_device": str(mx.default_device())}
        if run.quantize is not None:  # as the CLI's --quantize does, after loading
            from mlx_impl.whisper.checkpoint import quantize_whisper

            q = quantize_whisper(self.model, run.quantize, run.group_size)
            self.info["quantized"] = q.summary()

    def window(self, audio: np.ndarray):
        import mlx.core as mx

        from weights.whisper_audio import pad_or_trim
        from mlx_impl.layers.audio import log_mel_spectrogram

        return log_mel_spectrogram(mx.array(pad_or_trim(audio)), self.model.encoder.n_mels)[None]

    def encode(self, mel):
        return self.model.encoder(mel)  # evaluated by the clock wrapper

    def greedy(self, xa, n: int) -> list[int]:
        import mlx.core as mx

        sot = mx.array([self.tokenizer.sot_sequence_including_notimestamps], dtype=mx.int32)
        logits, cache = self.model.decoder(sot, xa)
        out = [int(mx.argmax(logits[0, -1]).item())]
        for _ in range(n - 1):
            logits, cache = self.model.decoder(mx.array([out[-1:]], dtype=mx.int32), None, cache)
            out.append(int(mx.argmax(logits[0, -1]).item()))
        return out

    def run(self, audio: np.ndarray) -> RunOutput:
        from mlx_impl.whisper.transcribe import transcribe

        self.clock.reset()
        self.decoder.calls = 0
        o = OPTIONS
        r = transcribe(self.model, audio, tokenizer=self.tokenizer, temperature=o.temperature,
                       compression_ratio_threshold=None, logprob_threshold=None,
                       no_speech_threshold=o.no_speech_threshold,
                       condition_on_previous_text=o.condition_on_previous_text,
                       word_timestamps=o.word_timestamps, language=o.language, task=o.task,
                       without_timestamps=o.without_timestamps, sample_len=o.max_new_tokens)
        n = sum(_count_text_tokens(s.tokens, self.tokenizer.eot) for s in r.segments)
        return RunOutput(r.text, n, self.clock.total, self.clock.count, self.decoder.calls)


class OpenAIWhisper:
    """openai-whisper `whisper.transcribe` (torch) on a model built from our weights. float16 the
    openai-whisper way: float32 parameters, float16 activations (its Linear/Conv1d cast the
    weights per call, its LayerNorm runs in float32; `model.half()` fails in its LayerNorm)."""

    name = "openai-whisper"

    def __init__(self, prepared: dict, dtype: str, threads: int, run: WhisperRun = WhisperRun()):
        import torch
        from whisper.model import MultiHeadAttention
        from whisper.tokenizer import get_tokenizer

        from reference.whisper import build_openai

        self.device, info = _torch_setup(run, threads)
        self.info = {"api": "whisper.transcribe", **info}
        w = _whisper_weights(prepared)
        self.model = build_openai(w.dims, w.state).to(self.device)
        del w
        self.fp16 = dtype == "float16"
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.clock, self.calls = Clock(), [0]
        _hook_clock(self.model.encoder, self.clock, self.device)
        self.model.decoder.register_forward_hook(
            lambda *_: self.calls.__setitem__(0, self.calls[0] + 1))
        self.info["attention"] = "sdpa" if MultiHeadAttention.use_sdpa else "explicit"
        self.tokenizer = get_tokenizer(self.model.is_multilingual,
                                       num_languages=self.model.num_languages, language="en",
                                       task="transcribe")
        self._torch = torch

    def window(self, audio: np.ndarray):
        import whisper

        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(self._torch.from_numpy(audio)),
                                          self.model.dims.n_mels)
        return mel[None].to(self.device, self.dtype)  # (1, n_mels, 3000)

    def encode(self, mel):
        with self._torch.inference_mode():
            return self.model.encoder(mel)  # synchronised by the clock hook

    def greedy(self, xa, n: int) -> list[int]:
        from whisper.decoding import PyTorchInference

        sot = list(self.tokenizer.sot_sequence_including_notimestamps)
        inference = PyTorchInference(self.model, len(sot))
        tokens = self._torch.tensor([sot], device=self.device)
        out = []
        try:
            with self._torch.inference_mode():
                for _ in range(n):
                    nxt = inference.logits(tokens, xa)[:, -1].argmax(-1)
                    out.append(int(nxt.item()))
                    tokens = self._torch.cat([tokens, nxt[:, None]], dim=-1)
        finally:
            inference.cleanup_caching()
        return out

    def run(self, audio: np.ndarray) -> RunOutput:
        import whisper

        self.clock.reset()
        self.calls[0] = 0
        o = OPTIONS
        r = whisper.transcribe(
            self.model, audio, verbose=None, temperature=o.temperature,
            compression_ratio_threshold=None, logprob_threshold=None,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=o.condition_on_previous_text,
            word_timestamps=o.word_timestamps, language=o.language, task=o.task,
            without_timestamps=o.without_timestamps, fp16=self.fp16, beam_size=None,
            sample_len=o.max_new_tokens)
        n = sum(_count_text_tokens(s["tokens"], self.tokenizer.eot) for s in r["segments"])
        return RunOutput(r["text"], n, self.clock.total, self.clock.count, self.calls[0])


class Transformers:
    """transformers `WhisperForConditionalGeneration.generate` (torch, SDPA attention)."""

    name = "transformers"

    def __init__(self, prepared: dict, dtype: str, threads: int, run: WhisperRun = WhisperRun()):
        import torch
        from transformers import GenerationConfig, WhisperFeatureExtractor
        from transformers.utils import logging as hf_logging
        from whisper.tokenizer import get_tokenizer

        from reference.whisper import build_transformers

        hf_logging.set_verbosity_error()  # its per-call deprecation notes would bury the progress
        self.device, info = _torch_setup(run, threads)
        self.info = {"api": "WhisperForConditionalGeneration.generate", **info}
        w = _whisper_weights(prepared)
        dims = dict(w.dims)
        self.dtype = torch.float16 if dtype == "float16" else torch.float32
        self.model = build_transformers(dims, w.state).to(self.device, self.dtype)
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
        self.clock, self.calls = Clock(), [0]
        _hook_clock(self.model.model.encoder, self.clock, self.device)
        self.model.model.decoder.register_forward_hook(
            lambda *_: self.calls.__setitem__(0, self.calls[0] + 1))
        self._torch = torch

    def window(self, audio: np.ndarray):
        feats = self.features(audio, sampling_rate=16000, return_tensors="pt").input_features
        return feats.to(self.device, self.dtype)  # (1, n_mels, 3000)

    def encode(self, feats):
        with self._torch.inference_mode():
            return self.model.model.encoder(feats).last_hidden_state

    def greedy(self, xa, n: int) -> list[int]:
        from transformers.modeling_outputs import BaseModelOutput

        enc = BaseModelOutput(last_hidden_state=xa)
        ids = self._torch.tensor([self.tokenizer.sot_sequence_including_notimestamps],
                                 device=self.device)
        past, out = None, []
        with self._torch.inference_mode():
            for _ in range(n):
                o = self.model(encoder_outputs=enc, decoder_input_ids=ids, past_key_values=past,
                               use_cache=True)
                past, ids = o.past_key_values, o.logits[:, -1].argmax(-1)[:, None]
                out.append(int(ids.item()))
        return out

    def run(self, audio: np.ndarray) -> RunOutput:
        self.clock.reset()
        self.calls[0] = 0
        o = OPTIONS
        feats = self.window(audio)
        lang = {"language": o.language, "task": o.task} if self.multilingual else {}
        with self._torch.inference_mode():
            out = self.model.generate(feats, return_timestamps=not o.without_timestamps, **lang)
        seq = out.sequences if hasattr(out, "sequences") else out
        ids = [int(t) for t in seq[0].tolist()]
        text_ids = [t for t in ids if t < self.tokenizer.eot]
        return RunOutput(self.tokenizer.decode(text_ids), len(text_ids), self.clock.total,
                         self.clock.count, self.calls[0])


def _cpu_only(name: str, run: WhisperRun) -> None:
    if run.device != "cpu" or run.stages != ("transcribe",):
        raise ValueError(f"{name} runs here on the CPU, stage transcribe only; the GPU engines "
                         f"and stages are {', '.join(GPU_ENGINES)}: {', '.join(STAGES)}")


class FasterWhisper:
    """faster-whisper `WhisperModel.transcribe` (CTranslate2, compute_type float32)."""

    name = "faster-whisper"

    def __init__(self, prepared: dict, dtype: str, threads: int, run: WhisperRun = WhisperRun()):
        from faster_whisper import WhisperModel

        _cpu_only(self.name, run)
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

    def __init__(self, prepared: dict, dtype: str, threads: int, run: WhisperRun = WhisperRun()):
        _cpu_only(self.name, run)
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
        self.decoder = _wrap_mlx(self.model, self.clock)
        self.info = {"api": "mlx_whisper.transcribe", "model_dir": self.path}

    def run(self, audio: np.ndarray) -> RunOutput:
        import mlx_whisper
        from mlx_whisper.tokenizer import get_tokenizer

        self.clock.reset()
        self.decoder.calls = 0
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
        return RunOutput(r["text"], n, self.clock.total, self.clock.count, self.decoder.calls)


ENGINE_CLASSES = {c.name: c for c in (Ours, OpenAIWhisper, Transformers, FasterWhisper, MLXWhisper)}


def whisper_bench(model: str, cache: Path = DEFAULT_CACHE, threads: int = 1,
                  run: WhisperRun = WhisperRun()) -> BenchSpec:
    """The BenchSpec of a Whisper model with installed real weights (`run.random_weights`:
    seeded random ones of its dimensions): `run.stages` per engine; "decode" and "transcribe"
    calls return their facts (tokens; `RunOutput` and the engine's info). The parent puts the
    weights into each engine's layout (`prepare`, cached) before the engine's process."""

    def prepared(engine: str, dtype: str) -> dict:
        if not run.random_weights:
            return prepare(engine, model, dtype, cache)
        if engine not in GPU_ENGINES:
            raise ValueError(f"{engine} has no layout of random weights here; random weights "
                             f"run on {', '.join(GPU_ENGINES)}")
        return {"model": str(random_checkpoint(model, run.seed, cache, run.tokenizer_json))}

    def build(engine: str, dtype: str, audio: np.ndarray) -> list[BenchStage]:
        if engine not in ENGINE_CLASSES:
            raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
        if run.quantize is not None and engine != "ours":
            raise ValueError(f"{engine}: `quantize` is ours' MLX quantization; a peer's own "
                             "quantized path is its own engine (faster-whisper int8: "
                             "benchmarks.quant)")
        eng = ENGINE_CLASSES[engine](prepared(engine, dtype), dtype, threads, run)
        stages = []
        if "encode" in run.stages or "decode" in run.stages:
            window = eng.window(audio)  # the first 30-s window, in the engine's layout
            xa = eng.encode(window)
            stages.append(BenchStage("encode", lambda: eng.encode(window), 30.0))

            def decode() -> dict:
                tokens = eng.greedy(xa, run.decode_tokens)
                return {"tokens": len(tokens), "tokens_head": tokens[:40]}

            stages.append(BenchStage("decode", decode, 30.0))
            stages = [s for s in stages if s.name in run.stages]
        if "transcribe" in run.stages:
            def transcribe() -> dict:
                return {**asdict(eng.run(audio)), "engine_info": eng.info}

            stages.append(BenchStage("transcribe", transcribe, audio.size / 16000))
        return stages

    gpu = run.device == "gpu"
    return BenchSpec(engines=GPU_ENGINES if gpu else ENGINES, build=build, audio_seconds=30.0,
                     dtypes=("float32", "float16"),
                     peer_dtypes=GPU_PEER_DTYPES if gpu else PEER_DTYPES,
                     prepare=prepared,
                     report="transcription" if "transcribe" in run.stages else "stages")
