"""DAC weights: transformers `DacModel` checkpoints -> one canonical layout (numpy only).

Canonical layout: transformers' `DacModel` state-dict keys (5.24.0), numpy arrays in torch
layout:

    encoder.conv1.{weight,bias}                            Conv1d (out, in, k)
    encoder.block.{i}.res_unit{1,2,3}.{snake1,snake2}.alpha  (1, C, 1)
    encoder.block.{i}.res_unit{j}.{conv1,conv2}.{weight,bias}
    encoder.block.{i}.snake1.alpha, encoder.block.{i}.conv1.*, encoder.snake1.alpha,
    encoder.conv2.*
    quantizer.quantizers.{q}.{in_proj,out_proj}.{weight,bias}, .codebook.weight (size, dim)
    decoder.conv1.*, decoder.block.{i}.snake1.alpha, decoder.block.{i}.conv_t1.*
    (ConvTranspose1d (in, out, k)), decoder.block.{i}.res_unit{j}.*, decoder.snake1.alpha,
    decoder.conv2.*

The published descript/dac_* checkpoints were converted with weight norm removed (transformers'
`convert_dac_checkpoint.py`: `apply_weight_norm`, load, `remove_weight_norm`, save), so their
convs are plain `.weight`. A model saved with weight norm applied (`DacModel.apply_weight_norm()`)
stores `.parametrizations.weight.original0/1` (transformers 5) or `.weight_g/.weight_v`; both
become the pair `<conv>.weight_g` / `<conv>.weight_v` here, folded by the MLX converter.

`load(path)`: a directory with `config.json` + `model.safetensors` (`save_pretrained`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weights.hf_safetensors import read_pretrained


class WeightsError(ValueError):
    """Weights that cannot be read into the canonical DAC layout."""


@dataclass(frozen=True)
class DacWeights:
    config: dict  # transformers DacConfig fields (config.json)
    state: dict[str, np.ndarray]  # canonical layout
    source: str


def from_transformers(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        if not key.startswith(("encoder.", "decoder.", "quantizer.quantizers.")):
            raise WeightsError(f"unexpected key {key!r} in a transformers DacModel checkpoint "
                               "(expected encoder/decoder/quantizer weights)")
        out[key] = np.asarray(value)
    return out


def expected_shapes(config: Mapping) -> dict[str, tuple[int, ...]]:
    """Canonical keys and shapes (plain `.weight` convs) for a transformers DacConfig dict."""
    c = dict(config)
    ratios = list(c["downsampling_ratios"])
    d0, dec = c["encoder_hidden_size"], c["decoder_hidden_size"]
    hidden = d0 * 2 ** len(ratios)
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(p, n_in, n_out, k, transposed=False):
        shapes[f"{p}.weight"] = (n_in, n_out, k) if transposed else (n_out, n_in, k)
        shapes[f"{p}.bias"] = (n_out,)

    def snake(p, dim):
        shapes[f"{p}.alpha"] = (1, dim, 1)

    def res_unit(p, dim):
        snake(f"{p}.snake1", dim)
        conv(f"{p}.conv1", dim, dim, 7)
        snake(f"{p}.snake2", dim)
        conv(f"{p}.conv2", dim, dim, 1)

    conv("encoder.conv1", 1, d0, 7)
    for i, s in enumerate(ratios):
        dim = d0 * 2 ** (i + 1)
        for j in (1, 2, 3):
            res_unit(f"encoder.block.{i}.res_unit{j}", dim // 2)
        snake(f"encoder.block.{i}.snake1", dim // 2)
        conv(f"encoder.block.{i}.conv1", dim // 2, dim, 2 * s)
    snake("encoder.snake1", hidden)
    conv("encoder.conv2", hidden, hidden, 3)
    for q in range(c["n_codebooks"]):
        p = f"quantizer.quantizers.{q}"
        conv(f"{p}.in_proj", hidden, c["codebook_dim"], 1)
        conv(f"{p}.out_proj", c["codebook_dim"], hidden, 1)
        shapes[f"{p}.codebook.weight"] = (c["codebook_size"], c["codebook_dim"])
    conv("decoder.conv1", hidden, dec, 7)
    for i, s in enumerate(ratios[::-1]):
        n_in, n_out = dec // 2 ** i, dec // 2 ** (i + 1)
        snake(f"decoder.block.{i}.snake1", n_in)
        conv(f"decoder.block.{i}.conv_t1", n_in, n_out, 2 * s, transposed=True)
        for j in (1, 2, 3):
            res_unit(f"decoder.block.{i}.res_unit{j}", n_out)
    out_dim = dec // 2 ** len(ratios)
    snake("decoder.snake1", out_dim)
    conv("decoder.conv2", out_dim, 1, 7)
    return shapes


def check_state(state: Mapping[str, np.ndarray], config: Mapping) -> None:
    check_shapes(state, expected_shapes(config), "DAC")


def check_shapes(state: Mapping[str, np.ndarray], want: Mapping[str, tuple[int, ...]],
                 model: str) -> None:
    """Key set and shapes equal to `want`; a weight-norm pair (g, v) stands for `.weight`."""
    got: dict[str, tuple[int, ...]] = {}
    for k, v in state.items():
        if k.endswith(".weight_g"):
            continue
        if k.endswith(".weight_v"):
            prefix = k[: -len(".weight_v")]
            if prefix + ".weight_g" not in state:
                raise WeightsError(f"{k} has no matching {prefix}.weight_g")
            got[prefix + ".weight"] = tuple(v.shape)
        else:
            got[k] = tuple(v.shape)
    orphans = [k for k in state if k.endswith(".weight_g")
               and k[: -len(".weight_g")] + ".weight_v" not in state]
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or unexpected or orphans:
        raise WeightsError(f"{model} weights do not match the config: missing {missing[:8]} "
                           f"({len(missing)}), unexpected {unexpected[:8]} ({len(unexpected)}), "
                           f"weight_g without weight_v {orphans[:4]}")
    bad = [f"{k}: {got[k]} != {s}" for k, s in want.items() if got[k] != s]
    if bad:
        raise WeightsError(f"{model} weight shapes do not match the config: {bad[:8]}")


def load(path: Path | str) -> DacWeights:
    """Read a transformers `save_pretrained` directory (config.json + model.safetensors)."""
    cfg, raw = read_pretrained(path, "DacModel", "dac", WeightsError)
    state = from_transformers(raw)
    check_state(state, cfg)
    return DacWeights(config=cfg, state=state, source=str(Path(path)))
