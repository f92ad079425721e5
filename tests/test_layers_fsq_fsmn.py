"""Op-level parity of the FSQ quantizer and the FSMN memory block against s3tokenizer 0.3.0.

Tolerances (measured, fp32, MLX 0.32.4 CPU vs torch 2.13.0): the FSMN memory (values up to ~10)
and the FSQ projection (values up to ~430) came out bit-identical (max abs 0.0) on these inputs;
the bounds (FSMN atol 2e-6, projection atol 1e-5) leave a few ulps for other BLAS/conv
summation orders. Codes are compared exactly; the FSQ test first checks that no value lies within
1e-5 of a rounding boundary (measured smallest margin 4.3e-4), where a float32 ulp could
legitimately flip a digit.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from s3tokenizer.model_v2 import FSMNMultiHeadAttention, FSQCodebook as TorchFSQ

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.layers.fsmn import FSMNBlock
from mlx_impl.layers.fsq import FSQCodebook, index_to_digits
from tests.helpers import assert_close

RNG = np.random.default_rng(0)


def torch_fsq(dim: int, scale: float) -> TorchFSQ:
    torch.manual_seed(0)
    fsq = TorchFSQ(dim, level=3)
    with torch.no_grad():
        fsq.project_down.weight.mul_(scale)
    return fsq.eval()


def our_fsq(ref: TorchFSQ, dim: int) -> FSQCodebook:
    fsq = FSQCodebook(dim)
    fsq.project_down.weight = mx.array(ref.project_down.weight.detach().numpy())
    fsq.project_down.bias = mx.array(ref.project_down.bias.detach().numpy())
    return fsq


@pytest.mark.parametrize("scale", [1.0, 20.0, 200.0])  # 200: tanh saturated, digits 0/2
def test_fsq_codes_match_package(scale):
    dim = 96
    ref = torch_fsq(dim, scale)
    x = RNG.standard_normal((2, 120, dim)).astype(np.float32)
    want = ref.encode(torch.from_numpy(x)).numpy()
    ours = our_fsq(ref, dim)
    margins = np.array(ours.margins(mx.array(x)))
    assert margins.min() > 1e-5, f"a value within {margins.min():.2g} of a rounding tie"
    got = np.array(ours.encode(mx.array(x)))
    assert got.dtype == np.int32 and want.shape == got.shape
    mism = np.argwhere(got != want)
    assert mism.size == 0, f"{len(mism)} codes differ, first at {tuple(mism[0])}"
    assert len(np.unique(want)) > 50, "degenerate test input"
    proj = ref.project_down(torch.from_numpy(x)).detach().numpy()
    assert_close("fsq project_down", np.array(ours.project_down(mx.array(x))), proj, atol=1e-5)


def test_fsq_digits_roundtrip_and_range():
    fsq = FSQCodebook(16)
    assert fsq.codebook_size == 6561
    codes = mx.array(np.arange(6561, dtype=np.int32))
    digits = np.array(index_to_digits(codes))
    assert digits.min() == 0 and digits.max() == 2
    powers = 3 ** np.arange(8)
    assert (digits @ powers == np.arange(6561)).all()
    x = mx.array(RNG.standard_normal((5, 16)).astype(np.float32) * 10)
    assert (np.array(index_to_digits(fsq.encode(x))) == np.array(fsq.digits(x))).all()


def test_fsq_rejects_other_levels():
    with pytest.raises(ValueError, match="3-level"):
        FSQCodebook(8, level=5)


@pytest.mark.parametrize("kernel", [31, 4])  # even kernel: right pad one more than left
@pytest.mark.parametrize("lengths", [None, (37, 20)])
def test_fsmn_memory_matches_package(kernel, lengths):
    c, t = 64, 37
    torch.manual_seed(1)
    ref = FSMNMultiHeadAttention(c, 2, kernel_size=kernel).eval()
    v = RNG.standard_normal((2, t, c)).astype(np.float32) * 2
    n = lengths or (t, t)
    mask = (np.arange(t)[None, :] < np.array(n)[:, None]).astype(np.float32)[..., None]
    with torch.no_grad():  # upstream passes v as (B, T, H, D) and always with a mask
        want = ref.forward_fsmn(torch.from_numpy(v).view(2, t, 2, c // 2),
                                torch.from_numpy(mask)).numpy()
    block = FSMNBlock(c, kernel)
    block.weight = mx.array(ref.fsmn_block.weight.detach().numpy().transpose(0, 2, 1))
    got = np.array(block(mx.array(v), None if lengths is None else mx.array(mask)))
    assert_close(f"fsmn k={kernel} lengths={lengths}", got, want, atol=2e-6)
    if lengths is not None:
        assert (got[1, 20:] == 0).all(), "padded frames must stay zero"


def test_s3_rope_is_the_rotate_half_layout():
    """s3tokenizer v2's `apply_rotary_emb` (cos/sin from torch.polar, [-x_r | x_l]) is the
    non-interleaved layout of mlx_impl.layers.rope, so v2 reuses RotaryEmbedding unchanged.
    Measured max abs 2.4e-7 over 2048 positions on values up to 4.9 (torch's float32 cos/sin vs
    ours in float64 rounded once); before rope.py took base**x in float64 it was 2.1e-4 (numpy's
    float32 pow 2 ulp off at 2 inverse frequencies)."""
    from s3tokenizer.model_v2 import apply_rotary_emb, precompute_freqs_cis

    from mlx_impl.layers.rope import RotaryEmbedding

    t = 2048  # upstream's whole table: precompute_freqs_cis(64, 1024 * 2)
    q = RNG.standard_normal((1, t, 2, 64)).astype(np.float32)  # upstream layout (B, T, H, D)
    want, _ = apply_rotary_emb(torch.from_numpy(q), torch.from_numpy(q),
                               precompute_freqs_cis(64, t))
    got = RotaryEmbedding(64, 10000.0)(mx.array(q.transpose(0, 2, 1, 3)))  # ours (B, H, T, D)
    assert_close("s3 rope", np.array(got).transpose(0, 2, 1, 3), want.numpy(), atol=1e-6)
