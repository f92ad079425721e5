"""Put the same Whisper weights into each peer engine's on-disk layout (runs in the parent).

Every engine runs the weights of `weights.whisper.load(model)` (the CTranslate2 float16
checkpoint shipped in the weight packages):
- ours, openai-whisper, transformers: the workers load the canonical state themselves.
- faster-whisper: CTranslate2 reads the same `model.bin`; a model shipped in parts is joined into
  `<cache>/<model>/ct2/` with its config.json, tokenizer.json and vocabulary file.
- mlx-whisper: `<cache>/<model>/mlx-whisper-<dtype>/` with `config.json` (ModelDimensions) and
  `weights.safetensors` in its layout (mlx_whisper 0.4.3 `load_models.py`): openai key names but
  `mlp.0`/`mlp.2` -> `mlp1`/`mlp2`, conv kernels channels-last (out, k, in), no
  `encoder.positional_embedding` (it computes the sinusoids), stored in the run dtype because
  its loader does not cast.
A cache entry records its source files (path, size, mtime) and is rebuilt when they change;
entries are built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from weights.mlx_whisper import mlx_whisper_layout  # noqa: F401  (also this module's API)

DEFAULT_CACHE = Path.home() / ".cache" / "mlx-audio-parity"
STAMP = "source.json"


def _registered(model: str):
    from weights import whisper as ww

    if model not in ww.REGISTERED:
        raise ValueError(f"unknown model {model!r}; registered: {', '.join(sorted(ww.REGISTERED))}")
    reg = ww.REGISTERED[model]
    parts = [ww._package_file(pkg, rel) for pkg, rel in reg.parts]
    folder = ww._package_file(*reg.folder)
    return parts, folder


def _source_stamp(paths: list[Path], extra: dict) -> dict:
    return {"files": [{"path": str(p), "size": p.stat().st_size, "mtime": p.stat().st_mtime}
                      for p in paths], **extra}


def _cached(dest: Path, stamp: dict, build) -> Path:
    """`dest` if its stamp equals `stamp`, else build it into a temp dir and rename into place."""
    stamp_file = dest / STAMP
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        build(tmp)
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def ct2_dir(model: str, cache: Path = DEFAULT_CACHE) -> Path:
    """A CTranslate2 model folder (model.bin, config.json, tokenizer.json, vocabulary) for `model`."""
    parts, folder = _registered(model)
    if len(parts) == 1 and parts[0].parent == folder and parts[0].name == "model.bin":
        return folder
    companions = [p for p in sorted(folder.iterdir())
                  if p.name in ("config.json", "tokenizer.json", "preprocessor_config.json")
                  or p.name.startswith("vocabulary.")]
    if not any(p.name == "tokenizer.json" for p in companions):
        raise FileNotFoundError(f"{folder} has no tokenizer.json; faster-whisper would try to "
                                "download one. Reinstall the weight package.")

    def build(tmp: Path) -> None:
        with open(tmp / "model.bin", "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        for p in companions:
            shutil.copy2(p, tmp / p.name)

    return _cached(cache / model / "ct2", _source_stamp(parts + companions, {}), build)


def mlx_whisper_dir(model: str, dtype: str, cache: Path = DEFAULT_CACHE) -> Path:
    parts, _ = _registered(model)

    def build(tmp: Path) -> None:
        from safetensors.numpy import save_file

        from weights.whisper import load

        w = load(model)
        (tmp / "config.json").write_text(json.dumps(
            {**w.dims, "model_type": "whisper"}, indent=2) + "\n")
        save_file(mlx_whisper_layout(w.state, dtype), str(tmp / "weights.safetensors"))

    stamp = _source_stamp(parts, {"layout": "mlx_whisper 0.4.3", "dtype": dtype})
    return _cached(cache / model / f"mlx-whisper-{dtype}", stamp, build)


def prepare(engine: str, model: str, dtype: str, cache: Path = DEFAULT_CACHE) -> dict:
    """What the worker of `engine` needs to load `model` (paths as strings)."""
    if engine in ("ours", "openai-whisper", "transformers"):
        return {"model": model}
    if engine == "faster-whisper":
        return {"model": model, "path": str(ct2_dir(model, cache))}
    if engine == "mlx-whisper":
        return {"model": model, "path": str(mlx_whisper_dir(model, dtype, cache))}
    raise ValueError(f"unknown engine {engine!r}")


def random_checkpoint(model: str, seed: int, cache: Path = DEFAULT_CACHE,
                      tokenizer_json: str | Path | None = None) -> Path:
    """A transformers folder (model.safetensors, config.json, tokenizer.json) of seeded random
    weights with `model`'s dimensions: the parity spec's `random_state(dims, seed)`, saved by
    the reference adapter (`build_transformers(...).save_pretrained`, no hub access), so that
    every engine loads it the way it loads real weights (ours through mlx_impl.whisper's loader).
    `tokenizer_json`: default the installed weight package's of the same vocabulary."""
    from parity.models.whisper import random_state
    from parity.registry import get
    from weights import whisper as ww

    dims = dict(get(model).config["dims"])
    if tokenizer_json is None:
        same_vocab = "whisper-base" if dims["n_vocab"] >= 51865 else "whisper-tiny.en"
        tokenizer_json = ww._package_file(*ww.REGISTERED[same_vocab].folder) / "tokenizer.json"
    tokenizer_json = Path(tokenizer_json)

    def build(tmp: Path) -> None:
        from reference.whisper import build_transformers

        build_transformers(dims, random_state(dims, seed)).save_pretrained(tmp)
        shutil.copy2(tokenizer_json, tmp / "tokenizer.json")

    stamp = {"dims": dims, "seed": seed, "scheme": "parity.models.whisper.random_state",
             **_source_stamp([tokenizer_json], {})}
    return _cached(cache / f"{model}-random-seed{seed}", stamp, build)
