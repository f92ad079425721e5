"""GPU benchmark: our Whisper on MLX-CUDA against openai-whisper and transformers on torch CUDA.

Run on a CUDA machine: `python3 -m benchmarks.gpu --out reports/bench/gpu.json`. The parent starts
one fresh worker process per (engine, precision), in this order, so no engine warms another's
caches or allocator:

    ours fp16, openai-whisper fp16, transformers fp16, the same for fp32, then for tf32.

Precisions: `fp16` is float16 weights and activations (openai-whisper: `model.half()`, the faster
of its two fp16 set-ups; transformers: `model.half()`). `fp32` is full float32 matmuls everywhere
(MLX: `MLX_ENABLE_TF32=0`; torch: `allow_tf32 = False` for matmuls and cuDNN convs). `tf32` is
float32 storage with TF32 matmuls and convs (MLX's default on CUDA; torch with both TF32 flags on).

Weights: seeded random weights of the whisper-base dimensions (`random_state`, numpy
`default_rng(seed)`), the same bits in every worker: the real base checkpoint (145 MB of fp16) does
not fit the transfer to the device machine next to the MLX-CUDA wheel. Timings do not depend on
the weight values, except through how many tokens a whole-clip transcription decodes; that count
is recorded for every engine.

What each worker measures (times in ms; median and spread of the repeats, `benchmarks.stats`):
- encoder: one 30-s window, mel (1, 3000, 80) of seeded random values, through the encoder, with a
  device barrier (`mx.eval` / `torch.cuda.synchronize`) before the clock stops.
- decode: a greedy loop of exactly `--tokens` steps on the encoder output: step 0 feeds the 4-token
  start sequence (and computes the cross-attention keys/values), every later step the previous
  token through the engine's KV cache; each step takes the argmax and reads it back to the host, as
  a real decoder must to test for end-of-text. `per_token_ms` = loop time / tokens. Ours also runs
  `async`: step k+1 is queued (`mx.async_eval`) before step k's token is read, and `build_ms` is the
  host time to build one step's graph without evaluating it (how sync-bound the loop is).
  transformers also runs `model.generate(min_new_tokens = max_new_tokens = tokens)`.
- transcribe: the 30-s English clip of `benchmarks.clips.english_clip` through each engine's whole
  transcription with temperature 0 only (no fallback: with random weights, sampling at a higher
  temperature would draw different random tokens on each engine), language "en". Ours:
  `mlx_impl.whisper.transcribe.transcribe`; openai-whisper: `whisper.transcribe`; transformers:
  `WhisperFeatureExtractor` + `generate` of exactly as many new tokens as ours decoded for the same
  precision (one window; transformers' short-form path does no seeking).

Each section that fails records its error and the run exits 1; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from benchmarks.machine import portable, portable_path
from benchmarks.stats import spread_str, summarize

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("ours", "openai-whisper", "transformers")
PRECISIONS = ("fp16", "fp32", "tf32")
# whisper-base (openai-whisper `_MODELS["base"]`, ModelDimensions)
BASE_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8,
             "n_audio_layer": 6, "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512,
             "n_text_head": 8, "n_text_layer": 6}
# whisper-tiny, for quick dry runs of this script (--dims tiny)
TINY_DIMS = dict(BASE_DIMS, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                 n_text_state=384, n_text_head=6, n_text_layer=4)
DIMS = {"base": BASE_DIMS, "tiny": TINY_DIMS}
# <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|> of the multilingual vocabulary
SOT_EN = (50258, 50259, 50359, 50363)
EOT, TRANSCRIBE, TRANSLATE, NO_TIMESTAMPS = 50257, 50359, 50358, 50363
WEIGHT_STD = 0.02  # GPT-2-style init: keeps activations and fp16 logits well inside range


# ---------------------------------------------------------------------------------------------
# Inputs shared by every worker


def random_state(dims: dict, seed: int) -> dict[str, np.ndarray]:
    """Canonical (openai-whisper layout) float32 state of the given dims, seeded.

    Weights and biases ~ N(0, 0.02); layer-norm gains 1 + N(0, 0.02); the encoder positions are
    the sinusoid table (the converters check it).
    """
    from mlx_impl.layers.positions import sinusoids  # numpy only: no mlx import
    from weights.whisper import expected_shapes

    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in sorted(expected_shapes(dims).items()):
        if name == "encoder.positional_embedding":
            state[name] = sinusoids(*shape)
            continue
        x = rng.standard_normal(shape, dtype=np.float32) * np.float32(WEIGHT_STD)
        if name.endswith(("_ln.weight", "ln_post.weight", "decoder.ln.weight")):
            x += np.float32(1.0)
        state[name] = x
    return state


def random_mel(dims: dict, seed: int) -> np.ndarray:
    """(n_frames, n_mels) float32 in the range of a Whisper log-mel (about [-1, 1.5])."""
    rng = np.random.default_rng(seed + 1)
    return (rng.standard_normal((2 * dims["n_audio_ctx"], dims["n_mels"]), dtype=np.float32)
            * np.float32(0.5))


def _time(fn, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return summarize(times)


def _section(result: dict, name: str, fn) -> None:
    """result[name] = fn(), or result['errors'][name] = the traceback."""
    try:
        result[name] = fn()
    except Exception:  # noqa: BLE001  (recorded, shown in the report; the run exits 1)
        result.setdefault("errors", {})[name] = traceback.format_exc(limit=6)


# ---------------------------------------------------------------------------------------------
# Ours: MLX (CUDA on the device machine; whatever mx.default_device() is)


def worker_ours(args, dims, state, mel_np, clip) -> dict:
    import mlx.core as mx

    import mlx_impl  # noqa: F401  (preloads OpenBLAS where present; harmless on CUDA)
    from mlx_impl.whisper.load import from_state

    dtype = mx.float16 if args.precision == "fp16" else mx.float32
    dev = mx.default_device()
    info = {"mlx_default_device": str(dev), "mlx_version": mx.__version__,
            "MLX_ENABLE_TF32": os.environ.get("MLX_ENABLE_TF32")}
    try:
        info["mlx_cuda_available"] = bool(mx.cuda.is_available())
    except AttributeError:
        info["mlx_cuda_available"] = None
    try:
        info["mlx_device_info"] = {k: (v if isinstance(v, (int, float, str)) else str(v))
                                   for k, v in mx.device_info().items()}
    except AttributeError:
        pass
    from mlx_impl.layers import activations

    info["activations"] = "cpu polynomial kernels" if activations._on_cpu() else "native mx ops"
    if dev != mx.gpu and not args.allow_cpu:
        raise RuntimeError(f"MLX runs on {dev}, not a GPU; install mlx-cuda (or pass --allow-cpu "
                           "for a CPU dry run)")
    result: dict = {"device": info}
    model = from_state(dims, state, dtype=dtype)
    mel = mx.array(mel_np)[None]  # (1, 3000, 80) channels-last

    def encode():
        mx.eval(model.encoder(mel))

    _section(result, "encoder", lambda: _time(encode, args.warmup, args.repeats))
    xa = model.encoder(mel)
    mx.eval(xa)
    result["encoder_out"] = _fingerprint(np.array(xa.astype(mx.float32)))
    n = args.tokens

    def decode_sync():
        logits, cache = model.decoder(mx.array([SOT_EN], dtype=mx.int32), xa)
        tok = int(mx.argmax(logits[0, -1]).item())
        out = [tok]
        for _ in range(n - 1):
            logits, cache = model.decoder(mx.array([[tok]], dtype=mx.int32), None, cache)
            tok = int(mx.argmax(logits[0, -1]).item())
            out.append(tok)
        return out

    def decode_async():
        logits, cache = model.decoder(mx.array([SOT_EN], dtype=mx.int32), xa)
        tok = mx.argmax(logits[:, -1], axis=-1)  # (1,) lazy
        mx.async_eval(tok)
        out = []
        for _ in range(n - 1):
            logits, cache = model.decoder(tok[:, None].astype(mx.int32), None, cache)
            nxt = mx.argmax(logits[:, -1], axis=-1)
            mx.async_eval(nxt)
            out.append(int(tok.item()))  # the previous step's token, while this one runs
            tok = nxt
        out.append(int(tok.item()))
        return out

    def build_only():
        """Host time to build one decode step's graph (offset ~50), nothing evaluated."""
        logits, cache = model.decoder(mx.array([SOT_EN], dtype=mx.int32), xa)
        tok = 0
        for _ in range(50):
            logits, cache = model.decoder(mx.array([[tok]], dtype=mx.int32), None, cache)
            tok = int(mx.argmax(logits[0, -1]).item())
        times = []
        for _ in range(20):
            offset = cache.offset
            t0 = time.perf_counter()
            logits, _ = model.decoder(mx.array([[tok]], dtype=mx.int32), None, cache)
            nxt = mx.argmax(logits[0, -1])
            times.append((time.perf_counter() - t0) * 1e3)
            for c in cache.self_attn:  # drop the unevaluated step again
                c.offset = offset
        mx.eval(nxt)
        return summarize(times)

    _section(result, "decode", lambda: _decode_stats(decode_sync, args))
    _section(result, "decode_async", lambda: _decode_stats(decode_async, args))
    _section(result, "decode_build_step", build_only)

    def whole_clip():
        from mlx_impl.whisper.tokenizer import tokenizer_for_model
        from mlx_impl.whisper.transcribe import transcribe

        tok = tokenizer_for_model(args.tokenizer_json, dims["n_vocab"])
        audio = clip.audio

        def run():
            return transcribe(model, audio, tokenizer=tok, language="en", temperature=0.0)

        counter = _CountCalls(model.decoder)
        model.decoder = counter  # untimed run: count decoder forward calls
        try:
            out = run()
        finally:
            model.decoder = counter.inner
        stats = _time(run, args.transcribe_warmup, args.transcribe_repeats)
        tokens = [t for s in out.segments for t in s.tokens]
        return {"ms": stats, "decoder_calls": counter.calls, "segment_tokens": len(tokens),
                "windows": len({s.seek for s in out.segments}), "text": out.text[:200],
                "tokens_head": tokens[:40]}

    _section(result, "transcribe", whole_clip)
    return result


class _CountCalls:
    """Callable proxy that counts calls (wraps a decoder for one untimed run)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *a, **k):
        self.calls += 1
        return self.inner(*a, **k)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _decode_stats(fn, args) -> dict:
    for _ in range(args.decode_warmup):
        tokens = fn()
    if len(tokens) != args.tokens:
        raise RuntimeError(f"decode loop produced {len(tokens)} tokens, expected {args.tokens}")
    stats = _time(fn, 0, args.decode_repeats)
    per_token = {k: (v / args.tokens if k != "n" else v) for k, v in stats.items()}
    return {"loop_ms": stats, "per_token_ms": per_token, "tokens": args.tokens,
            "tokens_head": tokens[:40]}


def _fingerprint(x: np.ndarray) -> dict:
    x = x.astype(np.float64)
    return {"shape": list(x.shape), "mean": float(x.mean()), "std": float(x.std()),
            "first": [float(v) for v in x.reshape(-1)[:6]]}


# ---------------------------------------------------------------------------------------------
# torch peers


def _torch_setup(precision: str, allow_cpu: bool):
    import torch

    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dtype = torch.float16 if precision == "fp16" else torch.float32
    if torch.cuda.is_available():
        device = "cuda"
    elif allow_cpu:
        device = "cpu"
    else:
        raise RuntimeError("torch sees no CUDA device; this benchmark runs on a CUDA machine "
                           "(--allow-cpu for a CPU dry run)")
    info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "device": device,
            "cuda_device": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn": torch.backends.cudnn.version()}
    return torch, dtype, device, info


def _torch_timer(torch, fn):
    def run():
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return out
    return run


def worker_openai(args, dims, state, mel_np, clip) -> dict:
    torch, dtype, device, info = _torch_setup(args.precision, args.allow_cpu)
    import whisper
    from whisper.decoding import PyTorchInference

    from reference.whisper import build_openai

    info["openai-whisper"] = whisper.__version__
    info["use_sdpa"] = whisper.model.MultiHeadAttention.use_sdpa
    result: dict = {"device": info}
    # fp16 the openai-whisper way: float32 parameters, float16 activations (its Linear/Conv1d cast
    # the weights per call, its LayerNorm runs in float32); `model.half()` fails in its LayerNorm.
    model = build_openai(dims, state).to(device)
    mel = torch.from_numpy(mel_np.T.copy())[None].to(device, dtype)  # (1, 80, 3000)
    n = args.tokens
    with torch.inference_mode():
        enc = _torch_timer(torch, lambda: model.encoder(mel))
        _section(result, "encoder", lambda: _time(enc, args.warmup, args.repeats))
        xa = model.encoder(mel)
        result["encoder_out"] = _fingerprint(xa.float().cpu().numpy())

        def decode_sync():
            inference = PyTorchInference(model, len(SOT_EN))
            tokens = torch.tensor([SOT_EN], device=device)
            out = []
            try:
                for _ in range(n):
                    logits = inference.logits(tokens, xa)[:, -1]
                    nxt = logits.argmax(-1)
                    out.append(int(nxt.item()))
                    tokens = torch.cat([tokens, nxt[:, None]], dim=-1)
            finally:
                inference.cleanup_caching()
            return out

        _section(result, "decode", lambda: _decode_stats(decode_sync, args))

        def whole_clip():
            audio = clip.audio
            fp16 = dtype == torch.float16

            def run():
                return whisper.transcribe(model, audio, language="en", temperature=0.0,
                                          fp16=fp16, verbose=None)

            calls = []
            hook = model.decoder.register_forward_hook(lambda *_: calls.append(1))
            try:
                out = run()
            finally:
                hook.remove()
            stats = _time(_torch_timer(torch, run), args.transcribe_warmup,
                          args.transcribe_repeats)
            tokens = [t for s in out["segments"] for t in s["tokens"]]
            return {"ms": stats, "decoder_calls": len(calls), "segment_tokens": len(tokens),
                    "windows": len({s["seek"] for s in out["segments"]}),
                    "text": out["text"][:200], "tokens_head": tokens[:40]}

        _section(result, "transcribe", whole_clip)
    return result


def _hf_model(torch, dims, state, dtype, device):
    """transformers WhisperForConditionalGeneration on the canonical state, default attention."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from reference.whisper import hf_name

    d = dims
    cfg = WhisperConfig(
        vocab_size=d["n_vocab"], num_mel_bins=d["n_mels"], d_model=d["n_audio_state"],
        encoder_layers=d["n_audio_layer"], encoder_attention_heads=d["n_audio_head"],
        decoder_layers=d["n_text_layer"], decoder_attention_heads=d["n_text_head"],
        encoder_ffn_dim=4 * d["n_audio_state"], decoder_ffn_dim=4 * d["n_text_state"],
        max_source_positions=d["n_audio_ctx"], max_target_positions=d["n_text_ctx"],
        activation_function="gelu", scale_embedding=False, dropout=0.0,
        tie_word_embeddings=True, decoder_start_token_id=SOT_EN[0], eos_token_id=EOT,
        pad_token_id=EOT, bos_token_id=EOT)
    model = WhisperForConditionalGeneration(cfg)
    hf = {hf_name(k): torch.from_numpy(v) for k, v in state.items()}
    hf["proj_out.weight"] = hf["model.decoder.embed_tokens.weight"]
    want = set(model.state_dict())
    if set(hf) != want:
        raise ValueError(f"transformers key mismatch: missing {sorted(want - set(hf))[:8]}, "
                         f"unexpected {sorted(set(hf) - want)[:8]}")
    model.load_state_dict(hf, strict=True)
    gc = model.generation_config
    gc.decoder_start_token_id = SOT_EN[0]
    gc.no_timestamps_token_id = NO_TIMESTAMPS
    gc.is_multilingual = True
    gc.lang_to_id = {"<|en|>": SOT_EN[1]}
    gc.task_to_id = {"transcribe": TRANSCRIBE, "translate": TRANSLATE}
    gc.begin_suppress_tokens = None
    gc.suppress_tokens = None
    return model.to(device, dtype).eval()


def worker_transformers(args, dims, state, mel_np, clip) -> dict:
    torch, dtype, device, info = _torch_setup(args.precision, args.allow_cpu)
    import transformers
    from transformers import WhisperFeatureExtractor
    from transformers.modeling_outputs import BaseModelOutput

    transformers.logging.set_verbosity_error()
    info["transformers"] = transformers.__version__
    result: dict = {"device": info}
    model = _hf_model(torch, dims, state, dtype, device)
    info["attn_implementation"] = model.config._attn_implementation
    mel = torch.from_numpy(mel_np.T.copy())[None].to(device, dtype)  # (1, 80, 3000)
    n = args.tokens
    sot = torch.tensor([SOT_EN], device=device)
    with torch.inference_mode():
        encoder = model.model.encoder
        enc = _torch_timer(torch, lambda: encoder(mel).last_hidden_state)
        _section(result, "encoder", lambda: _time(enc, args.warmup, args.repeats))
        xa = encoder(mel).last_hidden_state
        result["encoder_out"] = _fingerprint(xa.float().cpu().numpy())
        enc_out = BaseModelOutput(last_hidden_state=xa)

        def decode_sync():
            o = model(encoder_outputs=enc_out, decoder_input_ids=sot, use_cache=True)
            past = o.past_key_values
            nxt = o.logits[:, -1].argmax(-1)
            out = [int(nxt.item())]
            for _ in range(n - 1):
                o = model(encoder_outputs=enc_out, decoder_input_ids=nxt[:, None],
                          past_key_values=past, use_cache=True)
                past = o.past_key_values
                nxt = o.logits[:, -1].argmax(-1)
                out.append(int(nxt.item()))
            return out

        def decode_generate():
            seq = model.generate(encoder_outputs=enc_out, decoder_input_ids=sot,
                                 max_new_tokens=n, min_new_tokens=n, do_sample=False)
            new = seq[0, -n:] if seq.shape[-1] > n else seq[0]
            return [int(t) for t in new.tolist()]

        _section(result, "decode", lambda: _decode_stats(decode_sync, args))
        _section(result, "decode_generate", lambda: _decode_stats(decode_generate, args))

        def whole_clip():
            fe = WhisperFeatureExtractor(feature_size=dims["n_mels"])
            audio = clip.audio
            new_tokens = args.new_tokens

            def run():
                feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features
                feats = feats.to(device, dtype)
                return model.generate(feats, language="en", task="transcribe",
                                      max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                      do_sample=False)

            out = run()
            stats = _time(_torch_timer(torch, run), args.transcribe_warmup,
                          args.transcribe_repeats)
            return {"ms": stats, "decoder_calls": new_tokens, "segment_tokens": new_tokens,
                    "windows": 1, "generated_shape": list(out.shape),
                    "note": "feature extractor + generate, new tokens fixed to ours' count"}

        _section(result, "transcribe", whole_clip)
    return result


WORKERS = {"ours": worker_ours, "openai-whisper": worker_openai,
           "transformers": worker_transformers}


def run_worker(args) -> int:
    from benchmarks.clips import english_clip

    dims = dict(DIMS[args.dims])
    t0 = time.perf_counter()
    state = random_state(dims, args.seed)
    mel = random_mel(dims, args.seed)
    clip = english_clip(30.0)
    result = {"engine": args.worker, "precision": args.precision, "seed": args.seed,
              "weights": f"seeded random whisper-{args.dims} dims (numpy default_rng({args.seed}), "
                         f"N(0, {WEIGHT_STD}))", "clip": clip.describe(),
              "setup_s": None}
    try:
        result.update(WORKERS[args.worker](args, dims, state, mel, clip))
    except Exception:  # noqa: BLE001  (recorded, shown in the report; the run exits 1)
        result.setdefault("errors", {})["worker"] = traceback.format_exc(limit=8)
    result["setup_s"] = time.perf_counter() - t0
    _write_json(Path(args.out), result)
    return 0


# ---------------------------------------------------------------------------------------------
# Parent: one fresh process per (engine, precision), then the report


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:  # paths relative to the repository, never this machine's
        json.dump(portable(data), f, indent=1)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(portable_path(text))
    os.replace(tmp, path)


def machine_info() -> dict:
    from benchmarks.machine import machine_facts, versions

    info = {"machine": machine_facts(),
            "versions": versions(("mlx", "mlx-cuda-13", "numpy", "torch", "transformers",
                                  "openai-whisper", "tiktoken", "nvidia-cublas",
                                  "nvidia-cudnn-cu13", "nvidia-cuda-runtime"))}
    try:
        query = "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit"
        q = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30, check=True)
        info["nvidia_smi"] = q.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        info["nvidia_smi"] = f"unavailable: {e}"
    info["env"] = {k: os.environ.get(k) for k in ("CUDA_HOME", "MLX_PTX_CACHE_DIR",
                                                  "MLX_USE_CUDA_GRAPHS")}
    return info


def _worker_env(engine: str, precision: str) -> dict:
    env = dict(os.environ)
    if engine == "ours":
        # MLX on CUDA runs float32 matmuls as TF32 unless MLX_ENABLE_TF32=0 (default 1)
        env["MLX_ENABLE_TF32"] = "1" if precision == "tf32" else "0"
    return env


def run_all(args) -> int:
    t_start = time.perf_counter()
    report = {"benchmark": f"whisper-{args.dims} GPU: MLX-CUDA vs torch CUDA",
              "argv": sys.argv[1:], "dims": args.dims,
              "tokens": args.tokens, "seed": args.seed, **machine_info(), "runs": []}
    new_tokens: dict[str, int] = {}
    failed = False
    for precision in args.precisions:
        for engine in args.engines:
            left = args.deadline_s - (time.perf_counter() - t_start)
            entry = {"engine": engine, "precision": precision}
            if left < 30:
                entry["errors"] = {"worker": f"not run: {args.deadline_s} s deadline reached"}
                report["runs"].append(entry)
                failed = True
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "w.json"
                cmd = [sys.executable, "-m", "benchmarks.gpu", "--worker", engine,
                       "--precision", precision, "--out", str(out), "--seed", str(args.seed),
                       "--tokens", str(args.tokens), "--warmup", str(args.warmup),
                       "--repeats", str(args.repeats), "--decode-warmup",
                       str(args.decode_warmup), "--decode-repeats", str(args.decode_repeats),
                       "--transcribe-warmup", str(args.transcribe_warmup),
                       "--transcribe-repeats", str(args.transcribe_repeats),
                       "--tokenizer-json", str(args.tokenizer_json),
                       "--new-tokens", str(new_tokens.get(precision, args.tokens)),
                       "--dims", args.dims]
                if args.allow_cpu:
                    cmd.append("--allow-cpu")
                t0 = time.perf_counter()
                try:
                    p = subprocess.run(cmd, cwd=ROOT, env=_worker_env(engine, precision),
                                       capture_output=True, text=True, check=False,
                                       timeout=min(args.worker_timeout_s, left))
                    if out.exists():
                        entry = json.loads(out.read_text())
                    else:
                        entry["errors"] = {"worker": f"exit {p.returncode}: {p.stderr[-3000:]}"}
                except subprocess.TimeoutExpired:
                    entry["errors"] = {"worker": f"timed out after {min(args.worker_timeout_s, left):.0f} s"}
                entry["wall_s"] = time.perf_counter() - t0
            if engine == "ours" and "transcribe" in entry:
                new_tokens[precision] = max(1, min(entry["transcribe"]["decoder_calls"], 440))
            failed |= bool(entry.get("errors"))
            report["runs"].append(entry)
            _write_json(Path(args.out), report)  # partial results survive a killed run
            print(_line(entry), flush=True)
    report["total_s"] = time.perf_counter() - t_start
    report["token_agreement"] = _agreement(report["runs"])
    _write_json(Path(args.out), report)
    md = markdown(report)
    _write_text(Path(args.out).with_suffix(".md"), md)
    print(md)
    return 1 if failed else 0


def _agreement(runs: list[dict]) -> dict:
    """First index where each engine's greedy decode tokens differ from ours (same precision)."""
    out = {}
    for r in runs:
        if r["engine"] == "ours" or "decode" not in r:
            continue
        ours = next((o for o in runs if o["engine"] == "ours" and o["precision"] == r["precision"]
                     and "decode" in o), None)
        if ours is None:
            continue
        a, b = ours["decode"]["tokens_head"], r["decode"]["tokens_head"]
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        out[f"{r['engine']} {r['precision']}"] = (f"same first {min(len(a), len(b))} tokens"
                                                  if first is None else f"first differs at {first}")
    return out


def _ms(d: dict | None, key: str = "median") -> str:
    return "-" if d is None else spread_str(d, fmt="{:.2f}")


def _per_call(tr: dict) -> str:
    if not tr.get("ms") or not tr.get("decoder_calls"):
        return "-"
    return f"{tr['ms']['median'] / tr['decoder_calls']:.2f}"


def _line(r: dict) -> str:
    enc = r.get("encoder")
    dec = r.get("decode", {}).get("per_token_ms")
    tr = r.get("transcribe", {}).get("ms")
    err = "" if not r.get("errors") else " ERRORS: " + ", ".join(r["errors"])
    return (f"{r['engine']:15s} {r['precision']:5s} encoder {_ms(enc)} ms | decode "
            f"{_ms(dec)} ms/token | transcribe {_ms(tr)} ms{err}")


def markdown(report: dict) -> str:
    lines = [f"# {report['benchmark']}", "",
             f"- device: {report.get('nvidia_smi')}",
             f"- versions: {json.dumps(report.get('versions'))}",
             (f"- CPU: {report['machine'].get('cpu_model')}, "
              f"{report['machine'].get('logical_cores')} cores; "
              f"Python {report['machine'].get('python')}"),
             (f"- weights: seeded random whisper-{report['dims']} dims (seed {report['seed']}); "
              f"decode loop {report['tokens']} greedy tokens"),
             "", "Times in ms, median [min-max] of the repeats.", "",
             ("| engine | precision | encoder / 30-s window | decode per token (sync) | "
              "other decode | whole 30-s clip | decoder calls (clip) | clip ms / decoder call |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        other = []
        if "decode_async" in r:
            other.append("async " + _ms(r["decode_async"]["per_token_ms"]))
        if "decode_build_step" in r:
            other.append("graph build " + _ms(r["decode_build_step"]))
        if "decode_generate" in r:
            other.append("generate " + _ms(r["decode_generate"]["per_token_ms"]))
        tr = r.get("transcribe", {})
        lines.append(f"| {r['engine']} | {r['precision']} | {_ms(r.get('encoder'))} | "
                     f"{_ms(r.get('decode', {}).get('per_token_ms'))} | {'; '.join(other) or '-'} | "
                     f"{_ms(tr.get('ms'))} | {tr.get('decoder_calls', '-')} | "
                     f"{_per_call(tr)} |")
    devices = sorted({json.dumps(r["device"], sort_keys=True) for r in report["runs"]
                      if r.get("device")})
    lines += ["", "Per-worker device facts:", ""] + [f"- `{d}`" for d in devices]
    errs = [(r["engine"], r["precision"], k, v) for r in report["runs"]
            for k, v in (r.get("errors") or {}).items()]
    if errs:
        lines += ["", "## Errors", ""]
        for engine, precision, k, v in errs:
            lines += [f"- {engine} {precision} {k}:", "", "```", v.strip()[-1500:], "```"]
    lines += ["", "Greedy-token agreement with ours: "
              + json.dumps(report.get("token_agreement")), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON result (a .md table is written beside it)")
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dims", choices=sorted(DIMS), default="base",
                   help="model dimensions (tiny: quick dry runs)")
    p.add_argument("--tokens", type=int, default=100, help="greedy steps of the decode loop")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--decode-warmup", type=int, default=2)
    p.add_argument("--decode-repeats", type=int, default=5)
    # the untimed run that counts decoder calls is a warm-up already
    p.add_argument("--transcribe-warmup", type=int, default=0)
    p.add_argument("--transcribe-repeats", type=int, default=3)
    p.add_argument("--tokenizer-json", type=Path, default=None,
                   help="multilingual Whisper tokenizer.json (ours' transcription needs it); "
                        "default: the installed whisper-base weight package's")
    p.add_argument("--worker-timeout-s", type=float, default=180)
    p.add_argument("--deadline-s", type=float, default=500,
                   help="start no worker after this many seconds")
    p.add_argument("--allow-cpu", action="store_true",
                   help="let ours run on MLX's CPU device (dry runs without a GPU)")
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--precision", choices=PRECISIONS, help=argparse.SUPPRESS)
    p.add_argument("--new-tokens", type=int, default=100, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tokens < 1:
        p.error("--tokens must be >= 1")
    if args.tokenizer_json is None:
        from weights import whisper as ww

        reg = ww.REGISTERED["whisper-base"]
        args.tokenizer_json = ww._package_file(*reg.folder) / "tokenizer.json"
    if args.worker:
        return run_worker(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
