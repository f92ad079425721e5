"""SNAC weights: the `snac` package checkpoint -> one canonical layout (numpy only).

On disk (hub repos hubertsiuzdak/snac_*): `config.json` (the `SNAC(**config)` arguments) and
`pytorch_model.bin` (`torch.save(model.state_dict())`). The convs use
`torch.nn.utils.parametrizations.weight_norm`, stored as `<conv>.parametrizations.weight.original0`
(g) / `.original1` (v); the attention layers store their rotary `rel_pos.inv_freq` buffer.

Canonical layout: the snac state-dict keys with weight norm as `<conv>.weight_g` / `.weight_v`
and the `rel_pos.inv_freq` buffers dropped (checked against 1 / 10000 ** (arange(0, 64, 2) / 64)
first: the MLX side recomputes them), numpy arrays in torch layout.

`load(path)`: the directory; the torch zip is read without torch (weights/torch_zip.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.dac import WeightsError, check_shapes
from weights.torch_zip import read_torch_zip

DIM_HEAD = 64  # upstream LocalMHA's head width


@dataclass(frozen=True)
class SnacWeights:
    config: dict  # SNAC(**config) arguments (config.json)
    state: dict[str, np.ndarray]  # canonical layout
    source: str


def from_snac(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    want_inv = (1.0 / (np.float32(10000) ** (np.arange(0, DIM_HEAD, 2).astype(np.float32)
                                              / np.float32(DIM_HEAD)))).astype(np.float32)
    out = {}
    for key, value in state.items():
        value = np.asarray(value)
        if key.endswith(".rel_pos.inv_freq"):
            if value.shape != want_inv.shape or not np.allclose(value, want_inv, rtol=1e-6, atol=0):
                raise WeightsError(f"{key}: rotary inverse frequencies differ from "
                                   "1 / 10000 ** (arange(0, 64, 2) / 64); not a snac LocalMHA")
            continue
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        if not key.startswith(("encoder.block.", "decoder.model.", "quantizer.quantizers.")):
            raise WeightsError(f"unexpected key {key!r} in a snac checkpoint")
        out[key] = value
    return out


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    """Canonical keys and shapes (a weight-norm pair counted as `.weight`) for a SNAC config."""
    c = dict(config)
    dw = c["depthwise"]
    latent = c.get("latent_dim") or c["encoder_dim"] * 2 ** len(c["encoder_rates"])
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(p, n_in, n_out, k, groups=1, bias=True, transposed=False):
        shapes[f"{p}.weight"] = (n_in, n_out, k) if transposed else (n_out, n_in // groups, k)
        if bias:
            shapes[f"{p}.bias"] = (n_out,)

    def res_unit(p, dim, groups):
        shapes[f"{p}.block.0.alpha"] = (1, dim, 1)
        conv(f"{p}.block.1", dim, dim, 7, groups)
        shapes[f"{p}.block.2.alpha"] = (1, dim, 1)
        conv(f"{p}.block.3", dim, dim, 1)

    def attention(p, dim):
        shapes[f"{p}.norm.weight"] = shapes[f"{p}.norm.bias"] = (dim,)
        shapes[f"{p}.to_qkv.weight"] = (3 * dim, dim)
        shapes[f"{p}.to_out.weight"] = (dim, dim)

    d = c["encoder_dim"]
    conv("encoder.block.0", 1, d, 7)
    i = 1
    for s in c["encoder_rates"]:
        half, d = d, 2 * d
        for j in range(3):
            res_unit(f"encoder.block.{i}.block.{j}", half, half if dw else 1)
        shapes[f"encoder.block.{i}.block.3.alpha"] = (1, half, 1)
        conv(f"encoder.block.{i}.block.4", half, d, 2 * s)
        i += 1
    if c["attn_window_size"] is not None:
        attention(f"encoder.block.{i}", d)
        i += 1
    conv(f"encoder.block.{i}", d, d, 7, d if dw else 1)

    for q in range(len(c["vq_strides"])):
        p = f"quantizer.quantizers.{q}"
        conv(f"{p}.in_proj", latent, c["codebook_dim"], 1)
        conv(f"{p}.out_proj", c["codebook_dim"], latent, 1)
        shapes[f"{p}.codebook.weight"] = (c["codebook_size"], c["codebook_dim"])

    ch = c["decoder_dim"]
    if dw:
        conv("decoder.model.0", latent, latent, 7, latent)
        conv("decoder.model.1", latent, ch, 1)
        i = 2
    else:
        conv("decoder.model.0", latent, ch, 7)
        i = 1
    if c["attn_window_size"] is not None:
        attention(f"decoder.model.{i}", ch)
        i += 1
    for k, s in enumerate(c["decoder_rates"]):
        n_in, n_out = ch // 2 ** k, ch // 2 ** (k + 1)
        p = f"decoder.model.{i}"
        shapes[f"{p}.block.0.alpha"] = (1, n_in, 1)
        conv(f"{p}.block.1", n_in, n_out, 2 * s, transposed=True)
        j = 2
        if c["noise"]:
            conv(f"{p}.block.2.linear", n_out, n_out, 1, bias=False)
            j = 3
        for r in range(3):
            res_unit(f"{p}.block.{j + r}", n_out, n_out if dw else 1)
        i += 1
    shapes[f"decoder.model.{i}.alpha"] = (1, n_out, 1)
    conv(f"decoder.model.{i + 1}", n_out, 1, 7)
    return shapes


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    check_shapes(state, expected_shapes(config), "SNAC")


def load(path: Path | str) -> SnacWeights:
    """Read a snac checkpoint directory (config.json + pytorch_model.bin)."""
    path = Path(path)
    cfg_path, bin_path = path / "config.json", path / "pytorch_model.bin"
    for p in (cfg_path, bin_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; expected a snac checkpoint directory "
                                    "(config.json and pytorch_model.bin, as the hub repos)")
    cfg = json.loads(cfg_path.read_text())
    raw = read_torch_zip(bin_path)
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{bin_path}: expected a state dict, got {type(raw).__name__}")
    state = from_snac(raw)
    check_state(state, cfg)
    return SnacWeights(config=cfg, state=state, source=str(path))
