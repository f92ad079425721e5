"""`depthwise_conv1d` (mlx_impl/layers/torch_conv.py) against torch's conv1d with groups =
channels: the CPU path (shifted multiply-adds in float32) and its callers' padding."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (preloads the BLAS)
from mlx_impl.layers.torch_conv import Conv1d, depthwise_conv1d
from tests.helpers import assert_close


def _torch_depthwise(x: np.ndarray, w: np.ndarray, dilation: int, padding: int = 0):
    # x (B, L, C) channels-last, w (C, k, 1) -> torch (B, C, L) with weight (C, 1, k)
    y = torch.nn.functional.conv1d(torch.from_numpy(x).transpose(1, 2),
                                   torch.from_numpy(w).permute(0, 2, 1), padding=padding,
                                   dilation=dilation, groups=w.shape[0])
    return y.transpose(1, 2).numpy()


@pytest.mark.parametrize("channels,length,k,dilation", [
    (64, 3000, 7, 1), (48, 2000, 7, 9), (16, 500, 31, 1), (8, 100, 9, 3), (5, 7, 3, 3)])
def test_depthwise_fp32(channels, length, k, dilation):
    rng = np.random.default_rng(k * dilation)
    x = rng.standard_normal((2, length, channels)).astype(np.float32)
    w = (rng.standard_normal((channels, k, 1)) / np.sqrt(k)).astype(np.float32)
    got = np.array(depthwise_conv1d(mx.array(x), mx.array(w), dilation))
    # k products summed in a different order than torch's: float32 rounding of a k-term sum
    assert_close(f"depthwise k={k} d={dilation}", got, _torch_depthwise(x, w, dilation),
                 atol=2e-6, rtol=1e-5)


def test_depthwise_half_keeps_its_dtype_and_float32_sums():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 400, 32)).astype(np.float32)
    w = (rng.standard_normal((32, 7, 1)) / 3).astype(np.float32)
    got = depthwise_conv1d(mx.array(x, dtype=mx.float16), mx.array(w, dtype=mx.float16))
    assert got.dtype == mx.float16
    want = _torch_depthwise(x.astype(np.float16).astype(np.float32),
                            w.astype(np.float16).astype(np.float32), 1)
    # float32 sums rounded once to float16: within one float16 ulp of the float32 result
    assert_close("depthwise float16", np.array(got.astype(mx.float32)), want, atol=2e-3,
                 rtol=1e-3)


def test_torch_semantics_conv1d_takes_the_depthwise_path_with_padding():
    rng = np.random.default_rng(1)
    conv = Conv1d(24, 24, 7, padding=9, dilation=3, groups=24)
    w = rng.standard_normal((24, 7, 1)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    conv.weight, conv.bias = mx.array(w), mx.array(b)
    x = rng.standard_normal((1, 300, 24)).astype(np.float32)
    want = _torch_depthwise(x, w, 3, padding=9) + b
    assert_close("Conv1d groups=C", np.array(conv(mx.array(x))), want, atol=1e-5, rtol=1e-5)


def test_depthwise_errors_name_the_problem():
    with pytest.raises(ValueError, match="too short for a kernel of 7 taps at dilation 2"):
        depthwise_conv1d(mx.zeros((1, 10, 4)), mx.zeros((4, 7, 1)), 2)
    with pytest.raises(ValueError, match="does not match 3 input channels"):
        depthwise_conv1d(mx.zeros((1, 10, 4)), mx.zeros((3, 7, 1)))
