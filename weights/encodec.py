"""EnCodec weights: on-disk layouts -> one canonical layout (numpy only).

Canonical layout: transformers' `EncodecModel` state-dict keys (5.24.0), numpy arrays in torch
layout, weight norm kept as the pair `<conv>.weight_g` (out-or-in, 1, 1) / `<conv>.weight_v`
(the names of the published facebook/encodec_* checkpoints), training-only buffers dropped:

    encoder.layers.{i}.conv.{bias,weight_g,weight_v}          (Conv1d; `.conv.weight` when the
    encoder.layers.{i}.block.{j}.conv.* / .shortcut.conv.*     model has no weight norm)
    encoder.layers.{i}.norm.{weight,bias}                     (time_group_norm models)
    encoder.layers.{i}.lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l{k}
    decoder.layers.{i}.conv.*  (ConvTranspose1d kernels stay (in, out, k))
    quantizer.layers.{q}.codebook.embed                       (codebook_size, codebook_dim)

Sources:
- `from_transformers(state)`: a transformers checkpoint. transformers 5 saves weight norm as
  `<conv>.parametrizations.weight.original0` (g) / `.original1` (v); older files and the hub
  checkpoints use `weight_g` / `weight_v`. Both are accepted.
- `from_original(state)`: Meta's `encodec` package checkpoint (`encodec_24khz-d7cc33bc.th`):
  `encoder.model.{i}.conv.conv.weight_g`, `decoder.model.{i}.convtr.convtr.weight_g`,
  `*.conv.norm.*`, `quantizer.vq.layers.{q}._codebook.embed`.
- `load(path)`: a directory with `config.json` + `model.safetensors` (transformers
  `save_pretrained`), or an original `.th` checkpoint plus a config dict.
Dropped buffers: codebook `inited`, `cluster_size`, `embed_avg` (training statistics).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import read_pretrained
from weights.torch_zip import read_torch_zip

TRAINING_BUFFERS = ("inited", "cluster_size", "embed_avg")


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical EnCodec layout."""


@dataclass(frozen=True)
class EncodecWeights:
    config: dict  # transformers EncodecConfig fields (config.json)
    state: dict[str, np.ndarray]  # canonical layout
    source: str


def _is_training_buffer(key: str) -> bool:
    return key.startswith("quantizer.") and key.rsplit(".", 1)[-1] in TRAINING_BUFFERS


def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        if _is_training_buffer(key):
            continue
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        if not key.startswith(("encoder.layers.", "decoder.layers.", "quantizer.layers.")):
            raise WeightsError(f"unexpected key {key!r} in a transformers EncodecModel "
                               "checkpoint (expected encoder/decoder/quantizer layers)")
        out[key] = np.asarray(value)
    return out


_ORIGINAL = [
    (re.compile(r"^(encoder|decoder)\.model\."), r"\1.layers."),
    (re.compile(r"\.conv\.conv\."), ".conv."),
    (re.compile(r"\.convtr\.convtr\."), ".conv."),
    (re.compile(r"\.(conv|convtr)\.norm\."), ".norm."),
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\."), r"quantizer.layers.\1.codebook."),
]


def from_original(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        new = key
        for pattern, repl in _ORIGINAL:
            new = pattern.sub(repl, new)
        if _is_training_buffer(new):
            continue
        if not new.startswith(("encoder.layers.", "decoder.layers.", "quantizer.layers.")):
            raise WeightsError(f"unexpected key {key!r} in an original encodec checkpoint")
        out[new] = np.asarray(value)
    return out


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    """Canonical keys and shapes for a transformers EncodecConfig dict."""
    c = dict(config)
    wn = c["norm_type"] == "weight_norm"
    D = c["hidden_size"]
    cb_dim = c.get("codebook_dim") or D
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(p, n_in, n_out, k, transposed=False):
        w = (n_in, n_out, k) if transposed else (n_out, n_in, k)
        if wn:
            shapes[f"{p}.conv.weight_g"] = (w[0], 1, 1)
            shapes[f"{p}.conv.weight_v"] = w
        else:
            shapes[f"{p}.conv.weight"] = w
            shapes[f"{p}.norm.weight"] = (n_out,)
            shapes[f"{p}.norm.bias"] = (n_out,)
        shapes[f"{p}.conv.bias"] = (n_out,)

    def resblock(p, dim):
        hidden = dim // c["compress"]
        conv(f"{p}.block.1", dim, hidden, c["residual_kernel_size"])
        conv(f"{p}.block.3", hidden, dim, 1)
        if c["use_conv_shortcut"]:
            conv(f"{p}.shortcut", dim, dim, 1)

    def lstm(p, dim):
        for k in range(c["num_lstm_layers"]):
            for kind, n_in in (("ih", dim), ("hh", dim)):
                shapes[f"{p}.lstm.weight_{kind}_l{k}"] = (4 * dim, n_in)
                shapes[f"{p}.lstm.bias_{kind}_l{k}"] = (4 * dim,)

    ratios, nf, n_res = list(c["upsampling_ratios"]), c["num_filters"], c["num_residual_layers"]
    i, scale = 0, 1
    conv(f"encoder.layers.{i}", c["audio_channels"], nf, c["kernel_size"])
    i += 1
    for r in reversed(ratios):
        for _ in range(n_res):
            resblock(f"encoder.layers.{i}", scale * nf)
            i += 1
        conv(f"encoder.layers.{i + 1}", scale * nf, 2 * scale * nf, 2 * r)
        i += 2
        scale *= 2
    lstm(f"encoder.layers.{i}", scale * nf)
    conv(f"encoder.layers.{i + 2}", scale * nf, D, c["last_kernel_size"])

    scale = 2 ** len(ratios)
    conv("decoder.layers.0", D, scale * nf, c["kernel_size"])
    lstm("decoder.layers.1", scale * nf)
    i = 2
    for r in ratios:
        conv(f"decoder.layers.{i + 1}", scale * nf, scale * nf // 2, 2 * r, transposed=True)
        i += 2
        for _ in range(n_res):
            resblock(f"decoder.layers.{i}", scale * nf // 2)
            i += 1
        scale //= 2
    conv(f"decoder.layers.{i + 1}", nf, c["audio_channels"], c["last_kernel_size"])

    hop = int(np.prod(ratios))
    frame_rate = -(-c["sampling_rate"] // hop)
    nbits = int(np.ceil(np.log2(c["codebook_size"])))
    n_q = int(1000 * max(c["target_bandwidths"]) // (frame_rate * nbits))
    for q in range(n_q):
        shapes[f"quantizer.layers.{q}.codebook.embed"] = (c["codebook_size"], cb_dim)
    return shapes


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    want = expected_shapes(config)
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    if missing or unexpected:
        raise WeightsError(f"EnCodec weights do not match the config: missing {missing[:8]} "
                           f"({len(missing)}), unexpected {unexpected[:8]} ({len(unexpected)})")
    bad = [f"{k}: {tuple(state[k].shape)} != {s}" for k, s in want.items()
           if tuple(state[k].shape) != s]
    if bad:
        raise WeightsError(f"EnCodec weight shapes do not match the config: {bad[:8]}")


def load(path: Path | str, config: Mapping | None = None) -> EncodecWeights:
    """Read a transformers `save_pretrained` directory, or an original `.th` checkpoint (then
    `config` is required: the original files carry none)."""
    path = Path(path)
    if path.is_dir():
        cfg, raw = read_pretrained(path, "EncodecModel", "encodec", WeightsError, config)
        state = from_transformers(raw)
    elif path.is_file():
        if config is None:
            raise WeightsError(f"{path}: an original encodec checkpoint has no config; pass "
                               "config= (e.g. mlx_impl.encodec.config.PRESETS['encodec-24khz']"
                               ".to_dict())")
        cfg = dict(config)
        raw = read_torch_zip(path)
        if not isinstance(raw, Mapping):
            raise WeightsError(f"{path}: expected a state dict, got {type(raw).__name__}")
        state = from_original({k: np.asarray(v) for k, v in raw.items()})
    else:
        raise FileNotFoundError(f"EnCodec weights not found at {path}")
    if cfg.get("codebook_dim") is None:
        cfg["codebook_dim"] = cfg["hidden_size"]
    check_state(state, cfg)
    return EncodecWeights(config=cfg, state=state, source=str(path))
