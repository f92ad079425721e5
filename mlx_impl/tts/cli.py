"""Command line: speak text with a TTS model on MLX, write a WAV file.

    python -m mlx_impl.tts --model orpheus-test-tiny "Hello there" -o out.wav
        [--voice tara] [--seed 0] [--temperature T] [--top-p P] [--top-k K] [--min-p P]
        [--repetition-penalty R] [--cfg-scale S] [--max-tokens N] [--stream]
        [--dtype float32|float16]
        [--ref-audio CLIP.wav [--ref-text "what the clip says"] [--ref-whisper whisper-base]]
    python -m mlx_impl.tts --model dia-test-tiny "[S1] Hello. [S2] Hi! (laughs)" -o out.wav
        [--voice ref.wav --voice-text "[S1] what the clip says"]

Weights: `--model` is a model id (`mlx_impl.tts.models.MODELS`; its seeded weights are built
offline by `python -m parity.tts_models build <id>` into the cache, never downloaded) or the
path of a checkpoint folder. Sampling options left out take the model's defaults (Orpheus:
temperature 0.6, top-p 0.8, repetition penalty 1.3, 1200 tokens; Dia: cfg 3, temperature 1.3,
top-k 35, top-p 0.95, 3071 rows). The same seed gives the same
bytes. `--stream` writes the audio as frames are decoded, to a partial WAV beside the output
(`.<name>.*.partial`, a readable WAV of the audio so far) renamed to the output at the end;
otherwise the WAV is written atomically once synthesis ends. Either way the output path only
ever holds a complete file. Progress goes to stderr.
`--ref-audio` clones the voice of a reference clip, for the models that clone (their
`reference` needs and `clone(clip)`; `mlx_impl.tts.reference_audio`): the clip is checked
(readable, not silent, >= 16 kHz, within the model's length limits), resampled to the model's
codec rate, and its transcript is `--ref-text`, or our Whisper's (`--ref-whisper`, default
whisper-base) when left out. Bad input (empty or over-long text, a bad reference clip, an
unknown voice or model, options out of range, a model not built) prints one line `error: ...`
and exits with status 2.
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
    p.add_argument("--ref-audio", default=None, metavar="PATH",
                   help="reference clip of the voice to clone (models that clone: OuteTTS, "
                        "Dia, CSM, Marvis)")
    p.add_argument("--ref-text", default=None, metavar="TEXT",
                   help="what the reference clip says (default: transcribed by Whisper)")
    p.add_argument("--ref-whisper", default="whisper-base", metavar="MODEL",
                   help="Whisper model for the reference transcript (whisper-base, "
                        "whisper-tiny.en or a weights path)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling and codec noise")
    p.add_argument("--temperature", type=float, default=None, help="0: greedy")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None, help="0: off")
    p.add_argument("--min-p", type=float, default=None)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--cfg-scale", type=float, default=None,
                   help="classifier-free guidance scale (Dia; 1: off)")
    p.add_argument("--voice-text", default=None,
                   help="transcript of the --voice reference clip (Dia voice cloning)")
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
             "max_tokens": args.max_tokens, "cfg_scale": args.cfg_scale}
    names = {f.name for f in fields(defaults)}
    return replace(defaults, **{k: v for k, v in given.items() if v is not None and k in names})


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


def write_wav_stream(path: Path, chunks, sample_rate: int) -> int:
    """Write audio chunks ((N_i,) float32) as they come to a temporary WAV beside `path` (its
    header updated after each chunk, so the partial file is a readable WAV of the audio so far),
    then rename it to `path` atomically; on any error the partial file is removed and `path` is
    left as it was. Returns the bytes of audio written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    n_bytes = 0
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(wav_header(sample_rate, 0))
            for chunk in chunks:
                data = pcm16(chunk)
                f.write(data)
                n_bytes += len(data)
                f.seek(0)
                f.write(wav_header(sample_rate, n_bytes))
                f.seek(0, os.SEEK_END)
                f.flush()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n_bytes


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


def cloned_voice(tts, args):
    """The voice `tts.clone` makes of `--ref-audio` (checked, transcribed when needed)."""
    from mlx_impl.tts.reference_audio import load_reference

    if not hasattr(tts, "clone"):
        raise ValueError(f"{args.model} does not clone voices from a clip; drop --ref-audio "
                         "(use --voice), or use a model that clones (outetts-1.0-1b, dia-1.6b, "
                         "csm-1b, marvis-250m)")
    if not args.quiet:
        how = "given transcript" if args.ref_text is not None else f"{args.ref_whisper} transcript"
        print(f"reference clip {args.ref_audio} ({how})", file=sys.stderr, flush=True)
    clip = load_reference(args.ref_audio, args.ref_text, whisper=args.ref_whisper,
                          **tts.reference.kwargs())
    if not args.quiet and clip.text_from != "given":
        print(f"reference transcript ({clip.text_from}): {clip.text}", file=sys.stderr, flush=True)
    return tts.clone(clip)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mlx_impl.loading import LoadError
    from mlx_impl.tts.models import load

    voice = None if (args.voice or "").lower() == "none" else args.voice
    try:
        # checks that need no model first, so bad input fails before a load
        if not args.text.strip():
            raise ValueError("text is empty; pass the words to speak")
        if args.ref_text is not None and args.ref_audio is None:
            raise ValueError("--ref-text describes a reference clip; pass --ref-audio PATH too")
        if args.ref_audio is not None and args.voice is not None:
            raise ValueError("pass either --voice or --ref-audio (a cloned voice), not both")
        tts = load(args.model, args.dtype)
        options = options_from(args, tts.defaults)
        if args.voice is None:
            voice = tts.default_voice
        # capabilities a model declares (class attributes), so an option it would ignore is
        # an error instead
        if args.cfg_scale is not None and not getattr(tts, "uses_cfg", False):
            raise ValueError(f"--cfg-scale: {args.model} has no classifier-free guidance")
        extra = {}
        if args.voice_text is not None:
            if not getattr(tts, "takes_voice_text", False):
                raise ValueError(f"--voice-text is for voice cloning from a clip with its "
                                 f"transcript (Dia); {args.model} does not take it")
            extra["voice_text"] = args.voice_text
        if args.ref_audio is not None:
            voice = cloned_voice(tts, args)
        tts.check(args.text, voice, options, **extra)  # text, voice, length, before generation
        if args.stream and not hasattr(tts, "stream"):
            raise ValueError(f"--stream is not implemented for {args.model}; drop --stream")
    except (ValueError, LoadError) as e:
        return _error(str(e))
    out = Path(args.output)
    progress = Progress(args.quiet, options.max_tokens, getattr(tts, "tokens_per_frame", 7))
    t0 = time.perf_counter()
    if args.stream:
        chunks = tts.stream(args.text, voice, options=options, seed=args.seed, on_token=progress,
                            **extra)
        n_bytes = write_wav_stream(out, chunks, tts.sample_rate)
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
