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
from mlx_impl.dac.load import load
from mlx_impl.dac.model import DacModel
from parity.models import codec
from parity.models import dac as spec
from tests.helpers_weights import assert_load_reports, cut_and_drop, rewrite_checkpoint
from tests.helpers import assert_close, assert_spec_passes, tol_for
from weights import dac as wdac
from weights.hf_safetensors import read_safetensors

CFG = spec.TEST_TINY_CONFIG
SR = CFG["sampling_rate"]
AUDIO_TOL = tol_for(spec.TEST_TINY, "audio_values")  # the spec's own fp32 entry


@pytest.fixture(scope="module")
def sides():
    return spec.ReferenceSide(CFG), spec.MlxSide(CFG, "float32")


def test_tiny_spec_passes():
    """Every golden case tap by tap within the spec's own fp32 table (codes exactly), and the
    spec's shared-speech round trip (codes identical, decoded SNR, round-trip SNR)."""
    res = assert_spec_passes(spec.TEST_TINY)
    for c in res.cases:
        assert c.metrics["decoded_snr_db"] >= codec.SNR_MIN_DB, c.metrics
        assert c.metrics["roundtrip_snr_abs_diff_db"] <= codec.ROUNDTRIP_DIFF_DB, c.metrics


@pytest.mark.parametrize("case", spec.TEST_TINY.golden_cases, ids=lambda c: c.name)
def test_tiny_codebooks_are_not_degenerate(sides, case):
    want = sides[0](spec.TEST_TINY.make_inputs(case).arrays)
    codes = want["quantizer.codes"]
    assert codes.shape[1] == case.params.get("n_quantizers", CFG["n_codebooks"])
    # measured >= 9 distinct codes per stage among 200 frames (the weather clip's first 0.1 s is
    # mostly silence); degenerate codebooks give 1
    assert min(len(np.unique(c)) for c in codes[0]) >= 8, "degenerate codebooks"


def test_odd_length_and_batch(sides):
    ref, ours = sides
    rng = np.random.default_rng(3)
    clips = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (8, 1001)]
    for audio in clips:
        want = ref.model(torch.from_numpy(audio)[None, None]).audio_values.detach().numpy()
        enc, got = ours.model(mx.array(audio)[None], SR)
        assert_close(f"forward n={audio.size}", np.array(got), want, **AUDIO_TOL)
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
    raw = read_safetensors(tmp_path / "model.safetensors")
    assert any(k.endswith(".parametrizations.weight.original0") for k in raw), "expected pairs"
    w = wdac.load(tmp_path)
    plain = wdac.load(spec.checkpoint(CFG)).state
    assert w.state.keys() == plain.keys()  # folded to the plain checkpoint's keys
    for k in plain:  # g = ||w|| in fp32, folded back: measured at most 1 ulp (1.2e-7 at 1.06)
        assert_close(f"folded {k}", w.state[k], plain[k], atol=0, rtol=2.4e-7)
    m = DacModel(DacConfig.from_dict(w.config))
    m.load_weights([(k, mx.array(v)) for k, v in convert(w.state).items()], strict=True)
    audio = spec.TEST_TINY.make_inputs(spec.TEST_TINY.golden_cases[0]).arrays["audio"]
    with torch.no_grad():
        want = model(torch.from_numpy(audio)[None, None]).audio_values.numpy()
    _, got = m(mx.array(audio)[None], SR)
    assert_close("weight-normed file", np.array(got), want, **AUDIO_TOL)


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


def test_strict_load_reports_keys_and_shapes(tmp_path):
    """A wrong-shaped kernel and a missing key in the file: `mlx_impl.dac.load` reports both
    together (MLX names and layout)."""
    k = "decoder.block.0.conv_t1.weight"  # ConvTranspose1d (in 32, out 16, k 8)
    edit = cut_and_drop(k, 6, "decoder.conv2.bias")
    folder = rewrite_checkpoint(spec.checkpoint(CFG), tmp_path / "bad", edit)
    assert_load_reports(load, folder, ("decoder.block.0.conv_t1.weight", (16, 8, 32), (16, 6, 32)),
                        "decoder.conv2.bias")
    (tmp_path / "config.json").write_text(json.dumps(wdac.load(spec.checkpoint(CFG)).config))
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
