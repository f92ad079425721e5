"""The C++ CPU kernels (mlx_impl._cpu_ext) behind `gelu` and `softmax`, one line per check.

Each op runs through the public API of mlx_impl.layers.activations and is compared with torch's
fp32 result and with float64; every test first asserts which path ran: 'extension' (skipped,
with the reason, only when the .so is not built) or 'compiled fallback' (forced with
monkeypatch, so the fallback stays tested on machines where the extension is built).

Tolerances (measured here: 2-core AVX-512 x86, MLX 0.32.4, torch 2.13.0, build x86-64-v4;
every ISA level gives the same bits since the kernels build with -ffp-contract=off):
- gelu fp32 on |x| <= 12: <= 3.9e-7 abs from float64 (0.8 ulp of 4.9); checked as atol 1.5e-7 +
  rtol 2.5e-7 (as tests/test_layers_ops.py). Against torch 1.2e-6: torch's own error (1.1e-6).
- gelu on x in [-14.8, -1.42] (the erfc tail): relative error 2.8e-7 from float64 (fallback
  1.5e-5); torch's fp32 kernel cancels there (abs. error 1.06e-6, relative up to 1).
- softmax fp32: <= 7.2e-8 abs from float64 on probabilities (row sums in float64 lanes; the
  compiled fallback 4.3e-7, torch 3.7e-7); per-path tolerances at SM_ATOL64.
- fp16/bf16: computed in fp32 and rounded once, as torch's CPU kernels: 1 ulp of the format.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest
import torch
from test_layers_ops import SWEEP, ULP1, check_op, gelu64, softmax64

from mlx_impl import _cpu_ext
from mlx_impl.layers import activations
from mlx_impl.layers.activations import gelu, softmax
from mlx_impl.layers.norm import layer_norm
from mlx_impl.layers.snake import SnakeBeta, snake
from tests.helpers import assert_close

BUILT = any(_cpu_ext._HERE.glob("_kernels*.so"))
PATHS = [
    pytest.param(
        "extension",
        marks=pytest.mark.skipif(
            not BUILT, reason="extension not built: run .venv/bin/python mlx_impl/_cpu_ext/build.py"
        ),
    ),
    "compiled fallback",
]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Selects the CPU path; after the test, asserts that path is the one that ran."""
    if request.param == "compiled fallback":
        monkeypatch.setattr(activations._cpu_ext, "kernels", lambda: None)
    else:
        assert _cpu_ext.kernels() is not None, (
            f"built but not loadable: {_cpu_ext.cpu_kernels_info()}"
        )
    _cpu_ext._state["used"].clear()
    yield request.param
    used = _cpu_ext.cpu_kernels_info()["used"]
    assert used, "no op recorded which path it ran"
    assert set(used.values()) == {request.param}, f"expected {request.param}, ran {used}"


def torch_softmax(axis=-1):
    return lambda t: torch.softmax(t, axis)


T_GELU = torch.nn.functional.gelu
GELU_TOL = {"atol": 1.2e-6, "rtol": 5e-7, "ref64_fn": gelu64, "atol64": 1.5e-7, "rtol64": 2.5e-7}
# measured max rel. error on the tail (normal results): extension 2.8e-7 (u**2 / 2 split
# exactly), fallback 1.5e-5: it
# rounds z**2 in fp32 first (rel. error of exp(-z**2) up to ~z**2 * 2**-24 per rounding)
RTOL_TAIL = {"extension": 1e-6, "compiled fallback": 2e-5}
# the fallback flushes exp results below 8e-39 to 0 (activations.py), times |x| <= 14.8; the
# extension flushes subnormal results (|gelu| < 1.18e-38, x < -13.2) to zero (kernels.h: they
# made the next matmul ~12x slower on x86)
ATOL_TAIL = {"extension": 1.18e-38, "compiled fallback": 1.5e-37}
# softmax abs. error on probabilities, measured on rows of 90/129/1500 (N(0, 3-4) logits):
# extension <= 7.2e-8 from float64 (sums in float64 lanes), compiled fallback <= 4.3e-7, torch
# <= 3.7e-7 (fp32 lanes, at p = 0.93); so vs torch: ours + torch's.
SM_ATOL64 = {"extension": 1.5e-7, "compiled fallback": 5e-7}


def sm_tol(path):
    a64 = SM_ATOL64[path]
    return {"atol": a64 + 4e-7, "rtol": 0.0, "ref64_fn": softmax64, "atol64": a64, "rtol64": 0.0}


# --- gelu -------------------------------------------------------------------------------------
def test_gelu_sweep(path):
    # torch's fp32 kernel gives nan for gelu(+inf) and inf at 3e38: checked in test_gelu_special
    x = SWEEP[~np.isin(SWEEP, np.float32([np.inf, 3e38]))]
    check_op("gelu sweep", [x], T_GELU, gelu, **GELU_TOL)


def test_gelu_special(path):
    x = np.array([np.inf, -np.inf, np.nan, 3e38, -3e38, 0.0, -0.0, 1e-45, -1e-40], np.float32)
    got = np.asarray(gelu(mx.array(x)))
    want = T_GELU(torch.from_numpy(x.astype(np.float64))).numpy()
    # atol: the extension flushes subnormal results (gelu(1e-45), gelu(-1e-40)) to zero
    assert_close("gelu special vs torch fp64", got, want, 1.18e-38, 2.5e-7, inputs=x,
                 match_nonfinite=True)


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
def test_gelu_extension_no_subnormal_results():
    # subnormal outputs slow the next matmul ~12x on x86: the extension returns signed zeros
    x = np.linspace(-14.8, -13.0, 2001).astype(np.float32)
    got = np.asarray(_cpu_ext.kernels().gelu_erf(mx.array(x)))
    tiny = np.finfo(np.float32).tiny
    assert not np.any((got != 0) & (np.abs(got) < tiny)), "subnormal GELU results"
    assert np.all(got[x < -13.3] == 0) and np.all(np.signbit(got[x < -13.3]))
    want = gelu64(x.astype(np.float64))
    assert_close("gelu near the flush", got, want, 1.18e-38, 1e-6, inputs=x)


def test_gelu_tail_relative(path):
    # Phi(x) for x <= -sqrt 2 is the erfc tail. Below x ~ -13.2, Phi is subnormal (spacing
    # 1.4e-45) and x * Phi carries |x| <= 14.8 times its rounding: atol 2.1e-44 covers that.
    x = np.linspace(-14.8, -1.42, 50_001).astype(np.float32)
    got = np.asarray(gelu(mx.array(x))).astype(np.float64)
    want = gelu64(x.astype(np.float64))
    assert_close("gelu tail rel", got, want, ATOL_TAIL[path], RTOL_TAIL[path], inputs=x)


@pytest.mark.parametrize(
    "shape", [(1,), (7,), (2, 7, 33), (2, 3, 4, 5), (4096 * 3 + 17,), (1500, 512)]
)
def test_gelu_shapes(path, shape):
    check_op(f"gelu {shape}", [shape], T_GELU, gelu, **GELU_TOL)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gelu_low_precision(path, dtype):
    x = np.linspace(-12, 12, 20_001).astype(np.float32)
    tol = {
        "atol": 1.2e-6,
        "rtol": ULP1[dtype],
        "ref64_fn": gelu64,
        "atol64": 1e-9,
        "rtol64": ULP1[dtype],
    }
    check_op("gelu", [x], T_GELU, gelu, dtype=dtype, **tol)


def test_gelu_strided_input(path):
    x = np.random.default_rng(2).standard_normal((33, 65)).astype(np.float32) * 3
    got = np.asarray(gelu(mx.array(x).T))  # a transposed view: made contiguous first
    assert_close("gelu transposed", got, gelu64(x.T.astype(np.float64)), 1.5e-7, 2.5e-7)


def test_gelu_in_compiled_function(path):
    # the fallback's .view() has no shape rule, so only the extension traces shapelessly
    x = np.linspace(-6, 6, 1001).astype(np.float32)
    f = mx.compile(lambda a: gelu(a) * 2.0, shapeless=path == "extension")
    assert_close("compiled gelu", np.asarray(f(mx.array(x))), 2 * gelu64(x), 3e-7, 5e-7)
    y = x[:77]  # a second shape through the same shapeless trace
    assert_close("compiled gelu 2", np.asarray(f(mx.array(y))), 2 * gelu64(y), 3e-7, 5e-7)


# --- softmax ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 5), (4, 37, 129), (3, 5, 449), (2, 3, 4, 17), (3, 50, 1500)]
)
def test_softmax_shapes(path, shape):
    check_op(f"softmax {shape}", [shape], torch_softmax(), softmax, **sm_tol(path))


def test_softmax_axes(path):
    tol = sm_tol(path) | {"ref64_fn": lambda a: softmax64(a, 0)}
    check_op("softmax axis0", [(129, 5)], torch_softmax(0), lambda a: softmax(a, axis=0), **tol)
    tol["ref64_fn"] = lambda a: softmax64(a, 1)
    check_op("softmax axis1", [(3, 40, 6)], torch_softmax(1), lambda a: softmax(a, axis=1), **tol)


def test_softmax_extremes(path):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((9, 301)) * 40).astype(np.float32)
    x[0, 150:] = -np.inf  # causal-mask rows
    x[1] = -np.inf  # fully masked: nan, as torch
    x[2, 7] = np.inf  # a +inf entry: nan row, as torch
    x[3, 11] = np.nan
    x[4] = np.float32(3e38)  # huge equal values: uniform
    x[5] = np.linspace(-1e4, 0, 301)  # far below exp's underflow
    x[6] = np.linspace(-103, 0, 301)  # subnormal and tiny results
    x[7] = 1e-40  # subnormal inputs
    x[8, :] = -3e38
    tol = sm_tol(path)
    check_op("softmax extremes", [x], torch_softmax(), softmax, tol["atol"], 0.0)
    check_op("softmax extremes vs f64", [x[[0, 4, 5, 6, 7, 8]]], torch_softmax(), softmax, **tol)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_softmax_low_precision(path, dtype):
    check_op("softmax", [(3, 17, 200)], torch_softmax(), softmax, 3e-7, ULP1[dtype], dtype=dtype)


def test_softmax_in_place_and_views(path):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 70, 90)) * 4).astype(np.float32)
    # a temporary input is donated and overwritten in place; a view is copied first
    got = np.asarray(softmax(mx.array(x) * 1.0))
    a64 = SM_ATOL64[path]
    assert_close("softmax donated", got, softmax64(x.astype(np.float64)), a64, 0.0)
    got = np.asarray(softmax(mx.array(x).transpose(0, 2, 1)))
    want = softmax64(x.transpose(0, 2, 1).astype(np.float64))
    assert_close("softmax transposed view", got, want, a64, 0.0)


# --- the extension itself ---------------------------------------------------------------------
@pytest.mark.skipif(not BUILT, reason="extension not built: run mlx_impl/_cpu_ext/build.py")
def test_extension_info_and_errors():
    info = _cpu_ext.cpu_kernels_info()
    assert info["error"] is None and info["extension"], f"extension not usable: {info}"
    assert info["threads"] >= 1, info
    ext = _cpu_ext.kernels()
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        ext.gelu_erf(mx.array([1, 2, 3]))
    with pytest.raises(ValueError, match="scalar"):
        ext.softmax_lastaxis(mx.array(1.0))
    empty = ext.softmax_lastaxis(mx.zeros((0, 4)))
    mx.eval(empty)
    assert empty.shape == (0, 4), empty.shape


# --- fused attention ----------------------------------------------------------------------------
ATTENTION_SEEDS = 16


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
@pytest.mark.parametrize("shape", [(1, 2, 5, 8, 7, 8), (2, 3, 600, 16, 530, 12),
                                   (1, 1, 1, 64, 1500, 64)])
def test_attention_matches_unfused_and_float64(shape):
    # (B, H, T, D, S, Dv); T = 600 > the 256-row query block, so blocks are stitched
    b, h, t, d, s, dv = shape
    errs = []  # (fused, unfused ops) max abs error from float64, one pair per seed
    for seed in range(ATTENTION_SEEDS):
        rng = np.random.default_rng(seed)
        q = rng.standard_normal((b, h, t, d)).astype(np.float32)
        kt = (rng.standard_normal((b, h, d, s)) * 0.5).astype(np.float32)
        v = rng.standard_normal((b, h, s, dv)).astype(np.float32)
        got = np.asarray(_cpu_ext.kernels().attention(mx.array(q), mx.array(kt), mx.array(v)))
        unfused = np.asarray(softmax(mx.array(q) @ mx.array(kt)) @ mx.array(v))
        # The kernel divides (e @ v) by the row sums instead of forming the probabilities e / sum
        # first, and its sgemm/sgemv blocks differ from MLX's batched products, so the two round
        # differently. Measured over seeds 0-319, MKL 2026.2 and OpenBLAS 0.3.21 on a 2-core
        # AMD EPYC (AVX-512): at most 2.9e-6 (MKL) and 5.9e-6 (OpenBLAS, the one-row shape) apart.
        assert_close(f"attention vs unfused (seed {seed})", got, unfused, 6e-6, 0.0)
        sc = q.astype(np.float64) @ kt.astype(np.float64)
        p = np.exp(sc - sc.max(-1, keepdims=True))
        want = (p / p.sum(-1, keepdims=True)) @ v.astype(np.float64)
        # measured from float64 over seeds 0-319, both BLAS: kernel <= 3.4e-6, unfused ops 5.6e-6
        assert_close(f"attention vs float64 (seed {seed})", got, want, 4e-6, 0.0)
        errs.append((np.abs(got - want).max(), np.abs(unfused - want).max()))
    # And no less accurate than the unfused ops, on average over the seeds. Both errors are
    # dominated by the fp32 rounding of the scores (rounding exact scores alone moves the one-row
    # outputs by up to 7.5e-7), so per seed the comparison is a coin toss: over seeds 0-319 the
    # fused/unfused ratio has median 0.4-1.06 and max 2.8, and up to 27% of seeds exceed 1.25 (the
    # one-row shape with seed 0 under MKL on AMD: 9.3e-7 vs 3.4e-7). The mean over 16 seeds is
    # stable: across the 20 disjoint 16-seed groups of seeds 0-319 its ratio is at most 1.19 (MKL)
    # and 1.19 (OpenBLAS) for every shape; seeds 0-15, the ones used here, at most 1.16.
    err, err_unfused = np.mean(errs, axis=0)
    assert err <= 1.25 * err_unfused, (
        f"fused attention {err:.3g} mean max-abs error from float64 over {ATTENTION_SEEDS} "
        f"seeds, unfused ops {err_unfused:.3g}")


@pytest.mark.skipif(not BUILT, reason="extension not built")
def test_attention_rejects_bad_shapes():
    ext = _cpu_ext.kernels()
    q, kt, v = mx.zeros((1, 2, 3, 4)), mx.zeros((1, 2, 4, 5)), mx.zeros((1, 2, 5, 6))
    with pytest.raises(ValueError, match="expected q"):
        ext.attention(q, mx.zeros((1, 2, 3, 5)), v)
    with pytest.raises(ValueError, match="leading axes"):
        ext.attention(q, mx.zeros((1, 3, 4, 5)), v)
    with pytest.raises(ValueError, match="float32"):
        ext.attention(q.astype(mx.float16), kt, v)


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
@pytest.mark.parametrize("shape", [(1, 1, 48, 3, 16, 53, 8), (2, 2, 48, 3, 16, 53, 8),
                                   (2, 40, 48, 3, 16, 53, 4),
                                   (1, 600, 64, 8, 64, 600, 64)])
def test_multihead_attention_matches_float64_and_split_layout(shape):
    # (B, T, C, H, D, S, Dv), C = H * D, D a power of 4; T = 600 > the 256-row query block
    b, t, c, h, d, s, dv = shape
    c = h * d
    rng = np.random.default_rng(1)
    q = rng.standard_normal((b, t, c)).astype(np.float32)
    k = (rng.standard_normal((b, s, c)) * 0.5).astype(np.float32)
    v = rng.standard_normal((b, s, h * dv)).astype(np.float32)
    scale = d**-0.5
    ext = _cpu_ext.kernels()
    got = np.asarray(ext.multihead_attention(mx.array(q), mx.array(k), mx.array(v), h, scale))
    assert got.shape == (b, t, h * dv)

    def heads(x, n):  # (B, N, H*E) -> (B, H, N, E)
        return x.reshape(b, n, h, -1).transpose(0, 2, 1, 3)

    q64, k64, v64 = heads(q, t).astype(np.float64), heads(k, s).astype(np.float64), heads(v, s)
    sc = scale * (q64 @ k64.transpose(0, 1, 3, 2))
    p = np.exp(sc - sc.max(-1, keepdims=True))
    want = ((p / p.sum(-1, keepdims=True)) @ v64.astype(np.float64)).transpose(0, 2, 1, 3)
    # measured from float64: <= 2.5e-6 (outputs ~1, sums of up to 600 terms), as `attention`
    assert_close("multihead vs float64", got, want.reshape(b, t, h * dv), 4e-6, 0.0)
    # the split layout with the scale pre-applied to q (exact: d is a power of 4, scale 2**-k)
    split = ext.attention(mx.array(heads(q, t) * np.float32(scale)),
                          mx.array(heads(k, s).transpose(0, 1, 3, 2).copy()), mx.array(heads(v, s)))
    split = np.asarray(split).transpose(0, 2, 1, 3).reshape(b, t, h * dv)
    if t > 2:  # both run the same sgemm calls on the same values: the same bits
        np.testing.assert_array_equal(got, split)
    else:  # one or two query rows run as sgemv, over K (S, D) here and K^T (D, S) there: the
        # dot products sum in different orders (measured 3e-8 on outputs ~0.1)
        assert_close("multihead vs split layout (sgemv)", got, split, 2e-7, 0.0)


@pytest.mark.skipif(not BUILT, reason="extension not built")
def test_multihead_attention_rejects_bad_shapes():
    ext = _cpu_ext.kernels()
    q, k, v = mx.zeros((1, 5, 12)), mx.zeros((1, 7, 12)), mx.zeros((1, 7, 6))
    with pytest.raises(ValueError, match="divide"):
        ext.multihead_attention(q, k, v, 5, 1.0)
    with pytest.raises(ValueError, match="same B"):
        ext.multihead_attention(q, mx.zeros((1, 8, 12)), v, 3, 1.0)
    with pytest.raises(ValueError, match="expected q"):
        ext.multihead_attention(q[0], k, v, 3, 1.0)
    with pytest.raises(ValueError, match="float32"):
        ext.multihead_attention(q.astype(mx.float16), k, v, 3, 1.0)


# --- layer norm -------------------------------------------------------------------------------
# abs. error from float64 on rows of mean 5, std 3 (outputs up to ~11), measured: extension
# (statistics summed in double) <= 1.0e-6 at C = 37-1280, as torch's fp32; compiled fallback
# (two-level fp32 sums) <= 1.6e-6.
LN_ATOL64 = {"extension": 2e-6, "composed": 4e-6}


@pytest.mark.parametrize("path", [PATHS[0], "composed"])
@pytest.mark.parametrize("shape", [(1, 1, 512), (1, 1500, 384), (2, 7, 1280), (3, 50, 37)])
def test_layer_norm(path, shape, monkeypatch):
    if path == "composed":
        monkeypatch.setattr(activations._cpu_ext, "kernels", lambda: None)
    _cpu_ext._state["used"].clear()
    rng = np.random.default_rng(5)
    c = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(np.float32)
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)

    def ln64(x, w, b):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * w + b

    a64 = LN_ATOL64[path]
    check_op(f"layer_norm {shape}", [x, w, b],
             lambda t, tw, tb: torch.nn.functional.layer_norm(t, (c,), tw, tb, 1e-5),
             lambda a, aw, ab: layer_norm(a, aw, ab, 1e-5), a64 + 1.2e-6, 0.0,
             ref64_fn=ln64, atol64=a64, rtol64=0.0)
    assert _cpu_ext.cpu_kernels_info()["used"] == {"layer_norm": path}


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
def test_softmax_extension_no_subnormal_results():
    # subnormal probabilities made the attention's next product ~10x slower on x86: the
    # extension returns zeros below the smallest normal float (a change < 1.2e-38)
    x = np.concatenate([[0.0], -np.linspace(80.0, 110.0, 3001)]).astype(np.float32)[None]
    got = np.asarray(_cpu_ext.kernels().softmax_lastaxis(mx.array(x)))
    tiny = np.finfo(np.float32).tiny
    assert not np.any((got != 0) & (got < tiny)), "subnormal softmax results"
    assert np.all(got[x < -87.34] == 0) and np.all(got[x > -87.33] >= tiny)
    assert_close("softmax near the flush", got, softmax64(x.astype(np.float64)), tiny, 2e-7,
                 inputs=x)


@pytest.mark.skipif(not BUILT, reason="extension not built")
def test_strided_inputs_read_like_contiguous_ones():
    # The ops read row-contiguous inputs in place and copy any other layout inside the op
    # (ops.cpp `Packed`): transposed, sliced with a step, and broadcast views must give exactly
    # the result of the same values made contiguous.
    ext = _cpu_ext.kernels()
    rng = np.random.default_rng(3)
    base = mx.array(rng.standard_normal((6, 40, 24)).astype(np.float32))
    views = {
        "transposed": base.transpose(1, 0, 2)[:, :5],  # (40, 5, 24)
        "stepped": base[:, ::2, :][:5],  # (5, 20, 24)
        "broadcast": mx.broadcast_to(base[0, 0], (5, 7, 24)),
    }
    w = mx.array(rng.standard_normal((16, 24)).astype(np.float32))
    bias = mx.array(rng.standard_normal(16).astype(np.float32))
    gamma = mx.array(rng.standard_normal(24).astype(np.float32))
    beta = mx.array(rng.standard_normal(24).astype(np.float32))
    for name, v in views.items():
        c = mx.array(np.array(v))  # the same values, row-contiguous
        for op, f in {
            "matvec": lambda a: ext.matvec(a[:1, :1], w, bias),
            "layer_norm": lambda a: ext.layer_norm(a, gamma, beta, 1e-5),
            "gelu": ext.gelu_erf,
            "softmax": ext.softmax_lastaxis,
            "multihead_attention": lambda a: ext.multihead_attention(a, a, a, 3, 0.25),
        }.items():
            np.testing.assert_array_equal(np.array(f(v)), np.array(f(c)), err_msg=f"{op} {name}")
    # strided weight and bias
    wt = mx.array(rng.standard_normal((24, 16)).astype(np.float32)).T
    x = base[0, :1]
    np.testing.assert_array_equal(np.array(ext.matvec(x, wt, bias[::1])),
                                  np.array(ext.matvec(x, mx.array(np.array(wt)), bias)))


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
def test_logsumexp_lastaxis_values_and_special_rows():
    ext = _cpu_ext.kernels()
    x = (np.random.default_rng(3).standard_normal((2, 3, 1001)) * 8).astype(np.float32)
    x64 = x.astype(np.float64)
    m = x64.max(-1)
    want = m + np.log(np.exp(x64 - m[..., None]).sum(-1))
    got = np.asarray(ext.logsumexp_lastaxis(mx.array(x)))
    assert got.shape == (2, 3) and got.dtype == np.float32
    # the sum is in float64 and one log is taken: within half an ulp of float32 here (values ~30)
    assert_close("logsumexp vs float64", got, want, 2e-6, 0.0)
    # float16 input: the same math on the widened values, float32 out
    h = mx.array(x).astype(mx.float16)
    h64 = np.asarray(h.astype(mx.float32)).astype(np.float64)
    mh = h64.max(-1)
    want_h = mh + np.log(np.exp(h64 - mh[..., None]).sum(-1))
    assert_close("logsumexp float16 in", np.asarray(ext.logsumexp_lastaxis(h)), want_h, 2e-6, 0.0)
    special = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 1.0], [1.0, np.nan]],
                       dtype=np.float32)
    got = np.asarray(ext.logsumexp_lastaxis(mx.array(special)))
    np.testing.assert_array_equal(got[:2], [-np.inf, np.inf])  # as torch.logsumexp
    assert np.isnan(got[2:]).all()
    with pytest.raises(ValueError, match="last axis is not empty"):
        ext.logsumexp_lastaxis(mx.zeros((3, 0)))
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        ext.logsumexp_lastaxis(mx.array([1, 2]))


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
def test_threading_runtime_is_reported():
    info = _cpu_ext.cpu_kernels_info()
    assert info["threading"] in ("openmp", "std::thread")
    if sys.platform.startswith("linux"):
        # g++ has OpenMP: the kernels share the OpenMP pool with MKL's GNU threading layer
        assert info["threading"] == "openmp", info


# --- set-up without the extension ---------------------------------------------------------------
def _module_files():
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns)
            for p in _cpu_ext._HERE.glob("_kernels*")}


def test_failed_build_warns_and_setup_goes_on(tmp_path):
    # What scripts/setup.sh runs (`build.py --optional`) with a compiler that always fails
    # (CXX=false; a fresh build dir, so CMake really asks for it): exit 0 and a warning that names
    # the fallback; nothing installed or removed. Without --optional the same build fails.
    cmd = [sys.executable, str(_cpu_ext._HERE / "build.py"), "--build-dir", str(tmp_path / "b")]
    env = dict(os.environ, CXX="false")
    before = _module_files()
    r = subprocess.run(cmd + ["--optional"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"--optional build exited {r.returncode}: {r.stderr[-2000:]}"
    assert "cpu_ext: WARNING: build failed" in r.stderr and "compiled-MLX fallback" in r.stderr, (
        r.stderr[-2000:])
    assert "cpu_ext: built" not in r.stdout, r.stdout
    assert _module_files() == before
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "CalledProcessError" in r.stderr, (r.returncode, r.stderr[-2000:])
    assert _module_files() == before


def test_no_module_runs_the_fallback(tmp_path, monkeypatch):
    # No .so next to the package (a failed or skipped build): kernels() is None, the error says
    # how to build, and the layers run the compiled fallback, still within its float64 bounds.
    monkeypatch.setattr(_cpu_ext, "_HERE", tmp_path)
    for key, value in (("loaded", False), ("module", None), ("error", None), ("used", {})):
        monkeypatch.setitem(_cpu_ext._state, key, value)
    assert _cpu_ext.kernels() is None
    info = _cpu_ext.cpu_kernels_info()
    assert info["extension"] is None, info
    assert "not built" in info["error"] and "build.py" in info["error"], info
    x = np.linspace(-12, 12, 4097, dtype=np.float32)
    assert_close("gelu without the module", np.asarray(gelu(mx.array(x))),
                 gelu64(x.astype(np.float64)), GELU_TOL["atol64"], GELU_TOL["rtol64"])
    rows = np.random.default_rng(0).standard_normal((4, 1500)).astype(np.float32) * 8
    assert_close("softmax without the module", np.asarray(softmax(mx.array(rows))),
                 softmax64(rows.astype(np.float64)), SM_ATOL64["compiled fallback"], 0.0)
    assert set(_cpu_ext.cpu_kernels_info()["used"].values()) == {"compiled fallback"}


# --- sin and Snake ------------------------------------------------------------------------------
def sin_ulps(got, x):
    """|got - sin(x)| in units of the float32 spacing at the float64 result (float64 reference)."""
    want = np.sin(x.astype(np.float64))
    spacing = np.maximum(np.spacing(np.abs(want).astype(np.float32)).astype(np.float64), 2.0**-149)
    return np.abs(got.astype(np.float64) - want) / spacing


def _near_multiples_of_pio2():
    # the floats at and next to k pi/2 (k up to 636620, where |x| <= 1e6): the remainder r is
    # smallest there, so any absolute error of the reduction shows up as relative error
    m = (np.arange(-636_000, 636_001, 7, dtype=np.float64) * (np.pi / 2)).astype(np.float32)
    return np.concatenate([np.nextafter(m, np.float32(np.inf)), m,
                           np.nextafter(m, np.float32(-np.inf))])


_SIN_RNG = np.random.default_rng(11)
SIN_SWEEPS = {  # name: (inputs, max ulp from float64 allowed)
    # measured max ulp (build x86-64-v4; every level gives the same bits): 1.47 at -22.24
    "normal |x| <= 100": (np.linspace(-100, 100, 2_000_001, dtype=np.float32), 2.0),
    # measured 1.50 (uniform in [-1e6, 1e6], the largest range the double reduction covers)
    "|x| <= 1e6": (_SIN_RNG.uniform(-1e6, 1e6, 1_000_000).astype(np.float32), 2.0),
    # measured 1.31: the double reduction keeps r accurate next to the multiples of pi/2
    "next to k pi/2": (_near_multiples_of_pio2(), 2.0),
    # |x| > 1e6 goes through double std::sin and one rounding: measured 0.50 (x up to 1e30)
    "1e6 < |x| <= 1e30": ((10.0 ** _SIN_RNG.uniform(6, 30, 200_000)
                           * np.sign(_SIN_RNG.standard_normal(200_000))).astype(np.float32), 0.5),
    # sin(x) = x exactly below ~1e-4 in float32 for subnormals and tiny normals: measured 0
    "subnormal and tiny": (np.concatenate([_SIN_RNG.uniform(-1, 1, 2000) * 1e-38,
                                           _SIN_RNG.uniform(-1, 1, 2000) * 1e-30,
                                           [1e-45, -1e-45, 0.0, -0.0]]).astype(np.float32), 0.5),
}


@pytest.mark.skipif(not BUILT, reason="extension not built: run "
                    ".venv/bin/python mlx_impl/_cpu_ext/build.py")
@pytest.mark.parametrize("sweep", list(SIN_SWEEPS))
def test_sin_ulp_error_vs_float64(sweep):
    x, bound = SIN_SWEEPS[sweep]
    got = np.asarray(_cpu_ext.kernels().sin(mx.array(x)))
    ulps = sin_ulps(got, x)
    i = int(np.argmax(ulps))
    assert ulps[i] <= bound, (f"sin {sweep}: {ulps[i]:.3f} ulp > {bound} at x = {x[i]!r}: got "
                              f"{got[i]!r}, float64 {np.sin(np.float64(x[i]))!r}")


@pytest.mark.skipif(not BUILT, reason="extension not built")
def test_sin_special_values_and_lengths():
    ext = _cpu_ext.kernels()
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e6, -1e6, 1.0000001e6, 3.4e38],
                 np.float32)
    got = np.asarray(ext.sin(mx.array(x)))
    assert np.isnan(got[:3]).all(), got  # inf and nan -> nan, as torch
    assert got[3] == 0 and not np.signbit(got[3]) and got[4] == 0 and np.signbit(got[4]), got
    assert sin_ulps(got[5:], x[5:]).max() <= 2.0, got
    # every length through the 16-lane loop and its scalar remainder: the same bits per element
    v = np.linspace(-50, 50, 4096 * 2 + 37, dtype=np.float32)
    whole = np.asarray(ext.sin(mx.array(v)))
    for n in (1, 15, 16, 17, 33):
        np.testing.assert_array_equal(np.asarray(ext.sin(mx.array(v[:n]))), whole[:n])
    h = mx.array(v).astype(mx.float16)  # fp16: fp32 math, rounded once
    want = np.sin(np.asarray(h.astype(mx.float32)).astype(np.float64))
    got_h = np.asarray(ext.sin(h).astype(mx.float32))
    assert_close("sin float16", got_h, want, 2.0**-25, ULP1["float16"] / 2 + 2e-7)


def torch_snake_cl(x, alpha, inv_beta_src):
    """torch's Snake formula (DAC / BigVGAN) in float32 on channels-last arrays."""
    t = torch.from_numpy(x)
    a = torch.from_numpy(alpha)
    b = torch.from_numpy(inv_beta_src)
    return (t + (b + 1e-9).reciprocal() * torch.sin(a * t).pow(2)).numpy()


def snake64(x, alpha, beta):
    """float64 Snake on the float32 values alpha x (the argument both sides form in float32)."""
    arg = (alpha * x).astype(np.float32).astype(np.float64)
    inv = (1.0 / (beta.astype(np.float32) + np.float32(1e-9))).astype(np.float32)
    return x.astype(np.float64) + inv.astype(np.float64) * np.sin(arg) ** 2


SNAKE_PATHS = [PATHS[0], "composed"]


@pytest.fixture(params=SNAKE_PATHS)
def snake_path(request, monkeypatch):
    if request.param == "composed":
        monkeypatch.setattr(_cpu_ext, "kernels", lambda: None)
    _cpu_ext._state["used"].clear()
    yield request.param
    assert _cpu_ext.cpu_kernels_info()["used"] == {"snake": request.param}


# Snake vs torch's formula in float32 on the same inputs, and vs float64. Measured on x ~ N(0, 4)
# with alpha in [0.1, 3] (outputs up to ~40) and every 97th x scaled by 250 (alpha x up to ~3e3),
# errors relative to max(|y|, 1): extension 3.37e-7 from float64 (torch's own 3.34e-7; the
# composed MLX ops the same), 5.1e-7 from torch; the scaled elements 5.5e-8 relative (as torch).
SNAKE_TOL = {"atol": 6e-7, "rtol": 6e-7}
SNAKE_TOL64 = {"atol": 4e-7, "rtol": 4e-7}


@pytest.mark.parametrize("shape", [(2, 300, 12), (1, 1000, 1), (3, 1000, 7), (2, 40, 64),
                                   (1, 3, 5000)])
def test_snake_vs_torch_and_float64(snake_path, shape):
    # C = 1 / 7: alpha tiled over 4096-element blocks with a remainder; C = 5000 > one block
    rng = np.random.default_rng(shape[-1])
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x.reshape(-1)[::97] *= 250  # some arguments alpha x in the thousands
    alpha = rng.uniform(0.1, 3, shape[-1]).astype(np.float32)
    got = np.asarray(snake(mx.array(x), mx.array(alpha)))
    assert_close(f"snake {shape} vs torch", got, torch_snake_cl(x, alpha, alpha), **SNAKE_TOL)
    assert_close(f"snake {shape} vs float64", got, snake64(x, alpha, alpha), **SNAKE_TOL64)


def test_snake_beta_special_inputs(snake_path):
    x = np.array([[0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -3e38, 1e-40, 2e6, 1.5]],
                 np.float32)
    alpha = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], np.float32)
    beta = np.array([0.5, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 1.0, 0.25, 1.0], np.float32)
    got = np.asarray(snake(mx.array(x), mx.array(alpha), mx.array(beta)))
    want = torch_snake_cl(x, alpha, beta)
    # inf and nan give nan (torch: inf + nan); alpha = 0 gives x; 2e6 takes the std::sin fix-up
    assert_close("snake specials vs torch", got, want, 2e-6, 2e-7, match_nonfinite=True)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_snake_low_precision(snake_path, dtype):
    # x, alpha and beta all in dtype (the composed form's result dtype is then dtype). The
    # extension computes in fp32 from the rounded values and rounds once: measured 0.495 (fp16)
    # and 0.498 (bf16) ulp of the format from float64; the composed MLX ops round every step
    # (alpha x, sin, square, product, sum): measured 3.6 (fp16) and 4.3 (bf16) ulp.
    mdt = {"float16": mx.float16, "bfloat16": mx.bfloat16}[dtype]
    rng = np.random.default_rng(4)
    x = mx.array((rng.standard_normal((2, 500, 24)) * 3).astype(np.float32)).astype(mdt)
    alpha = mx.array(rng.uniform(0.2, 2, 24).astype(np.float32)).astype(mdt)
    out = snake(x, alpha)
    assert out.dtype == mdt, out.dtype
    x32, a32 = (np.asarray(v.astype(mx.float32)) for v in (x, alpha))
    inv = np.asarray(mx.reciprocal(alpha + 1e-9).astype(mx.float32)).astype(np.float64)
    want = x32.astype(np.float64) + inv * np.sin((a32 * x32).astype(np.float64)) ** 2
    rtol = {"extension": ULP1[dtype] / 2 + 1e-6, "composed": 5 * ULP1[dtype]}[snake_path]
    assert_close(f"snake {dtype}", np.asarray(out.astype(mx.float32)), want, 1e-3 * ULP1[dtype],
                 rtol)


def test_snakebeta_module_uses_the_selected_path(snake_path):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((1, 50, 6)) * 3).astype(np.float32)
    la, lb = rng.uniform(-1, 1, (2, 6)).astype(np.float32)
    m = SnakeBeta(6, logscale=True)
    m.alpha, m.beta = mx.array(la), mx.array(lb)
    a, b = np.exp(la.astype(np.float64)), np.exp(lb.astype(np.float64))
    want = x + (1 / (b + 1e-9)) * np.sin(a * x) ** 2
    assert_close("SnakeBeta", np.asarray(m(mx.array(x))), want, 2e-6, 2e-7)


@pytest.mark.skipif(not BUILT, reason="extension not built")
def test_snake_extension_views_donation_and_errors():
    ext = _cpu_ext.kernels()
    rng = np.random.default_rng(8)
    base = (rng.standard_normal((40, 3, 24)) * 3).astype(np.float32)
    a = mx.array(rng.uniform(0.1, 3, 24).astype(np.float32))
    ib = mx.reciprocal(a + 1e-9)
    view = mx.array(base).transpose(1, 0, 2)  # strided: gathered inside the op
    want = np.asarray(ext.snake(mx.array(np.ascontiguousarray(base.transpose(1, 0, 2))), a, ib))
    np.testing.assert_array_equal(np.asarray(ext.snake(view, a, ib)), want)
    donated = ext.snake(mx.array(base).transpose(1, 0, 2) * 1.0, a, ib)  # a temporary: in place
    np.testing.assert_array_equal(np.asarray(donated), want)
    with pytest.raises(ValueError, match="float32 alpha"):
        ext.snake(view, a.astype(mx.float16), ib)
    with pytest.raises(ValueError, match="channels-last"):
        ext.snake(view, a[:5], ib)
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        ext.snake(mx.array([[1, 2]]), a[:2], ib[:2])
