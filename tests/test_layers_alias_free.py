"""Op-level parity of the anti-aliased activation layers against bigvgan 2.4.1's torch code.

Tolerances (measured, fp32, MLX CPU vs torch 2.13.0): filters max abs ~1e-8 (float64 design cast
vs torch's float32), atol 1e-7; up/down-sampling and Activation1d on N(0, 1) inputs max abs
~5e-7 (12-tap sums in another order), atol 2e-6.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from bigvgan.activations import SnakeBeta as TorchSnakeBeta
from bigvgan.alias_free_activation.torch import act, filter, resample

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.layers.alias_free import Activation1d, DownSample1d, UpSample1d, kaiser_sinc_filter1d
from mlx_impl.layers.snake import SnakeBeta
from tests.helpers import assert_close

RNG = np.random.default_rng(0)


def _x(T=37, C=5):
    return RNG.standard_normal((2, T, C)).astype(np.float32)


def _torch(module, x):  # channels-last numpy in/out
    with torch.no_grad():
        return module(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()


@pytest.mark.parametrize("cutoff,half_width,k", [(0.25, 0.3, 12), (0.5 / 3, 0.2, 18), (0.2, 0.3, 11),
                                                 (0.5, 0.6, 4), (0.0, 0.3, 12)])
def test_kaiser_sinc_filter(cutoff, half_width, k):
    want = filter.kaiser_sinc_filter1d(cutoff, half_width, k).reshape(-1).numpy() if cutoff else np.zeros(k)
    assert_close(f"kaiser_sinc({cutoff},{half_width},{k})", kaiser_sinc_filter1d(cutoff, half_width, k),
                 want, atol=1e-7)


@pytest.mark.parametrize("ratio,k", [(2, 12), (2, None), (3, None), (4, 10)])
def test_upsample(ratio, k):
    x = _x()
    assert_close(f"upsample({ratio},{k})", np.array(UpSample1d(ratio, k)(mx.array(x))),
                 _torch(resample.UpSample1d(ratio, k), x), atol=2e-6)


@pytest.mark.parametrize("ratio,k", [(2, 12), (2, None), (3, None), (2, 11)])
def test_downsample(ratio, k):
    x = _x(T=40)
    assert_close(f"downsample({ratio},{k})", np.array(DownSample1d(ratio, k)(mx.array(x))),
                 _torch(resample.DownSample1d(ratio, k), x), atol=2e-6)


def test_activation1d_snakebeta():
    C = 6
    x = (_x(T=50, C=C) * 2).astype(np.float32)
    a, b = (RNG.standard_normal(C) * 0.3).astype(np.float32), (RNG.standard_normal(C) * 0.3).astype(np.float32)
    ref_act = TorchSnakeBeta(C, alpha_logscale=True)
    with torch.no_grad():
        ref_act.alpha.copy_(torch.from_numpy(a))
        ref_act.beta.copy_(torch.from_numpy(b))
    ours = SnakeBeta(C, logscale=True)
    ours.alpha, ours.beta = mx.array(a), mx.array(b)
    assert_close("activation1d(snakebeta)", np.array(Activation1d(ours)(mx.array(x))),
                 _torch(act.Activation1d(ref_act), x), atol=5e-6)
