"""BigVGAN v2: MLX port against the bigvgan 2.4.1 package (`BigVGAN(h, use_cuda_kernel=False)`,
seeded random checkpoints written as the hub repo holds them), the mel front end on its own,
config and weight reading, bad-input errors, and the benchmark stages."""

from __future__ import annotations

import json

import librosa
import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.bigvgan.config import BigVGANConfig
from mlx_impl.bigvgan.convert import convert
from mlx_impl.bigvgan.load import load
from mlx_impl.bigvgan.mel import BigVGANMel
from mlx_impl.layers.spectral import mel_filters
from parity.models import bigvgan as spec
from parity.models import codec
from mlx_impl.taps import Taps
from reference.bigvgan import BigVGANReference, load_reference, random_checkpoint, reference_mel
from tests.helpers import assert_close, assert_spec_passes, assert_taps_pass, tol_for
from weights import bigvgan as wbigvgan

SNR_MIN_DB = 60.0  # MLX audio vs reference, fp32 (measured 126 dB tiny)


@pytest.fixture(scope="module")
def tiny():
    return load(spec.checkpoint(spec.TEST_TINY_CONFIG))


def _snr(ref, got):
    return codec.snr_db(ref, got)


def test_tiny_matches_reference():
    """Every tap: the mel front end on its own, then each stage on the same reference mel."""
    res = assert_spec_passes(spec.TEST_TINY)
    for c in res.cases:
        assert c.metrics["decoded_snr_db"] >= SNR_MIN_DB, c.metrics


# AMPBlock2, plain Snake, final tanh and a conv_post bias: the branches the real config skips.
VARIANT = dict(spec.TEST_TINY_CONFIG, resblock="2", activation="snake", use_tanh_at_final=True,
               use_bias_at_final=True, upsample_rates=[2, 8], upsample_kernel_sizes=[4, 16])


def test_variant_matches_reference(tmp_path):
    path = random_checkpoint(VARIANT, seed=3, cache=tmp_path)
    ref = BigVGANReference(path)
    w = wbigvgan.load(path)
    from mlx_impl.bigvgan.model import BigVGAN

    model = BigVGAN(BigVGANConfig.from_dict(w.config))
    model.load_weights([(k, mx.array(v)) for k, v in convert(w.state).items()], strict=True)
    mel = np.random.default_rng(1).normal(-4, 2, (23, VARIANT["num_mels"])).astype(np.float32)
    want = ref({"mel": mel}, taps=spec.tap_names(VARIANT))
    taps = Taps()
    model(mx.array(mel[None]), taps=taps)
    assert list(taps) == [t for t in spec.tap_names(VARIANT) if t != "mel"]
    assert_taps_pass(spec.TEST_TINY, {k: np.array(v) for k, v in taps.items()}, want,
                     "variant", taps=list(taps))


def test_reader_folds_weight_norm_as_remove_weight_norm(tmp_path):
    path = random_checkpoint(spec.TEST_TINY_CONFIG, seed=0, cache=tmp_path)
    got = convert(wbigvgan.load(path).state)
    want = {k: v.numpy() for k, v in load_reference(path).state_dict().items()
            if not k.endswith("filter")}
    assert set(got) == set(want)
    for k, v in want.items():
        if k.endswith(".weight") and v.ndim == 3:
            v = v.transpose(1, 2, 0) if k.startswith("ups.") else v.transpose(0, 2, 1)
        assert_close(k, got[k], v.reshape(got[k].shape), atol=1e-7, rtol=1e-6)


def test_real_config_mel_front_end():
    """The 100-band 24 kHz front end against bigvgan.meldataset.mel_spectrogram on speech.
    Measured max abs 2.4e-4 in log-mel near the 1e-5 clamp (see MEL_OVERRIDE); the filterbank
    against librosa within 1e-8."""
    c = spec.BIGVGAN_V2_24KHZ_CONFIG
    fb = librosa.filters.mel(sr=24000, n_fft=1024, n_mels=100, fmin=0, fmax=None)
    assert_close("slaney filters", mel_filters(24000, 1024, 100), fb, atol=1e-8)
    _, audio = codec.fixture_clip("espeak_en_weather", 24000, 1.0)
    mel = BigVGANMel(24000, c["n_fft"], c["hop_size"], c["win_size"], c["num_mels"])
    got = np.array(mel(mx.array(audio[None])))[0]
    want = reference_mel(c, audio)
    assert got.shape == want.shape == (audio.shape[0] // 256, 100)
    assert_close("mel", got, want, **tol_for(spec.BIGVGAN_V2_24KHZ, "mel"))


def test_bad_input(tiny):
    n = spec.TEST_TINY_CONFIG["num_mels"]
    with pytest.raises(ValueError, match=f"expected a log-mel \\(batch, frames, {n}\\)"):
        tiny(mx.zeros((1, 10, n + 1)))
    with pytest.raises(ValueError, match="expected a log-mel"):
        tiny(mx.zeros((10, n)))
    with pytest.raises(ValueError, match="empty mel"):
        tiny(mx.zeros((1, 0, n)))
    bad = np.zeros((1, 5, n), np.float32)
    bad[0, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        tiny(mx.array(bad))
    with pytest.raises(ValueError, match="mono audio"):
        tiny.mel(mx.zeros((1, 0)))
    with pytest.raises(ValueError, match="too short"):
        tiny.mel(mx.zeros((1, 10)))


def test_config_errors():
    d = dict(spec.BIGVGAN_V2_24KHZ_CONFIG)
    del d["upsample_rates"]
    with pytest.raises(ValueError, match="missing \\['upsample_rates'\\]"):
        BigVGANConfig.from_dict(d)
    with pytest.raises(ValueError, match="product of upsample_rates"):
        BigVGANConfig.from_dict(dict(spec.BIGVGAN_V2_24KHZ_CONFIG, hop_size=300))
    cfg = BigVGANConfig.from_dict(spec.BIGVGAN_V2_24KHZ_CONFIG)
    assert (cfg.use_tanh_at_final, cfg.use_bias_at_final, cfg.fmax) == (False, False, None)


def test_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        wbigvgan.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(spec.TEST_TINY_CONFIG))
    torch.save({"gen": {}}, tmp_path / "bigvgan_generator.pt")
    with pytest.raises(wbigvgan.WeightsError, match="generator"):
        wbigvgan.load(tmp_path)


def test_bench_stages_run():
    audio16k = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    for engine in spec.TEST_TINY.bench.engines:
        stages = spec.TEST_TINY.bench.build(engine, "float32", audio16k)
        assert [st.name for st in stages] == ["vocode"]
        for st in stages:
            out = st.run()
            assert st.audio_seconds == pytest.approx(0.25)
            if out is not None:
                assert np.asarray(out).shape[-1] == 6000 // 16 * 16


@pytest.mark.slow
def test_v2_24khz_matches_reference():
    res = assert_spec_passes(spec.BIGVGAN_V2_24KHZ)
    for c in res.cases:
        assert c.metrics["decoded_snr_db"] >= SNR_MIN_DB, c.metrics
