"""CLI: `python -m benchmarks run MODEL [--repeats N] [--engines a,b] [--dtype float32]`.

One runner (benchmarks.runner) for every model: a Whisper model against its four peers
(openai-whisper, transformers, faster-whisper, mlx-whisper), every other model with a BenchSpec
against its torch reference, per stage (encode/decode/vocode/tokenize/transcribe).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks.engines import ENGINES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="speed and memory of a model against peer engines")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="benchmark MODEL on every engine (one fresh process each)")
    r.add_argument("model", help="registered model name, e.g. whisper-base, whisper-tiny.en")
    r.add_argument("--repeats", type=int, default=5, help="timed runs after the warm-up (5)")
    r.add_argument("--engines", default=None,
                   help=f"comma-separated subset of the model's engines (Whisper: "
                        f"{','.join(ENGINES)}; others: their BenchSpec's; default all)")
    r.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                   help="ours' dtype; peers that cannot run it are an error (Whisper) or run "
                        "float32 (torch references)")
    r.add_argument("--device", default="cpu", choices=("cpu", "gpu"),
                   help="cpu, or gpu (MLX's GPU against torch CUDA) for the models whose "
                        "benchmark lists it (codecs and vocoders); Whisper's GPU run is "
                        "benchmarks.gpu")
    r.add_argument("--threads", type=int, default=None, help="threads per engine (all cores)")
    r.add_argument("--cache-dir", type=Path, default=None,
                   help="where converted peer weights go (~/.cache/mlx-audio-parity)")
    r.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine (1800)")
    r.add_argument("--out", type=Path, default=None, help="report folder (reports/bench)")
    r.add_argument("--note", default=None,
                   help="a sentence the report carries (why this run's settings, e.g. --threads)")
    r.add_argument("--max-tokens", type=int, default=None,
                   help="TTS models: generated tokens per call (benchmarks.tts.MAX_TOKENS)")
    args = p.parse_args(argv)

    from benchmarks import runner
    from benchmarks.prepare import DEFAULT_CACHE

    engines = None if args.engines is None else [e.strip() for e in args.engines.split(",")
                                                 if e.strip()]
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in
                                                 (argv if argv is not None else sys.argv[1:]))
    try:
        options = None if args.max_tokens is None else {"max_tokens": args.max_tokens}
        rep = runner.run(args.model, repeats=args.repeats, dtype=args.dtype,
                         threads=args.threads, engines=engines,
                         cache=args.cache_dir or DEFAULT_CACHE, timeout_s=args.timeout,
                         command=command, options=options, device=args.device)
        if args.note:
            rep["note"] = args.note
    except (KeyError, ValueError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    js, md = runner.write(rep, args.out or runner.REPORTS)
    print()
    what = ("TTS" if rep["kind"] == "speech" else f"{rep['clip']['duration_s']:.0f} s clip")
    print(f"{rep['model']} ({rep['dtype']}), {what}, "
          f"{rep['threads']} threads, median [min-max] of {rep['repeats']} runs; "
          f"machine load {rep['machine']['loadavg_1_5_15'][0]:.2f}")
    print(runner.format_table(*runner.report_table(rep)))
    for line in runner.headline(rep["summaries"], rep["ours"]):
        print(line)
    print(f"wrote {md} and {js}")
    return 1 if rep["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
