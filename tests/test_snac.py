"""SNAC: MLX port against the `snac` package (seeded random checkpoints in the hub layout), with
local windowed attention, noise blocks fed the same draws on both sides, multi-scale codes,
weights, config, bad input, and the benchmark stages."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.layers.torch_conv import Conv1d, ConvTranspose1d
from mlx_impl.snac.config import PRESETS, SnacConfig
from mlx_impl.snac.load import load
from parity.models import codec
from parity.models import snac as spec
from reference.snac import fed_noise
from tests.helpers_weights import assert_load_reports, cut_and_drop, rewrite_checkpoint
from tests.helpers import assert_close, assert_taps_pass, tol_for
from weights import snac as wsnac
from weights.weight_norm import WeightNormError

CFG = spec.TEST_TINY_CONFIG
SR = CFG["sampling_rate"]


@pytest.fixture(scope="module")
def sides():
    return spec.ReferenceSide(CFG), spec.MlxSide(CFG, "float32")


@pytest.mark.parametrize("case", spec.TEST_TINY.golden_cases, ids=lambda c: c.name)
def test_tiny_matches_reference(sides, case):
    ref, ours = sides
    inp = spec.TEST_TINY.make_inputs(case)
    want, got = ref(inp.arrays), ours(inp.arrays)
    assert list(want) == list(spec.tap_names(CFG)), f"reference taps {list(want)}"
    assert set(got) == set(want), set(got) ^ set(want)
    for k in spec.code_taps(CFG):
        bad = np.argwhere(want[k] != got[k])
        assert want[k].shape == got[k].shape and bad.size == 0, f"{k}: first mismatch {bad[:1]}"
        # measured >= 7 distinct codes per stage (the weather clip's first 0.1 s is mostly
        # silence); degenerate codebooks give 1
        assert len(np.unique(want[k])) >= 5, f"{k}: degenerate codes"
    assert [want[k].shape[1] for k in spec.code_taps(CFG)] == [
        spec.latent_frames(CFG, inp.arrays["audio"].size) // s for s in CFG["vq_strides"]]
    assert_taps_pass(spec.TEST_TINY, got, want, case.name)  # the spec's table, codes exact
    assert codec.snr_db(want["audio_values"], got["audio_values"]) >= 60
    rt = [codec.snr_db(t["input_values"], t["audio_values"]) for t in (want, got)]
    assert abs(rt[0] - rt[1]) <= 0.1, rt


def test_noise_is_fed_and_matters(sides):
    """The reference really uses the fed draws (other draws change its output), and the MLX
    decoder without given noise draws its own (so it differs)."""
    ref, ours = sides
    inp = spec.TEST_TINY.make_inputs(spec.TEST_TINY.golden_cases[0]).arrays
    a = ref(inp)["audio_values"]
    other = dict(inp, **spec.noise_arrays(CFG, inp["audio"].size, seed=7))
    b = ref(other)["audio_values"]
    assert np.abs(a - b).max() > 1e-2, "noise had no effect"
    codes = ours.model.encode(mx.array(inp["audio"])[None], SR)
    c = np.array(ours.model.decode(codes, key=mx.random.key(5)))
    d = np.array(ours.model.decode(codes, key=mx.random.key(5)))
    assert np.array_equal(c, d) and np.abs(c[:, : a.shape[1]] - a).max() > 1e-2
    with pytest.raises(RuntimeError, match="asked for"):
        with fed_noise([np.zeros((1, 3, 1), np.float32)]):
            torch.randn((1, 1, 4))
    with pytest.raises(RuntimeError, match="not used"):
        with fed_noise([np.zeros((1, 3, 1), np.float32)]):
            pass


def test_fast_convs_match_torch():
    """Dilated/grouped Conv1d and ConvTranspose1d (output_padding) against torch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 37, 12)).astype(np.float32)
    xt = torch.from_numpy(x).transpose(1, 2)
    for d, g in ((1, 1), (3, 1), (9, 12), (2, 4)):
        ref = torch.nn.Conv1d(12, 12, 7, padding=3 * d, dilation=d, groups=g)
        ours = Conv1d(12, 12, 7, padding=3 * d, dilation=d, groups=g)
        ours.weight = mx.array(ref.weight.detach().numpy().transpose(0, 2, 1))
        ours.bias = mx.array(ref.bias.detach().numpy())
        want = ref(xt).detach().transpose(1, 2).numpy()
        assert_close(f"conv d={d} g={g}", np.array(ours(mx.array(x))), want, atol=2e-6)
    for k, s, p, op in ((16, 8, 4, 0), (6, 3, 2, 1), (4, 2, 1, 0), (7, 2, 0, 0)):
        ref = torch.nn.ConvTranspose1d(12, 5, k, stride=s, padding=p, output_padding=op)
        ours = ConvTranspose1d(12, 5, k, stride=s, padding=p, output_padding=op)
        ours.weight = mx.array(ref.weight.detach().numpy().transpose(1, 2, 0))
        ours.bias = mx.array(ref.bias.detach().numpy())
        want = ref(xt).detach().transpose(1, 2).numpy()
        assert_close(f"convT k={k} s={s} p={p} op={op}", np.array(ours(mx.array(x))), want,
                     atol=2e-6)


def test_padding_and_lengths(sides):
    ref, ours = sides
    rng = np.random.default_rng(2)
    for n in (1, 33, 100):
        audio = (0.3 * rng.standard_normal(n)).astype(np.float32)
        inp = {"audio": audio, **spec.noise_arrays(CFG, n)}
        want, got = ref(inp), ours(inp)
        assert got["audio_values"].shape == (1, n)
        assert_close(f"n={n}", got["audio_values"], want["audio_values"],
                     **tol_for(spec.TEST_TINY, "audio_values"))


def test_config_and_weights(tmp_path):
    assert SnacConfig.from_dict(spec.SNAC_24KHZ_CONFIG) == PRESETS["snac-24khz"]
    p = PRESETS["snac-24khz"]
    assert (p.hop_length, p.latent, p.pad_multiple) == (512, 768, 2048)
    with pytest.raises(ValueError, match="missing"):
        SnacConfig.from_dict({k: v for k, v in CFG.items() if k != "noise"})
    with pytest.raises(ValueError, match="unknown keys"):
        SnacConfig.from_dict(dict(CFG, window=3))
    with pytest.raises(ValueError, match="divisible by 64"):
        SnacConfig.from_dict(dict(CFG, decoder_dim=32))
    w = wsnac.load(spec.checkpoint(CFG))
    assert not any("inv_freq" in k or "parametrizations" in k for k in w.state)
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        wsnac.load(tmp_path)


def test_strict_load_reports_keys_and_shapes(tmp_path):
    """A wrong-shaped weight-normed kernel and a missing key in the file: `mlx_impl.snac.load`
    folds, then reports both together (MLX names and layout); half a weight-norm pair is an
    error of its own."""
    v = "encoder.block.0.parametrizations.weight.original1"  # Conv1d v (8, 1, 7), g (8, 1, 1)
    edit = cut_and_drop(v, 5, "encoder.block.0.bias")
    folder = rewrite_checkpoint(spec.checkpoint(CFG), tmp_path / "bad", edit)
    assert_load_reports(load, folder, ("encoder.block.0.weight", (8, 7, 1), (8, 5, 1)),
                        "encoder.block.0.bias")
    folder = rewrite_checkpoint(spec.checkpoint(CFG), tmp_path / "half", lambda s: s.pop(v))
    with pytest.raises(WeightNormError, match=f"{v[:-1]}0 has no matching .*original1"):
        load(folder)


def test_bad_input(sides):
    model = sides[1].model
    x = mx.zeros((1, 64))
    with pytest.raises(ValueError, match="expected 16000 Hz audio, got 24000 Hz"):
        model.encode(x, 24000)
    with pytest.raises(ValueError, match="no samples"):
        model.encode(mx.zeros((1, 0)), SR)
    with pytest.raises(ValueError, match="mono audio"):
        model.encode(mx.zeros((64,)), SR)
    codes = model.encode(x, SR)
    with pytest.raises(ValueError, match="out of range"):
        model.decode([codes[0], codes[1], codes[2] + CFG["codebook_size"]])
    with pytest.raises(ValueError, match="all 3 stages"):
        model.decode(codes[:2])
    with pytest.raises(ValueError, match="frames"):
        model.decode([codes[0], codes[1][:, :-1], codes[2]])
    with pytest.raises(ValueError, match="noise shapes"):
        model.decode(codes, noise=[mx.zeros((1, 3, 1))] * 3)


@pytest.mark.parametrize("engine", ["mlx", "torch"])
def test_bench_stages(engine):
    audio16k = codec.fixture_clip("espeak_en_fox", 16000, 0.3)[1]
    stages = spec.FAMILY.bench_build_for(CFG)(engine, "float32", audio16k)
    assert [s.name for s in stages] == ["encode", "decode"]
    for s in stages:
        s.run()
