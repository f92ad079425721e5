"""Whisper in the MLX community checkpoint layout: write ours, read them back (and theirs).

The layout, as mlx-whisper 0.4.3 `load_models.load_model` reads it (a folder):
- `config.json`: the ten `ModelDimensions` fields, `"model_type": "whisper"` and, for quantized
  weights, `"quantization": {"group_size": G, "bits": B}`. No other key: mlx-whisper passes what
  is left after popping those two to `ModelDimensions(**config)`.
- `weights.safetensors`: mlx-whisper's parameter names, which are ours except the MLP's
  `mlp.0` / `mlp.2` (upstream's) being `mlp1` / `mlp2`; conv kernels channels-last (out, k, in)
  on both sides; `alignment_heads` (N, 2) int64 where the model has them (mlx-whisper keeps them
  as a parameter). A layer `p` quantized by `nn.quantize` has `p.weight` (packed uint32),
  `p.scales` and `p.biases`; mlx-whisper quantizes exactly the Linear/Embedding layers whose
  `p.scales` is in the file, with the config's settings.
- No `encoder.positional_embedding`: mlx-whisper computes its sinusoids (and its strict
  `update` would refuse the key). Reading one back, we compute them too (`sinusoids`, float32),
  where our loader from the openai/CTranslate2 weights keeps the stored float16-rounded table:
  the two differ by up to 4.9e-4 (tiny.en, base), the one array a round trip does not keep.
- `tokenizer.json` beside them (our tokenizer needs it; mlx-whisper ignores it and uses its own
  tiktoken files).

Quantization itself is MLX's (`nn.quantize`, through `mlx_impl.quantization`); `QUANT_KEEP` is
Whisper's policy of what stays in the compute precision.

    python -m mlx_impl.whisper.checkpoint whisper-base OUT_DIR [--quantize 4|8] [--group-size 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from mlx_impl.layers.positions import sinusoids
from mlx_impl.loading import LoadError, as_dtype, load_strict
from mlx_impl.quantization import QuantizationReport, quantize
from mlx_impl.whisper.config import WhisperConfig
from mlx_impl.whisper.model import Whisper

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
TOKENIZER = "tokenizer.json"
MODEL_TYPE = "whisper"
POSITIONS = "encoder.positional_embedding"
ALIGNMENT_HEADS = "alignment_heads"

# Whisper's quantization policy: every Linear (attention projections, MLPs) is quantized; these
# stay in the compute precision. Convolutions, layer norms and the positional tables have no
# quantized form in MLX and always stay (the report lists them).
QUANT_KEEP = {
    "decoder.token_embedding": "the token embedding is also the vocabulary head (tied): kept, "
                               "as the logits of every step go through it",
}

_OURS_TO_MLX = ((re.compile(r"\.mlp\.0\."), ".mlp1."), (re.compile(r"\.mlp\.2\."), ".mlp2."))
_MLX_TO_OURS = ((re.compile(r"\.mlp1\."), ".mlp.0."), (re.compile(r"\.mlp2\."), ".mlp.2."))


def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        key = pattern.sub(repl, key)
    return key


def quantize_whisper(model: Whisper, bits: int, group_size: int = 64,
                     mode: str = "affine") -> QuantizationReport:
    """`model` quantized in place by `nn.quantize` under Whisper's policy (`QUANT_KEEP`)."""
    return quantize(model, bits, group_size, mode=mode, keep=QUANT_KEEP)


def quantization_of(model: nn.Module) -> dict | None:
    """{"group_size", "bits"} shared by every quantized layer of `model`, or None if it has none.
    Raises if the layers disagree or use a mode other than affine (the config cannot say it)."""
    found = {(m.group_size, m.bits, getattr(m, "mode", "affine"))
             for _, m in model.named_modules()
             if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding))}
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"the model mixes quantization settings {sorted(found)}; the MLX "
                         "checkpoint config holds one (group_size, bits)")
    group_size, bits, mode = found.pop()
    if mode != "affine":
        raise ValueError(f"quantization mode {mode!r}: mlx-whisper's config carries only "
                         "group_size and bits (affine); quantize with mode='affine'")
    return {"group_size": int(group_size), "bits": int(bits)}


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save(model: Whisper, folder: str | Path, tokenizer_json: str | Path | None,
         dtype: str | mx.Dtype = "float16") -> Path:
    """Write `model` (quantized or not) as an MLX community checkpoint in `folder` (created).

    Floating arrays (weights kept in full precision, quantization scales and biases) are
    written in `dtype` (float16: the community's choice); packed quantized weights as they are.
    """
    dt = as_dtype(dtype)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for key, value in tree_flatten(model.parameters()):
        if key == POSITIONS:
            continue
        if mx.issubdtype(value.dtype, mx.floating):
            value = value.astype(dt)
        arrays[_rename(key, _OURS_TO_MLX)] = value
    if model.alignment_heads is not None:
        arrays[ALIGNMENT_HEADS] = model.alignment_heads.astype(mx.int64)
    config = {**dataclasses.asdict(model.dims), "model_type": MODEL_TYPE}
    if (q := quantization_of(model)) is not None:
        config["quantization"] = q
    _atomic(folder / WEIGHTS, lambda p: mx.save_safetensors(str(p), arrays,
                                                             metadata={"format": "mlx"}))
    _atomic(folder / CONFIG, lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    if tokenizer_json is not None:
        _atomic(folder / TOKENIZER, lambda p: shutil.copyfile(tokenizer_json, p))
    return folder


def is_mlx_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / WEIGHTS).is_file() and (p / CONFIG).is_file()


def read_config(folder: Path) -> tuple[WhisperConfig, dict | None]:
    config = json.loads((folder / CONFIG).read_text())
    model_type = config.pop("model_type", MODEL_TYPE)
    if model_type != MODEL_TYPE:
        raise LoadError(f"{folder / CONFIG}: model_type is {model_type!r}, not 'whisper'")
    quantization = config.pop("quantization", None)
    if quantization is not None and set(quantization) - {"group_size", "bits", "mode"}:
        raise LoadError(f"{folder / CONFIG}: unknown quantization keys {sorted(quantization)}; "
                        "expected group_size, bits (and mode)")
    return WhisperConfig.from_dict(config), quantization


def load(folder: str | Path, dtype: str | mx.Dtype = "float32") -> Whisper:
    """Our Whisper from an MLX community checkpoint folder (`save`'s, or mlx-community's),
    loaded strictly. Quantized layers are rebuilt by `nn.quantize` with the config's settings,
    for exactly the layers whose `.scales` the file holds; other floating arrays are cast to
    `dtype`."""
    folder = Path(folder)
    if not is_mlx_checkpoint(folder):
        raise LoadError(f"{folder} is not an MLX Whisper checkpoint: it needs {CONFIG} and "
                        f"{WEIGHTS} (write one with `python -m mlx_impl.whisper.checkpoint`)")
    cfg, quantization = read_config(folder)
    dt = as_dtype(dtype)
    stored = {_rename(k, _MLX_TO_OURS): v for k, v in mx.load(str(folder / WEIGHTS)).items()}
    heads = stored.pop(ALIGNMENT_HEADS, None)
    if POSITIONS in stored:
        raise LoadError(f"{folder / WEIGHTS} holds {POSITIONS}, which the MLX layout leaves out "
                        "(mlx-whisper would refuse it); this is not an MLX community checkpoint")
    stored[POSITIONS] = mx.array(sinusoids(cfg.n_audio_ctx, cfg.n_audio_state))
    model = Whisper(cfg, dtype=dt)
    if quantization is not None:
        nn.quantize(model, **quantization,
                    class_predicate=lambda p, m: f"{p}.scales" in stored)
    elif any(k.endswith(".scales") for k in stored):
        raise LoadError(f"{folder / WEIGHTS} holds quantized layers but {CONFIG} has no "
                        "'quantization' entry; add {\"group_size\": G, \"bits\": B}")
    load_strict(model, stored, dt, what=f"MLX Whisper checkpoint {folder}", consume=True)
    if heads is not None:
        model.set_alignment_heads(np.asarray(heads))
    return model


def tokenizer_path(folder: str | Path) -> Path | None:
    p = Path(folder) / TOKENIZER
    return p if p.is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlx_impl.whisper.checkpoint",
                                description="Write Whisper weights as an MLX community checkpoint.")
    p.add_argument("model", help="registered name (whisper-base, whisper-tiny.en) or weights path")
    p.add_argument("out", help="folder to write config.json, weights.safetensors, tokenizer.json")
    p.add_argument("--quantize", type=int, choices=(4, 8), default=None, help="bits")
    p.add_argument("--group-size", type=int, choices=(32, 64, 128), default=64)
    p.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"],
                   help="precision of the unquantized arrays and of the scales/biases")
    a = p.parse_args(argv)
    from mlx_impl.whisper.load import from_state
    from weights.whisper import load as read_weights

    w = read_weights(a.model)
    model = from_state(w.dims, w.state, alignment_heads=w.alignment_heads, consume=True)
    if a.quantize is not None:
        print(quantize_whisper(model, a.quantize, a.group_size).summary(), file=sys.stderr)
    out = save(model, a.out, w.tokenizer_json, dtype=a.dtype)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
