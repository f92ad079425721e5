"""Command line: `python -m mlx_impl.server serve [--host H] [--port P] [options]`.

Logs go to stderr: start-up, model loads and unloads, and one line per request
(`POST /v1/audio/transcriptions 200 model=whisper-base wait=0.000s run=1.234s total=1.250s
bytes=95 client=127.0.0.1`). Bad options print `error: ...` and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

EXIT_USER_ERROR = 2


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, target = v.partition("=")
        if not sep or not name or not target:
            raise ValueError(f"{what} takes NAME=VALUE, got {v!r}")
        out[name] = target
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlx_impl.server",
                                description="OpenAI-compatible audio API over the MLX models.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP server",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every "
                   "interface; set --api-key then)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--api-key", default=os.environ.get("MLX_AUDIO_API_KEY"),
                   help="require `Authorization: Bearer KEY` (default: $MLX_AUDIO_API_KEY; "
                        "none: no key)")
    s.add_argument("--cors-origin", action="append", default=[],
                   help="allow browser requests from this origin (repeatable; default: CORS off)")
    s.add_argument("--max-upload-mb", type=float, default=25.0, help="upload size limit")
    s.add_argument("--max-queue", type=int, default=64,
                   help="requests waiting for the inference worker before 503")
    s.add_argument("--idle-ttl", type=float, default=600.0,
                   help="seconds a model may stay unused before it is unloaded")
    s.add_argument("--memory-budget-gb", type=float, default=8.0,
                   help="parameter bytes of the models held; least recently used out first")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    s.add_argument("--stt-model", action="append", default=[], metavar="NAME=FOLDER",
                   help="serve a Parakeet/Wav2Vec2/Voxtral/Whisper checkpoint folder as NAME")
    s.add_argument("--alias", action="append", default=[], metavar="NAME=MODEL",
                   help="another id for a model (default: whisper-1=whisper-base)")
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import mlx_impl  # noqa: F401  (preloads the BLAS before mlx)
    import uvicorn

    from mlx_impl.server.app import ServerConfig, create_app

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.port < 0 or args.port > 65535:
            raise ValueError(f"--port must be in 0-65535, got {args.port}")
        if args.max_upload_mb <= 0 or args.idle_ttl <= 0 or args.memory_budget_gb <= 0:
            raise ValueError("--max-upload-mb, --idle-ttl and --memory-budget-gb must be > 0")
        aliases = {"whisper-1": "whisper-base", **_pairs(args.alias, "--alias")}
        config = ServerConfig(api_key=args.api_key or None,
                              cors_origins=tuple(args.cors_origin),
                              max_upload_bytes=int(args.max_upload_mb * 2**20),
                              max_queue=args.max_queue, idle_ttl=args.idle_ttl,
                              memory_budget=int(args.memory_budget_gb * 2**30), dtype=args.dtype,
                              stt_models=_pairs(args.stt_model, "--stt-model"), aliases=aliases)
        app = create_app(config)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("mlx_impl.server").warning(
            "listening on %s without an API key: anyone who can reach it can use it", args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
