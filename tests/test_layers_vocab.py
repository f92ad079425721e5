"""tied_logits (mlx_impl/layers/vocab.py) against torch's x @ E^T, for the numpy path (float32 on
the CPU) and the MLX path (float16).

Tolerance: fp32 dot products of length 512 over N(0, 1) inputs (|logits| ~ 23) summed in another
order differ by up to 5.3e-5 (measured, numpy gemv vs MLX sgemm); vs torch: atol 1e-4 + rtol 1e-5.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from helpers_weights import assert_close

import mlx_impl  # noqa: F401
from mlx_impl.layers.vocab import tied_logits

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(1, 1, 512), (5, 1, 512), (2, 7, 512), (512,)])
def test_tied_logits_float32(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    e = RNG.standard_normal((3001, 512)).astype(np.float32)
    got = tied_logits(mx.array(x), mx.array(e))
    assert got.dtype == mx.float32 and got.shape == shape[:-1] + (3001,)
    want = (torch.from_numpy(x) @ torch.from_numpy(e).T).numpy()
    assert_close(f"tied_logits {shape}", np.array(got), want, atol=1e-4, rtol=1e-5)


def test_tied_logits_float16_uses_mlx():
    x = RNG.standard_normal((1, 2, 64)).astype(np.float16)
    e = (RNG.standard_normal((100, 64)) * 0.1).astype(np.float16)
    got = tied_logits(mx.array(x), mx.array(e))
    assert got.dtype == mx.float16
    want = x.astype(np.float32) @ e.astype(np.float32).T
    assert_close("tied_logits fp16", np.array(got.astype(mx.float32)), want, atol=2e-2, rtol=1e-2)


def test_tied_logits_rejects_mismatch():
    with pytest.raises(ValueError, match="channels"):
        tied_logits(mx.zeros((1, 8)), mx.zeros((10, 4)))
