"""Mimi: MLX port against transformers `MimiModel` (seeded random checkpoints written by
`save_pretrained`), streaming decode, weight conversion, config, and bad-input errors."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.mimi.config import PRESETS, MimiConfig
from mlx_impl.mimi.convert import convert
from mlx_impl.mimi.load import load
from parity.models import codec
from parity.models import mimi as spec
from parity.spec import GoldenCase
from tests.helpers_weights import assert_load_reports, cut_and_drop, rewrite_checkpoint
from tests.helpers import assert_close, assert_taps_pass
from weights import mimi as wmimi
from weights.hf_safetensors import read_safetensors

TINY = spec.TEST_TINY_CONFIG


@pytest.fixture(scope="module")
def tiny_sides():
    return spec.ReferenceSide(TINY), spec.MlxSide(TINY, "float32")


@pytest.fixture(scope="module")
def tiny_model(tiny_sides):
    return tiny_sides[1].model


def _inputs(seconds: float, n_q: int) -> dict:
    case = GoldenCase("t", "", {"clip": "espeak_en_fox", "seconds": seconds, "num_quantizers": n_q})
    return spec.make_inputs(case).arrays


# ---- tiny model against the reference --------------------------------------------------------

@pytest.mark.parametrize("n_q", [1, 2, 4])
def test_tiny_matches_reference(tiny_sides, n_q):
    """Every tap in order (window 6 < 90 transformer steps: the sliding window is exercised)."""
    ref, ours = tiny_sides
    want, got = ref(_inputs(0.09, n_q)), ours(_inputs(0.09, n_q))
    assert list(want) == list(spec.tap_names(TINY)) == list(got)
    assert want["audio_codes"].shape == (1, n_q, 135)
    assert len(np.unique(want["audio_codes"][0, 0])) > 4, "degenerate codebooks"
    assert_taps_pass(spec.TEST_TINY, got, want, f"n_q={n_q}")  # the spec's table, codes exact
    snr = codec.snr_db(want["audio_values"], got["audio_values"])
    assert snr >= spec.SNR_MIN_DB, snr
    assert codec.roundtrip_diff(want, got, spec.TIME_AXIS) <= spec.ROUNDTRIP_DIFF_DB


def test_tiny_odd_lengths_and_batch(tiny_sides, tiny_model):
    """Lengths that are not multiples of the frame (extra and replicate padding) and a batch."""
    ref, _ = tiny_sides
    rng = np.random.default_rng(1)
    clips = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (1, 15, 17, 1001)]
    for audio in clips:
        want = ref({"audio": audio, "num_quantizers": np.int32(4)})
        out = tiny_model(mx.array(audio)[None, :, None], 24000, 4)
        assert_close(f"audio len {audio.size}", np.array(out), want["audio_values"], atol=1e-5,
                     rtol=1e-5)
    batch = np.stack([clips[3], clips[3][::-1]])[:, :, None]
    codes = tiny_model.encode(mx.array(batch), 24000, 3)
    out = tiny_model.decode(codes, n_samples=1001)
    for b in range(2):
        want = ref({"audio": batch[b, :, 0], "num_quantizers": np.int32(3)})
        assert (np.array(codes[b:b + 1]) == want["audio_codes"]).all()
        assert_close(f"batch item {b}", np.array(out[b:b + 1]), want["audio_values"], atol=1e-5,
                     rtol=1e-5)


@pytest.mark.parametrize("frames_per_step", [1, 2, 7])
def test_streaming_decode_equals_one_shot(tiny_sides, tiny_model, frames_per_step):
    ref, _ = tiny_sides
    codes = mx.array(ref({"audio": _inputs(0.05, 4)["audio"],
                          "num_quantizers": np.int32(4)})["audio_codes"].astype(np.int32))
    one = np.array(tiny_model.decode(codes))
    streamed = np.array(spec.stream_decode(tiny_model, codes, frames_per_step))
    assert streamed.shape == one.shape == (1, codes.shape[-1] * 16, 1)
    assert_close(f"streaming {frames_per_step} frames/step", streamed, one, atol=1e-5, rtol=1e-5)
    assert_close("streaming vs reference one-shot", streamed, ref._ref.decode(np.array(codes)),
                 atol=1e-5, rtol=1e-5)


def test_streaming_transformer_matches_upstream_decoder_cache(tiny_sides, tiny_model):
    """transformers' own streaming (decoder_cache, sliding window) of the decoder transformer,
    one code frame per call, against ours with SlidingKVCache."""
    ref, _ = tiny_sides
    codes = ref({"audio": _inputs(0.05, 4)["audio"], "num_quantizers": np.int32(4)})["audio_codes"]
    want = ref._ref.decode_streaming_transformer(codes)
    m = tiny_model
    up = m.upsample(m.quantizer.decode(mx.array(codes.astype(np.int32))))
    cache = m.decoder_transformer.make_cache()
    got = np.concatenate([np.array(m.decoder_transformer(up[:, i:i + 2], cache=cache))
                          for i in range(0, up.shape[1], 2)], axis=1)
    assert want.shape == got.shape and want.shape[1] > TINY["sliding_window"]
    assert_close("decoder transformer, streamed", got, want, atol=1e-5, rtol=1e-5)


# ---- bad input -------------------------------------------------------------------------------

def test_bad_audio(tiny_model):
    mono = mx.zeros((1, 100, 1))
    with pytest.raises(ValueError, match="expected 24000 Hz audio, got 16000 Hz"):
        tiny_model.encode(mono, 16000)
    with pytest.raises(ValueError, match="expected 1-channel audio, got 2 channels"):
        tiny_model.encode(mx.zeros((1, 100, 2)), 24000)
    with pytest.raises(ValueError, match=r"\(batch, samples, channels\)"):
        tiny_model.encode(mx.zeros((100,)), 24000)
    with pytest.raises(ValueError, match="no samples"):
        tiny_model.encode(mx.zeros((1, 0, 1)), 24000)
    with pytest.raises(ValueError, match="float audio"):
        tiny_model.encode(mx.zeros((1, 100, 1), dtype=mx.int16), 24000)
    for n_q in (0, 5, 2.5):
        with pytest.raises(ValueError, match="num_quantizers"):
            tiny_model.encode(mono, 24000, n_q)


def test_bad_codes(tiny_model):
    ok = np.zeros((1, 4, 10), np.int32)
    with pytest.raises(ValueError, match="out of range"):
        tiny_model.decode(mx.array(ok + 16))
    with pytest.raises(ValueError, match="out of range"):
        tiny_model.decode(mx.array(ok - 1))
    with pytest.raises(ValueError, match=r"\(batch, num_quantizers, frames\)"):
        tiny_model.decode(mx.array(ok[0]))
    with pytest.raises(ValueError, match="quantizer stages"):
        tiny_model.decode(mx.array(np.zeros((1, 5, 10), np.int32)))
    with pytest.raises(ValueError, match="empty"):
        tiny_model.decode(mx.array(np.zeros((1, 4, 0), np.int32)))
    with pytest.raises(ValueError, match="integers"):
        tiny_model.decode(mx.array(ok.astype(np.float32)))


# ---- config and weights ----------------------------------------------------------------------

def test_mimi_preset_is_transformers_default_config():
    from transformers import MimiConfig as HFConfig

    hf = HFConfig()
    ours = MimiConfig.from_dict(hf.to_dict())
    assert ours == PRESETS["mimi"], "kyutai/mimi preset differs from transformers' MimiConfig()"
    assert MimiConfig.from_dict(spec.MIMI_CONFIG) == PRESETS["mimi"]
    assert (ours.frame_size, ours.frame_rate, ours.encodec_frame_rate, ours.latent_stride) == \
        (hf.frame_size, hf.frame_rate, hf.encodec_frame_rate, hf.latent_stride) == (1920, 12.5, 25, 2)


def test_config_missing_key_is_an_error():
    d = PRESETS["mimi"].to_dict()
    del d["compress"]
    with pytest.raises(ValueError, match=r"missing \['compress'\]"):
        MimiConfig.from_dict(d)


def test_weights_from_transformers_checkpoint():
    path = spec.checkpoint(TINY)
    w = wmimi.load(path)
    raw = read_safetensors(path / "model.safetensors")
    dropped = {k for k in raw if k.endswith((".initialized", ".cluster_usage", ".embed_sum"))}
    assert set(w.state) == (set(raw) - dropped) | {k[: -len("_sum")] for k in dropped
                                                   if k.endswith(".embed_sum")}
    # codewords = embed_sum / clamp(cluster_usage, 1e-5), usage drawn != 1 on purpose
    p = "quantizer.acoustic_residual_vector_quantizer.layers.1.codebook"
    usage = raw[f"{p}.cluster_usage"]
    assert usage.min() < 0.9 and usage.max() > 1.1
    assert_close("embed", w.state[f"{p}.embed"], raw[f"{p}.embed_sum"] / usage[:, None], atol=0)
    tiny = {f"{p}.embed_sum": np.ones((2, 1), np.float32),
            f"{p}.cluster_usage": np.array([0.0, 2.0], np.float32)}
    assert wmimi.from_transformers(tiny)[f"{p}.embed"].ravel().tolist() == [1e5, 0.5]
    # the nested names of the in-memory transformers 5 model read to the same keys
    nested = {k.replace("encoder.layers.", "encoder.encoder_seanet.layers.")
               .replace("decoder_transformer.", "decoder.decoder_transformer."): v
              for k, v in raw.items()}
    assert wmimi.from_transformers(nested).keys() == w.state.keys()


def test_strict_load_reports_keys_and_shapes(tmp_path):
    """A wrong-shaped kernel and a missing key in the file: `mlx_impl.mimi.load` reports both
    together (MLX names and layout)."""
    k = "decoder.layers.2.conv.weight"  # ConvTranspose1d (in 16, out 8, k 8)
    edit = cut_and_drop(k, 6, "decoder_transformer.layers.1.mlp.fc2.weight")
    folder = rewrite_checkpoint(spec.checkpoint(TINY), tmp_path / "bad", edit)
    assert_load_reports(load, folder, ("decoder.layers.2.conv.weight", (8, 8, 16), (8, 6, 16)),
                        "decoder_transformer.layers.1.mlp.fc2.weight")


def test_convert_kernels(tiny_model):
    """Each kernel is the checkpoint's, moved to MLX's channels-last layout and nothing else."""
    w = wmimi.load(spec.checkpoint(TINY))
    params = convert(w.state, MimiConfig.from_dict(w.config))
    assert set(params) == set(w.state)
    layouts = {  # key: (torch shape, MLX shape, transpose from torch to MLX)
        "upsample.conv.weight": ((16, 1, 4), (16, 4, 1), (0, 2, 1)),  # depthwise transposed conv
        "decoder.layers.2.conv.weight": ((16, 8, 8), (8, 8, 16), (1, 2, 0)),  # (in, out, k)
        "encoder.layers.0.conv.weight": ((4, 1, 7), (4, 7, 1), (0, 2, 1)),  # (out, in, k)
    }
    for k, (torch_shape, mlx_shape, perm) in layouts.items():
        assert (w.state[k].shape, params[k].shape) == (torch_shape, mlx_shape), k
        assert_close(k, np.asarray(params[k]), w.state[k].transpose(perm))
    k = "quantizer.semantic_residual_vector_quantizer.input_proj.weight"  # 1x1 conv -> linear
    assert_close(k, np.asarray(params[k]), w.state[k][:, :, 0])
    # the converted model holds exactly these values (strict load, then read back)
    loaded = dict(tree_flatten(tiny_model.parameters()))
    assert set(loaded) == set(params)
    for k, v in loaded.items():
        assert_close(k, np.asarray(v), np.asarray(params[k]))
    for k, v in params.items():  # every tensor: same values, only the layout moved
        assert_close(f"{k} (sorted values)", np.sort(np.asarray(v), axis=None),
                     np.sort(w.state[k], axis=None))


# ---- benchmark build -------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["mlx", "torch"])
def test_bench_build_runs(engine):
    audio16k = (0.1 * np.random.default_rng(0).standard_normal(1600)).astype(np.float32)
    stages = spec.bench_build_for(TINY)(engine, "float32", audio16k)
    assert [s.name for s in stages] == ["encode", "decode"]
    for s in stages:
        assert s.audio_seconds == pytest.approx(0.1)
        s.run()


# ---- real configuration ----------------------------------------------------------------------

@pytest.mark.slow
def test_mimi_roundtrip_check():
    """The `mimi` spec's whole-clip check (fixtures + jfk, 8 and 32 codebooks)."""
    res = spec.MIMI.checks[0].fn("float32", print)
    assert res.error is None and res.passed, res.summary
