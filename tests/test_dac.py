"""DAC: MLX port against transformers `DacModel` (seeded random checkpoints written by
`save_pretrained`), weight reading and conversion (plain and weight-normed files), config, bad
input, and the benchmark stages."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.dac.config import PRESETS, DacConfig
from mlx_impl.dac.convert import convert
from mlx_impl.dac.model import DacModel
from parity.models import codec
from parity.models import dac as spec
from tests.helpers_weights import assert_close
from weights import dac as wdac

CFG = spec.TEST_TINY_CONFIG
SR = CFG["sampling_rate"]


def check_taps(want: dict, got: dict, what: str) -> None:
    assert list(want) == list(spec.tap_names(CFG)), f"{what}: reference taps {list(want)}"
    assert set(got) == set(want), f"{what}: tap sets differ: {set(want) ^ set(got)}"
    codes_w, codes_g = want["quantizer.codes"], got["quantizer.codes"]
    bad = np.argwhere(codes_w != codes_g)
    assert codes_w.shape == codes_g.shape and bad.size == 0, (
        f"{what}: codes differ at {bad[:1].tolist()} ({len(bad)} of {codes_w.size})")
    for name in want:
        if name != "quantizer.codes":
            assert_close(f"{what} {name}", got[name], want[name], atol=1e-5, rtol=1e-5)
    snr = codec.snr_db(want["audio_values"], got["audio_values"])
    assert snr >= codec.SNR_MIN_DB, f"{what}: decoded SNR {snr:.1f} dB"
    rt = abs(codec.snr_db(want["input_values"], want["audio_values"])
             - codec.snr_db(got["input_values"], got["audio_values"]))
    assert rt <= codec.ROUNDTRIP_DIFF_DB, f"{what}: round-trip SNR differs by {rt:.3g} dB"


@pytest.fixture(scope="module")
def sides():
    return spec.ReferenceSide(CFG), spec.MlxSide(CFG, "float32")


@pytest.mark.parametrize("case", spec.TEST_TINY.golden_cases, ids=lambda c: c.name)
def test_tiny_matches_reference(sides, case):
    ref, ours = sides
    inp = spec.TEST_TINY.make_inputs(case)
    want = ref(inp.arrays)
    codes = want["quantizer.codes"]
    assert codes.shape[1] == case.params.get("n_quantizers", CFG["n_codebooks"])
    # measured >= 9 distinct codes per stage among 200 frames (the weather clip's first 0.1 s is
    # mostly silence); degenerate codebooks give 1
    assert min(len(np.unique(c)) for c in codes[0]) >= 8, "degenerate codebooks"
    check_taps(want, ours(inp.arrays), case.name)


def test_odd_length_and_batch(sides):
    ref, ours = sides
    rng = np.random.default_rng(3)
    clips = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (8, 1001)]
    for audio in clips:
        want = ref.model(torch.from_numpy(audio)[None, None]).audio_values.detach().numpy()
        enc, got = ours.model(mx.array(audio)[None], SR)
        assert_close(f"forward n={audio.size}", np.array(got), want, atol=1e-5, rtol=1e-5)
    x = np.stack([clips[1][:1000], clips[1][1:1001]])
    with torch.no_grad():
        want = ref.model.encode(torch.from_numpy(x)[:, None]).audio_codes.numpy()
    got = np.array(ours.model.encode(mx.array(x), SR).codes)
    assert np.array_equal(got, want), "batched codes differ"


def test_weight_normed_checkpoint(tmp_path, sides):
    """A file saved with weight norm applied (parametrizations) reads and folds to the same model."""
    ref, ours = sides
    model = ref.model
    from transformers import DacModel as HfDac

    wn = HfDac.from_pretrained(str(spec.checkpoint(CFG))).eval()
    wn.apply_weight_norm()
    wn.save_pretrained(tmp_path)
    w = wdac.load(tmp_path)
    assert any(k.endswith(".weight_g") for k in w.state), "expected weight-norm pairs"
    m = DacModel(DacConfig.from_dict(w.config))
    m.load_weights([(k, mx.array(v)) for k, v in convert(w.state).items()], strict=True)
    audio = spec.TEST_TINY.make_inputs(spec.TEST_TINY.golden_cases[0]).arrays["audio"]
    with torch.no_grad():
        want = model(torch.from_numpy(audio)[None, None]).audio_values.numpy()
    _, got = m(mx.array(audio)[None], SR)
    assert_close("weight-normed file", np.array(got), want, atol=1e-5, rtol=1e-5)


def test_config_and_presets():
    hub = dict(spec.DAC_24KHZ_CONFIG, hop_length=512, hidden_size=1024, upsampling_ratios=[8, 5, 4, 2],
               model_type="dac", architectures=["DacModel"], commitment_loss_weight=0.25,
               codebook_loss_weight=1.0, torch_dtype="float32")  # as the hub file (stale hop)
    cfg = DacConfig.from_dict(hub)
    assert cfg == PRESETS["dac-24khz"] and cfg.hop_length == 320 and cfg.frame_rate == 75
    for name, c in (("dac-44khz", spec.DAC_44KHZ_CONFIG), ("dac-16khz", spec.DAC_16KHZ_CONFIG)):
        assert DacConfig.from_dict(c) == PRESETS[name]
    assert PRESETS["dac-44khz"].hop_length == 512 and PRESETS["dac-44khz"].hidden_size == 1024
    with pytest.raises(ValueError, match="missing"):
        DacConfig.from_dict({k: v for k, v in CFG.items() if k != "codebook_dim"})
    with pytest.raises(ValueError, match="unknown keys"):
        DacConfig.from_dict(dict(CFG, latent_dim=3))
    with pytest.raises(ValueError, match="power of 2"):
        DacConfig.from_dict(dict(CFG, codebook_size=100))


def test_weights_strict(tmp_path):
    w = wdac.load(spec.checkpoint(CFG))
    state = dict(w.state)
    state.pop("decoder.conv2.bias")
    with pytest.raises(wdac.WeightsError, match="missing"):
        wdac.check_state(state, w.config)
    state = dict(w.state, **{"encoder.extra.weight": np.zeros(1)})
    with pytest.raises(wdac.WeightsError, match="unexpected"):
        wdac.check_state(state, w.config)
    bad = dict(w.config, n_codebooks=5)
    with pytest.raises(wdac.WeightsError, match="missing"):
        wdac.check_state(w.state, bad)
    (tmp_path / "config.json").write_text(json.dumps(w.config))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        wdac.load(tmp_path)


def test_bad_input(sides):
    model = sides[1].model
    x = mx.zeros((1, 64))
    with pytest.raises(ValueError, match="expected 16000 Hz audio, got 44100 Hz"):
        model.encode(x, 44100)
    with pytest.raises(ValueError, match="no samples"):
        model.encode(mx.zeros((1, 0)), SR)
    with pytest.raises(ValueError, match="fewer than one frame"):
        model.encode(mx.zeros((1, 5)), SR)
    with pytest.raises(ValueError, match=r"mono audio \(batch, samples\)"):
        model.encode(mx.zeros((1, 64, 2)), SR)
    with pytest.raises(ValueError, match="float audio"):
        model.encode(mx.zeros((1, 64), mx.int16), SR)
    with pytest.raises(ValueError, match="n_quantizers=5"):
        model.encode(x, SR, n_quantizers=5)
    codes = model.encode(x, SR).codes
    with pytest.raises(ValueError, match="out of range"):
        model.decode(codes + CFG["codebook_size"])
    with pytest.raises(ValueError, match=r"\(batch, n_q, frames\)"):
        model.decode(codes[0])
    with pytest.raises(ValueError, match="stages"):
        model.decode(mx.concatenate([codes, codes], axis=1))
    with pytest.raises(ValueError, match="empty"):
        model.decode(codes[:, :, :0])


@pytest.mark.parametrize("engine", ["mlx", "torch"])
def test_bench_stages(engine):
    audio16k = codec.fixture_clip("espeak_en_fox", 16000, 0.3)[1]
    stages = spec.FAMILY.bench_build_for(CFG)(engine, "float32", audio16k)
    assert [s.name for s in stages] == ["encode", "decode"]
    for s in stages:
        s.run()
        assert s.audio_seconds == pytest.approx(0.3, abs=0.01)
