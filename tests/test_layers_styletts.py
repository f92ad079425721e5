"""Op-level parity of the StyleTTS / Kokoro layers against torch (fp32), one line per op:
BiLSTM, instance norm, torch's linear / nearest interpolation, depthwise ConvTranspose1d.

Tolerances (measured on this 2-core x86 CPU, MLX 0.32.4, torch 2.13.0, 2026-12-06):
- BiLSTM: max 1.2e-7 abs on outputs in (-1, 1) (different matmul summation order); atol 1e-6.
- instance_norm: max 4.8e-7 abs on unit-variance outputs; atol 2e-6.
- linear interpolation: bit-identical (the fused arithmetic of torch's CPU kernel, see
  mlx_impl/layers/interpolate.py), including x300 upsampling of values up to 3e4; atol 0.
- depthwise ConvTranspose1d: max 2.4e-7 abs; atol 1e-6.
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mlx_impl  # noqa: F401  (preloads OpenBLAS before mlx)
from mlx_impl.layers import interpolate
from mlx_impl.layers.lstm import BiLSTM
from mlx_impl.layers.norm import instance_norm
from mlx_impl.layers.torch_conv import DepthwiseConvTranspose1d
from tests.helpers import assert_close

RNG = np.random.default_rng(0)


def _btc(x: torch.Tensor) -> np.ndarray:  # torch (B, C, T) -> numpy (B, T, C)
    return x.detach().transpose(1, 2).numpy()


def test_bilstm_matches_torch():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(40, 16, 1, batch_first=True, bidirectional=True)
    ours = BiLSTM(40, 16)
    ours.load_weights([(k, mx.array(v.detach().numpy())) for k, v in ref.state_dict().items()],
                      strict=True)
    x = RNG.standard_normal((2, 23, 40)).astype(np.float32)
    want = ref(torch.from_numpy(x))[0].detach().numpy()
    assert_close("bilstm", np.asarray(ours(mx.array(x))), want, atol=1e-6)


@pytest.mark.parametrize("t", [1 + 1, 57, 4000])
def test_instance_norm_matches_torch(t):
    x = (3 + 2 * RNG.standard_normal((1, 24, t))).astype(np.float32)
    want = F.instance_norm(torch.from_numpy(x), eps=1e-5)
    assert_close(f"instance_norm T={t}", np.asarray(instance_norm(mx.array(_btc(torch.from_numpy(x))))),
                 _btc(want), atol=2e-6)


@pytest.mark.parametrize("n, scale", [(218, 300.0), (65400, 1 / 300), (37, 1 / 3), (10, 2.5)])
def test_linear_interpolate_is_torch_bit_for_bit(n, scale):
    x = np.cumsum(RNG.random((1, n, 9)).astype(np.float32), axis=1) * np.float32(2 * math.pi * 30)
    want = F.interpolate(torch.from_numpy(x).transpose(1, 2), scale_factor=scale,
                         mode="linear").transpose(1, 2).numpy()
    got = np.asarray(interpolate.linear(mx.array(x), scale))
    assert got.shape == want.shape
    assert_close(f"linear x{scale:g}", got, want, atol=0.0)


def test_nearest_interpolate_matches_torch():
    x = RNG.standard_normal((1, 7, 3)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x).transpose(1, 2), scale_factor=2, mode="nearest")
    assert_close("nearest x2", np.asarray(interpolate.nearest(mx.array(x), 2)), _btc(want), atol=0.0)


def test_depthwise_conv_transpose_matches_torch():
    torch.manual_seed(1)
    ref = torch.nn.ConvTranspose1d(12, 12, 3, stride=2, padding=1, output_padding=1, groups=12)
    ours = DepthwiseConvTranspose1d(12, 3, stride=2, padding=1, output_padding=1)
    ours.load_weights([("weight", mx.array(ref.weight.detach().numpy().transpose(0, 2, 1))),
                       ("bias", mx.array(ref.bias.detach().numpy()))], strict=True)
    x = RNG.standard_normal((1, 12, 19)).astype(np.float32)
    want = _btc(ref(torch.from_numpy(x)))
    got = np.asarray(ours(mx.array(_btc(torch.from_numpy(x)))))
    assert_close("depthwise convT", got, want, atol=1e-6)
