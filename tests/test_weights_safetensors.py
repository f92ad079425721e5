"""weights.hf_safetensors.read_safetensors (the one safetensors reader: streamed, tensor by
tensor) against the safetensors package, and its errors on malformed files."""

from __future__ import annotations

import json
import struct

import pytest

from tests.helpers import assert_close
from weights.hf_safetensors import read_safetensors

torch = pytest.importorskip("torch", reason="safetensors.torch writes the bf16 reference file")


def test_matches_the_safetensors_package(tmp_path):
    """Every dtype the checkpoints use, bf16 widened to float32 exactly, scalars and empties."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    tensors = {"f32": torch.randn(3, 5, generator=g), "f16": torch.randn(7, generator=g).half(),
               "bf16": torch.randn(2, 3, generator=g).bfloat16(),
               "f64": torch.randn(2, generator=g).double(), "i64": torch.arange(6).reshape(2, 3),
               "i32": torch.arange(4, dtype=torch.int32), "u8": torch.arange(3, dtype=torch.uint8),
               "bool": torch.tensor([True, False]), "scalar": torch.tensor(2.5),
               "empty": torch.zeros(0, 4)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    got = read_safetensors(tmp_path / "m.safetensors")
    assert set(got) == set(tensors)
    for k, t in tensors.items():
        want = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
        assert got[k].dtype == want.dtype and got[k].shape == want.shape, (k, got[k].dtype)
        if want.size:
            assert_close(f"safetensors {k}", got[k], want, atol=0.0)
        assert got[k].flags.writeable and got[k].flags.c_contiguous, k  # own buffers, no views


def _write(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_malformed_files_are_named(tmp_path):
    ok = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    _write(tmp_path / "cut.safetensors", ok, b"\0" * 4)
    with pytest.raises(ValueError, match="is truncated: tensor 'a' runs past the end"):
        read_safetensors(tmp_path / "cut.safetensors")
    _write(tmp_path / "span.safetensors", {"a": dict(ok["a"], shape=[3])}, b"\0" * 8)
    with pytest.raises(ValueError, match=r"spans 8 bytes, expected 12"):
        read_safetensors(tmp_path / "span.safetensors")
    _write(tmp_path / "f8.safetensors", {"a": dict(ok["a"], dtype="F8_E4M3")}, b"\0" * 8)
    with pytest.raises(ValueError, match="dtype F8_E4M3, which this reader does not handle"):
        read_safetensors(tmp_path / "f8.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError, match="is not a safetensors file"):
        read_safetensors(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="safetensors file not found"):
        read_safetensors(tmp_path / "absent.safetensors")
