"""Build the seeded TTS model folders (here in parity/: it joins mlx_impl's presets and the
reference builders, and reference/ never imports mlx_impl) the CLI resolves by id (`mlx_impl.tts.models`).

    python -m parity.tts_models build orpheus-test-tiny [--seed 0]

writes the preset's seeded random checkpoint with its reference builder (Orpheus:
`reference.orpheus.build_model`, the parity harness's folder) and points
`<cache>/mlx-audio-parity/tts/<id>` at it (a symlink replaced atomically). Offline: nothing is
downloaded. Prints the folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build(model_id: str, seed: int = 0) -> Path:
    from mlx_impl.tts.models import MODELS, cache_root

    if model_id not in MODELS:
        raise SystemExit(f"error: unknown TTS model {model_id!r}; known: {', '.join(MODELS)}")
    import importlib

    package = MODELS[model_id].package
    if package not in ("orpheus", "outetts", "csm"):
        raise SystemExit(f"error: no reference builder for {model_id!r} yet")
    PRESETS = importlib.import_module(f"mlx_impl.{package}.presets").PRESETS
    build_model = importlib.import_module(f"reference.{package}").build_model

    folder = build_model(PRESETS[model_id], seed)
    link = cache_root() / model_id
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.parent / f".{model_id}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder, target_is_directory=True)
    os.replace(tmp, link)
    return link


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parity.tts_models")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build a TTS model id's seeded weights (offline)")
    b.add_argument("model")
    b.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    link = build(args.model, args.seed)
    print(f"{link} -> {link.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
