"""S3 tokenizer v1/v2: MLX port against the s3tokenizer package 0.3.0 (tiny seeded random
checkpoints written as the package's torch state dict), front end, padding masks, the > 30 s
window path, weights, config, bad input and the benchmark build."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.s3tokenizer.config import PRESETS, S3TokenizerConfig
from mlx_impl.s3tokenizer.convert import convert
from mlx_impl.s3tokenizer.load import load
from parity.clips import read_clip
from parity.models import s3tokenizer as spec
from tests.helpers_weights import assert_load_reports, rewrite_checkpoint
from tests.helpers import assert_close, assert_taps_pass
from weights import s3tokenizer as ws3

TINY = {"v1": spec.V1_TINY_CONFIG, "v2": spec.V2_TINY_CONFIG}
# fp32, tiny configs, fox clip: measured max abs 5.0e-5 on `mel` (quiet bins near the log floor,
# see test_front_end), <= 2.5e-5 on every later tap (values up to ~4)


@pytest.fixture(scope="module", params=["v1", "v2"])
def sides(request):
    cfg = TINY[request.param]
    return request.param, spec.ReferenceSide(cfg), spec.MlxSide(cfg, "float32")


def _codes_identical(want: np.ndarray, got: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: {got.shape} tokens vs reference {want.shape}"
    mism = np.flatnonzero(want.ravel() != got.ravel())
    assert mism.size == 0, (f"{what}: {mism.size}/{want.size} codes differ; first at "
                            f"{mism[0]}: mlx {got.ravel()[mism[0]]} vs {want.ravel()[mism[0]]}")


def test_tiny_taps_match_reference(sides):
    version, ref, ours = sides
    _, audio = read_clip("espeak_en_fox")
    inputs = {"audio": audio[: 2 * 16000]}
    want, got = ref(inputs), ours(inputs)
    assert list(want) == list(got) == list(spec.tap_names(TINY[version]))
    _codes_identical(want["quantizer.codes"], got["quantizer.codes"], f"{version} codes")
    assert len(np.unique(want["quantizer.codes"])) > 20, "degenerate random codes"
    tiny_spec = {"v1": spec.V1_TEST_TINY, "v2": spec.V2_TEST_TINY}[version]
    assert_taps_pass(tiny_spec, got, want, f"{version} fox 2 s")  # the spec's table, codes exact


def test_tiny_long_audio_window_path(sides):
    """> 30 s: upstream's 30 s windows (26 s stride, padded last window, merged seams)."""
    version, ref, ours = sides
    clip = np.concatenate([read_clip(c)[1] for c in ("espeak_en_fox", "espeak_en_weather")] * 3)
    assert clip.size / 16000 > 30
    want, got = ref.tokenize(clip), ours.tokenize(clip)
    rate = {"v1": 50, "v2": 25}[version]
    assert abs(len(want) - clip.size / 16000 * rate) < 2 * rate, len(want)
    _codes_identical(want, got, f"{version} long audio")


def test_tiny_padded_batch_matches_reference(sides):
    """Masks: a batch padded to the longest item gives each item the reference's codes."""
    version, ref, ours = sides
    _, audio = read_clip("espeak_en_weather")
    mels = [ref._ref.mel(audio[:n]) for n in (16000, 9000, 4321)]
    lens = [m.shape[1] for m in mels]
    batch = torch.zeros(3, mels[0].shape[0], max(lens))
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    with torch.inference_mode():
        codes, n = ref._ref.model.quantize(batch, torch.tensor(lens))
    got = ours.model.quantize(mx.array(batch.numpy().transpose(0, 2, 1)), lens)
    for i in range(3):
        _codes_identical(codes[i, : int(n[i])].numpy(), np.array(got[i]), f"{version} item {i}")


def test_front_end_matches_package():
    """`mlx_impl.layers.audio.log_mel_spectrogram` at n_mels=128 is s3tokenizer's front end.
    Measured max abs 6.4e-5 on the full fox clip (bins of near-silence close to the max - 8
    floor: FFT rounding is relative to the frame, so the log of a quiet bin moves most), mean
    ~1e-7; the Whisper audio tests use the same bound."""
    import s3tokenizer

    from mlx_impl.layers.audio import log_mel_spectrogram

    for clip in ("espeak_en_fox", "espeak_en_weather"):
        _, audio = read_clip(clip)
        want = s3tokenizer.log_mel_spectrogram(torch.from_numpy(audio), n_mels=128).numpy().T
        got = np.array(log_mel_spectrogram(mx.array(audio), n_mels=128))
        assert_close(f"log-mel {clip}", got, want, atol=1e-4)
        assert np.abs(got - want).mean() < 1e-6


@pytest.fixture(scope="module")
def tiny_v2():
    return load(spec.checkpoint(spec.V2_TINY_CONFIG))


def test_bad_audio(tiny_v2):
    ok = mx.zeros((16000,))
    with pytest.raises(ValueError, match="expected 16000 Hz audio, got 24000 Hz; resample"):
        tiny_v2.tokenize(ok, sample_rate=24000)
    with pytest.raises(ValueError, match="no samples"):
        tiny_v2.tokenize(mx.zeros((0,)))
    with pytest.raises(ValueError, match="needs more than 200"):
        tiny_v2.tokenize(mx.zeros((150,)))
    with pytest.raises(ValueError, match=r"mono audio of shape \(n_samples,\)"):
        tiny_v2.tokenize(mx.zeros((2, 16000)))
    with pytest.raises(ValueError, match="float audio"):
        tiny_v2.tokenize(mx.zeros((16000,), dtype=mx.int16))
    with pytest.raises(ValueError, match="128 bins"):
        tiny_v2.encode(mx.zeros((1, 100, 80)))
    with pytest.raises(ValueError, match="more than the 2048 positions"):
        tiny_v2.encode(mx.zeros((1, 8200, 128)))
    with pytest.raises(ValueError, match="do not fit"):
        tiny_v2.quantize(mx.zeros((2, 100, 128)), [100])
    # shortest valid input: 201 samples -> 1 mel frame -> 1 token
    assert tiny_v2.tokenize(mx.zeros((201,))).shape == (1,)


def test_presets_are_the_package_defaults():
    from s3tokenizer.model import ModelConfig as C1
    from s3tokenizer.model_v2 import ModelConfig as C2

    for preset, default, name in (("s3tokenizer-v1", C1(), "speech_tokenizer_v1"),
                                  ("s3tokenizer-v2", C2(), "speech_tokenizer_v2_25hz")):
        want = {k: v for k, v in vars(default).items() if k != "use_sdpa"}
        assert PRESETS[preset].to_dict() == {"name": name, **want}
    assert PRESETS["s3tokenizer-v2"].to_dict() == spec.V2_CONFIG
    assert PRESETS["s3tokenizer-v1"].to_dict() == spec.V1_CONFIG
    assert (PRESETS["s3tokenizer-v1"].token_rate, PRESETS["s3tokenizer-v2"].token_rate) == (50, 25)


def test_config_errors():
    d = dict(spec.V2_CONFIG)
    del d["n_audio_head"]
    with pytest.raises(ValueError, match=r"missing \['n_audio_head'\]"):
        S3TokenizerConfig.from_dict(d)
    with pytest.raises(ValueError, match="64 channels per head"):
        S3TokenizerConfig.from_dict(dict(spec.V2_CONFIG, n_audio_head=4, n_audio_state=128))
    with pytest.raises(ValueError, match="unknown S3 tokenizer"):
        S3TokenizerConfig.from_dict(dict(spec.V2_CONFIG, name="speech_tokenizer_v9"))
    assert S3TokenizerConfig.from_dict(dict(spec.V2_CONFIG, use_sdpa=True)).version == 2


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_weights_strict(version, tmp_path):
    w = ws3.load(spec.checkpoint(TINY[version]))
    ref = torch.load(spec.checkpoint(TINY[version]) / "model.pt")
    assert set(ref) == set(w.state), "numpy reader and torch.load disagree on the keys"
    assert all(np.array_equal(ref[k].numpy(), w.state[k]) for k in ref)

    def edit(state):  # a wrong-shaped kernel and a missing key: reported together
        state["encoder.conv1.weight"] = np.ascontiguousarray(state["encoder.conv1.weight"][:, :80])
        del state["encoder.blocks.1.mlp_ln.bias"]

    folder = rewrite_checkpoint(spec.checkpoint(TINY[version]), tmp_path / "bad", edit)
    assert_load_reports(load, folder, ("encoder.conv1.weight", (128, 3, 128), (128, 3, 80)),
                        "encoder.blocks.1.mlp_ln.bias")
    params = convert(w.state)
    assert params["encoder.conv1.weight"].shape == (128, 3, 128)  # channels-last (out, k, in)
    assert not any(k.startswith("quantizer._codebook") for k in params)
    if version == "v2":
        assert params["encoder.blocks.0.attn.fsmn_block.weight"].shape == (128, 31, 1)


def test_bench_build_runs_both_engines():
    _, audio = read_clip("espeak_en_fox")
    build = spec.bench_build_for(spec.V2_TINY_CONFIG)
    for engine in ("mlx", "torch"):
        (stage,) = build(engine, "float32", audio[:16000])
        assert stage.name == "tokenize" and stage.audio_seconds == 1.0
        stage.run()
