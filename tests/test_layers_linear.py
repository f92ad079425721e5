"""mlx_impl.layers.linear: one-row float32 products through the extension's sgemv, else matmul.

Compared with torch's `F.linear` in float64 on the same weights, with the rigorous bound of a
float32 dot product of K terms: |error| <= K * 2**-24 * sum_i |x_i w_i| (any summation order).
Measured here (OpenBLAS 0.3.21, SkylakeX): the sgemv results equal MLX's matmul bit for bit, and
are <= 8.0e-5 from float64 on the (512 -> 51865) head (torch's fp32: 1.7e-5). The fallback path
(more rows, fp16, no extension) must stay bit-identical to `mlx.nn.Linear`.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlx_impl import _cpu_ext
from mlx_impl.layers import linear as linear_mod
from mlx_impl.layers.linear import MATVEC_MAX_ROWS, Linear, linear

BUILT = _cpu_ext.kernels() is not None
needs_ext = pytest.mark.skipif(not BUILT, reason="extension not built: run "
                               ".venv/bin/python mlx_impl/_cpu_ext/build.py")


def _data(rows: int, k: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((1, rows, k)).astype(np.float32),
            rng.standard_normal((n, k)).astype(np.float32),
            rng.standard_normal(n).astype(np.float32))


def _exact(x, w, b=None):
    """float64 torch result and the float32 dot-product error bound per output."""
    xd, wd = torch.from_numpy(x).double(), torch.from_numpy(w).double()
    want = F.linear(xd, wd, None if b is None else torch.from_numpy(b).double()).numpy()
    bound = x.shape[-1] * 2.0**-24 * F.linear(xd.abs(), wd.abs()).numpy()
    return want, bound


def assert_within_bound(name, got, x, w, b=None):
    want, bound = _exact(x, w, b)
    excess = np.abs(got.astype(np.float64) - want) - bound - 1e-6  # + bias rounding
    assert excess.max() <= 0, f"{name}: {int((excess > 0).sum())} outputs past the fp32 bound"
    assert np.abs(got - want).max() < 1e-3, name  # and close in absolute terms


@needs_ext
@pytest.mark.parametrize("rows", range(1, MATVEC_MAX_ROWS + 1))
@pytest.mark.parametrize("k,n", [(512, 51865), (2048, 512)])
def test_one_row_products_run_sgemv_and_match_torch(rows, k, n):
    x, w, b = _data(rows, k, n)
    _cpu_ext._state["used"].pop("matvec", None)
    got = np.array(linear(mx.array(x), mx.array(w)))
    assert _cpu_ext.cpu_kernels_info()["used"].get("matvec") == "extension"
    assert_within_bound("linear (no bias)", got, x, w)
    got_b = np.array(linear(mx.array(x), mx.array(w), mx.array(b)))
    assert_within_bound("linear + bias", got_b, x, w, b)


@needs_ext
def test_linear_module_loads_like_nn_linear_and_matches_torch():
    x, w, b = _data(1, 512, 1536, seed=1)
    m = Linear(512, 1536)
    m.load_weights([("weight", mx.array(w)), ("bias", mx.array(b))], strict=True)
    assert_within_bound("Linear", np.array(m(mx.array(x))), x, w, b)
    no_bias = Linear(512, 1536, bias=False)
    assert set(dict(no_bias.parameters())) == {"weight"}


@pytest.mark.parametrize("case", ["rows", "float16"])
def test_other_products_are_bit_identical_to_nn_linear(case):
    rows = MATVEC_MAX_ROWS + 3 if case == "rows" else 1
    x, w, b = _data(rows, 256, 384, seed=2)
    dt = mx.float16 if case == "float16" else mx.float32
    ours, ref = Linear(256, 384), nn.Linear(256, 384)
    for m in (ours, ref):
        m.load_weights([("weight", mx.array(w).astype(dt)), ("bias", mx.array(b).astype(dt))])
    xm = mx.array(x).astype(dt)
    np.testing.assert_array_equal(np.array(ours(xm).astype(mx.float32)),
                                  np.array(ref(xm).astype(mx.float32)))


def test_without_the_extension_the_matmul_path_runs(monkeypatch):
    monkeypatch.setattr(linear_mod._cpu_ext, "kernels", lambda: None)
    x, w, b = _data(1, 128, 64, seed=3)
    got = np.array(linear(mx.array(x), mx.array(w), mx.array(b)))
    np.testing.assert_array_equal(got, np.array(mx.addmm(mx.array(b), mx.array(x),
                                                         mx.array(w).T)))


@needs_ext
def test_matvec_rejects_mismatched_shapes():
    ext = _cpu_ext.kernels()
    with pytest.raises(ValueError, match=r"x \(\.\.\., K\) and w \(N, K\)"):
        ext.matvec(mx.zeros((1, 5)), mx.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"bias \(N,\)"):
        ext.matvec(mx.zeros((1, 4)), mx.zeros((3, 4)), mx.zeros((2,)))


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("rows", [1, linear_mod.DEQUANTIZE_MIN_ROWS + 1, 300])
def test_quantized_linear_dequantize_path_equals_quantized_matmul(bits, rows):
    """Our QuantizedLinear (dequantize + matmul past DEQUANTIZE_MIN_ROWS rows on the CPU) against
    MLX's nn.QuantizedLinear (quantized_matmul) on the same packed weights: both compute
    x @ (scales * q + biases).T in float32, so they may differ by the float32 dot-product bound
    only (measured here: bit-identical, max |diff| 0.0, OpenBLAS 0.3.21, outputs of RMS 1.4)."""
    x, w, b = _data(rows, 256, 96)
    ours = Linear(256, 96)
    ours.update({"weight": mx.array(w / 16), "bias": mx.array(b)})
    q = ours.to_quantized(64, bits)
    assert type(q) is linear_mod.QuantizedLinear
    theirs = nn.QuantizedLinear(256, 96, True, 64, bits)
    theirs.update(dict(q.parameters()))
    got, want = np.array(q(mx.array(x))), np.array(theirs(mx.array(x)))
    deq = np.array(mx.dequantize(q.weight, q.scales, q.biases, 64, bits))
    _, bound = _exact(x, deq)
    assert np.all(np.abs(got - want) <= 2 * bound + 1e-6), np.abs(got - want).max()
    # and the quantization error itself is what MLX's affine quantization gives, not zero
    assert np.abs(deq - w / 16).max() > 0
