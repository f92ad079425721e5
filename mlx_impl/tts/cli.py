"""Command line: speak text with a TTS model on MLX, write a WAV file.

    python -m mlx_impl.tts --model orpheus-test-tiny "Hello there" -o out.wav
        [--voice tara] [--seed 0] [--temperature T] [--top-p P] [--top-k K] [--min-p P]
        [--repetition-penalty R] [--max-tokens N] [--stream] [--dtype float32|float16]
        [--context-audio CLIP --context-text TRANSCRIPT [--context-speaker N]]  (CSM/Marvis)

Weights: `--model` is a model id (`mlx_impl.tts.models.MODELS`; its seeded weights are built
offline by `python -m parity.tts_models build <id>` into the cache, never downloaded) or the
path of a checkpoint folder. Sampling options left out take the model's defaults (Orpheus:
temperature 0.6, top-p 0.8, repetition penalty 1.3, 1200 tokens). The same seed gives the same
bytes. `--stream` writes the audio as frames are decoded (the file's header is completed at
the end); otherwise the WAV is written atomically once synthesis ends. Progress goes to stderr.
Bad input (empty or over-long text, an unknown voice or model, options out of range, a model
not built) prints one line `error: ...` and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    from mlx_impl.tts.models import MODELS

    p = argparse.ArgumentParser(prog="python -m mlx_impl.tts",
                                description="Text to speech on MLX; writes a 16-bit PCM WAV.")
    p.add_argument("text", help="the text to speak")
    p.add_argument("-o", "--output", required=True, help="WAV file to write")
    p.add_argument("--model", default="orpheus-test-tiny",
                   help=f"model id ({', '.join(MODELS)}) or checkpoint folder")
    p.add_argument("--voice", default=None, help="voice name (Orpheus: tara, leah, jess, leo, "
                   "dan, mia, zac, zoe; default tara; OuteTTS: a speaker profile .json, default none); "
                   "'none' for no voice prefix")
    p.add_argument("--context-audio", default=None, help="CSM/Marvis voice cloning: a clip "
                   "of a previous turn (its transcript in --context-text)")
    p.add_argument("--context-text", default=None, help="the transcript of --context-audio "
                   "(default: transcribed by our Whisper, --whisper-model)")
    p.add_argument("--whisper-model", default="whisper-base", help="Whisper model id or folder "
                   "that transcribes --context-audio when --context-text is not given")
    p.add_argument("--context-speaker", default=None, help="speaker id of the context turn "
                   "(default: --voice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling and codec noise")
    p.add_argument("--temperature", type=float, default=None, help="0: greedy")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None, help="0: off")
    p.add_argument("--min-p", type=float, default=None)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--max-tokens", type=int, default=None, help="generated token limit")
    p.add_argument("--stream", action="store_true", help="write audio as it is generated")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def options_from(args, defaults):
    """The model's default `SamplingOptions` with the options given on the command line."""
    given = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
             "min_p": args.min_p, "repetition_penalty": args.repetition_penalty,
             "max_tokens": args.max_tokens}
    names = {f.name for f in fields(defaults)}
    return replace(defaults, **{k: v for k, v in given.items() if v is not None and k in names})


def context_from(args, tts, voice) -> dict:
    """{"context": [one turn]} from --context-audio/--context-text (CSM, Marvis), else {}."""
    if args.context_audio is None and args.context_text is None:
        return {}
    if args.context_audio is None:
        raise ValueError("--context-text needs --context-audio (the clip it transcribes)")
    if not hasattr(tts, "encode_context"):
        raise ValueError(f"--context-audio is not supported by {args.model}; drop it")
    from mlx_impl.csm.tts import ContextTurn, transcript

    speaker = voice if args.context_speaker is None else args.context_speaker
    text = args.context_text
    if text is None:
        tts.encode_context(ContextTurn("", 0, args.context_audio))  # a bad clip fails first
        text = transcript(args.context_audio, args.whisper_model)
        if not args.quiet:
            print(f"context transcript ({args.whisper_model}): {text!r}", file=sys.stderr)
    return {"context": [ContextTurn(text, speaker, args.context_audio)]}


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_header(sample_rate: int, n_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
            + b"data" + struct.pack("<I", n_bytes))


def write_wav_atomically(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    data = pcm16(audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(wav_header(sample_rate, len(data)) + data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Progress:
    def __init__(self, quiet: bool, limit: int, per_frame: int = 7):
        self.quiet, self.limit, self.start = quiet, limit, time.perf_counter()
        self.per_frame = per_frame  # generated tokens per codec frame (Orpheus 7, OuteTTS 2)

    def __call__(self, step: int, token: int) -> None:
        if self.quiet or (step + 1) % self.per_frame:
            return
        rate = (step + 1) / max(time.perf_counter() - self.start, 1e-9)
        print(f"\r{step + 1}/{self.limit} tokens ({(step + 1) // self.per_frame} frames), {rate:.1f} "
              "tokens/s", end="", file=sys.stderr, flush=True)

    def done(self, line: str) -> None:
        if not self.quiet:
            print(f"\r{line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mlx_impl.loading import LoadError
    from mlx_impl.tts.models import load

    voice = None if (args.voice or "").lower() == "none" else args.voice
    try:
        # checks that need no model first, so bad input fails before a load
        if not args.text.strip():
            raise ValueError("text is empty; pass the words to speak")
        tts = load(args.model, args.dtype)
        options = options_from(args, tts.defaults)
        if args.voice is None:
            voice = tts.default_voice
        extra = context_from(args, tts, voice)
        tts.check(args.text, voice, options, **extra)  # text, voice, length, before generating
        if args.stream and not hasattr(tts, "stream"):
            raise ValueError(f"--stream is not implemented for {args.model}; drop --stream")
    except (ValueError, LoadError) as e:
        return _error(str(e))
    out = Path(args.output)
    progress = Progress(args.quiet, options.max_tokens, getattr(tts, "tokens_per_frame", 7))
    t0 = time.perf_counter()
    if args.stream:
        n_bytes = 0
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            f.write(wav_header(tts.sample_rate, 0))
            for chunk in tts.stream(args.text, voice, options=options, seed=args.seed,
                                    on_token=progress, **extra):
                data = pcm16(chunk)
                f.write(data)
                f.flush()
                n_bytes += len(data)
            f.seek(0)
            f.write(wav_header(tts.sample_rate, n_bytes))
        seconds = n_bytes / 2 / tts.sample_rate
        stop = "streamed"
    else:
        speech = tts.synthesize(args.text, voice, options=options, seed=args.seed,
                                on_token=progress, **extra)
        write_wav_atomically(out, speech.audio, speech.sample_rate)
        seconds, stop = speech.seconds, speech.meta["stop"]
    progress.done(f"wrote {out} ({seconds:.2f} s of audio at {tts.sample_rate} Hz, stop: {stop},"
                  f" {time.perf_counter() - t0:.1f} s)")
    return 0
