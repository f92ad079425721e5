"""Command line: transcribe audio files with the MLX Whisper.

    python -m mlx_impl.whisper AUDIO... --model whisper-base [--language de] [--task translate]
        [--beam-size 5] [--best-of 5] [--temperature 0] [--word-timestamps]
        [--output-format txt|srt|vtt|tsv|json|all] [--output-dir DIR] [--dtype float32|float16]
        [--quantize 8|4 [--group-size 32|64|128]]

`--quantize` quantizes the loaded model's Linear layers with MLX's `nn.quantize` (affine) under
Whisper's policy (`mlx_impl.whisper.checkpoint.QUANT_KEEP`) and prints to stderr which layers were
quantized and which were kept. `--model` may also be an MLX community checkpoint folder
(config.json + weights.safetensors, as `python -m mlx_impl.whisper.checkpoint` writes).

The transcript goes to stdout in `--output-format` (txt by default); with `--output-dir` it goes
to `<DIR>/<audio name>.<ext>` instead. A progress bar over the audio goes to stderr.
User errors (missing or non-audio file, unknown model or language, word timestamps without
alignment heads, bad option values) print one line `error: ...` and exit with status 2.

Defaults follow upstream's CLI (openai-whisper 20250625 `whisper/transcribe.py:cli`): beam size 5
at temperature 0, best of 5 when sampling, fallback temperatures from --temperature up to 1.0 in
steps of 0.2. Pass `--beam-size none` for greedy decoding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

EXIT_USER_ERROR = 2


def _optional(parse, what: str):
    """An argparse `type`: `parse(text)`, or None for 'none'."""
    def convert(text: str):
        if text.lower() == "none":
            return None
        try:
            return parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or 'none', got {text!r}") from None

    return convert


_optional_int = _optional(int, "an integer")
_optional_float = _optional(float, "a number")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlx_impl.whisper",
                                description="Transcribe audio with Whisper on MLX.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("audio", nargs="+", help="audio file(s) to transcribe")
    p.add_argument("--model", default="whisper-base",
                   help="registered model name (whisper-base, whisper-tiny.en) or weights path")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="compute precision")
    p.add_argument("--quantize", type=int, choices=(4, 8), default=None,
                   help="quantize the Linear layers to this many bits (MLX affine)")
    p.add_argument("--group-size", type=int, choices=(32, 64, 128), default=64,
                   help="quantization group size (with --quantize, affine mode)")
    p.add_argument("--quantize-mode", default="affine",
                   choices=("affine", "mxfp8", "mxfp4", "nvfp4"),
                   help="MLX quantization mode (with --quantize); mxfp8 needs 8 bits, mxfp4 and "
                        "nvfp4 4 bits, and each its fixed group size")
    p.add_argument("--language", default=None,
                   help="language code or English name; detected when omitted (multilingual)")
    p.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    p.add_argument("--temperature", type=float, default=0.0, help="first sampling temperature")
    p.add_argument("--temperature-increment-on-fallback", type=_optional_float, default=0.2,
                   help="temperature added on each fallback; 'none' disables fallback")
    p.add_argument("--beam-size", type=_optional_int, default=5,
                   help="beams at temperature 0; 'none' for greedy decoding")
    p.add_argument("--best-of", type=_optional_int, default=5,
                   help="samples per window at temperature > 0")
    p.add_argument("--patience", type=float, default=None, help="beam search patience")
    p.add_argument("--length-penalty", type=float, default=None,
                   help="length penalty alpha in [0, 1]; default: divide by length")
    p.add_argument("--initial-prompt", default=None, help="text prompt for the first window")
    p.add_argument("--no-condition-on-previous-text", action="store_true",
                   help="do not feed each window's text as the next window's prompt")
    p.add_argument("--compression-ratio-threshold", type=_optional_float, default=2.4)
    p.add_argument("--logprob-threshold", type=_optional_float, default=-1.0)
    p.add_argument("--no-speech-threshold", type=_optional_float, default=0.6)
    p.add_argument("--word-timestamps", action="store_true",
                   help="word-level timestamps (needs the model's alignment heads)")
    p.add_argument("--hallucination-silence-threshold", type=_optional_float, default=None,
                   help="with --word-timestamps: skip silences longer than this (s) around "
                        "likely hallucinations")
    p.add_argument("--clip-timestamps", default="0",
                   help="comma-separated start,end,... seconds of the parts to transcribe")
    p.add_argument("--output-format", "-f", default="txt",
                   choices=["txt", "srt", "vtt", "tsv", "json", "all"])
    p.add_argument("--output-dir", "-o", default=None,
                   help="write <name>.<ext> files here instead of printing to stdout")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling RNG")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    # cheap checks before the model loads
    import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx on Linux)
    from mlx_impl.whisper.tokenizer import resolve_language

    try:
        language = resolve_language(args.language) if args.language else None
    except ValueError as e:
        _error(str(e))
        return EXIT_USER_ERROR
    missing = [a for a in args.audio if not Path(a).is_file()]
    if missing:
        _error(f"audio file not found: {', '.join(missing)}")
        return EXIT_USER_ERROR
    if args.output_format == "all" and args.output_dir is None:
        _error("--output-format all writes several files; pass --output-dir")
        return EXIT_USER_ERROR
    if args.output_dir is not None and not Path(args.output_dir).is_dir():
        _error(f"output folder does not exist: {args.output_dir}; create it first")
        return EXIT_USER_ERROR

    import mlx.core as mx

    from mlx_impl.whisper import writers
    from mlx_impl.whisper.alignment import check_alignment_heads
    from mlx_impl.whisper.transcribe import WhisperSTT

    if args.temperature_increment_on_fallback:
        temperature = tuple(np.arange(args.temperature, 1.0 + 1e-6,
                                      args.temperature_increment_on_fallback).tolist())
    else:
        temperature = args.temperature
    options = {
        "temperature": temperature, "language": language, "task": args.task,
        "beam_size": args.beam_size, "best_of": args.best_of, "patience": args.patience,
        "length_penalty": args.length_penalty, "initial_prompt": args.initial_prompt,
        "condition_on_previous_text": not args.no_condition_on_previous_text,
        "compression_ratio_threshold": args.compression_ratio_threshold,
        "logprob_threshold": args.logprob_threshold, "no_speech_threshold": args.no_speech_threshold,
        "word_timestamps": args.word_timestamps,
        "hallucination_silence_threshold": args.hallucination_silence_threshold,
        "clip_timestamps": args.clip_timestamps, "seed": args.seed, "progress": not args.no_progress}

    try:
        stt = WhisperSTT.load(args.model, dtype=getattr(mx, args.dtype))
        if args.quantize is not None:
            from mlx_impl.whisper.checkpoint import quantization_of, quantize_whisper

            if quantization_of(stt.model) is not None:
                raise ValueError(f"{args.model} is already quantized "
                                 f"({quantization_of(stt.model)}); drop --quantize")
            from mlx_impl.quantization import MODES

            fixed = MODES[args.quantize_mode]
            group_size = args.group_size if fixed is None else fixed[1]
            print(quantize_whisper(stt.model, args.quantize, group_size,
                                   args.quantize_mode).summary(), file=sys.stderr)
        if args.word_timestamps:
            check_alignment_heads(stt.model)
    except (ValueError, FileNotFoundError) as e:
        _error(str(e))
        return EXIT_USER_ERROR

    status = 0
    for path in args.audio:
        try:
            result = stt.transcribe(path, **options)
        except (ValueError, FileNotFoundError) as e:
            _error(f"{path}: {e}")
            status = EXIT_USER_ERROR
            continue
        if args.output_dir is not None:
            for out in writers.write_result(result, path, args.output_dir, args.output_format):
                print(f"wrote {out}", file=sys.stderr)
        else:
            if len(args.audio) > 1:
                print(f"==> {path} <==")
            sys.stdout.write(writers.render(result, args.output_format))
            sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
