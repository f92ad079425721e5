"""Op-level parity of mlx_impl.layers activations and norm against torch (fp32, fp16, bf16).

One line per op check (tinygrad style). Every check compares against torch's fp32 result and, for
fp32 inputs, against a float64 reference; special values (+-inf, nan) must agree exactly.

Tolerances (measured on this 2-core x86 CPU, MLX 0.32.4, torch 2.13.0):
- exp: ours <= 0.97 ulp from float64, torch <= 0.56 ulp; checked as rtol 2.5e-7 (2 ulp).
- erf: ours <= 7.5e-8 abs from float64 (1.26 ulp), torch 6.0e-8; atol 1.5e-7.
- gelu: ours <= 3.8e-7 abs from float64 on |x| <= 12 (0.8 ulp of 4.9; 4.8e-8 on x < 0), torch
  1.1e-6 (x >= 0, ~2 ulp) and 1.06e-6 on x < 0 (its 0.5 * (1 + erf) cancels); so the check against
  torch carries torch's own error, atol 1.2e-6, and the tight check is against float64:
  atol 1.5e-7 + rtol 2.5e-7. torch's fp16/bf16 gelu inherits the same fp32 cancellation.
- softmax: max abs vs float64 2.1e-7 on probabilities (torch 1.1e-7); atol 3e-7 both ways.
- layer_norm: ours <= 1.6e-6 from float64 (rows of mean 5, std 3; outputs up to ~11), torch
  1.3e-6, ours - torch <= 2.4e-6; atol 4e-6 both ways.
- fp16/bf16: computed in fp32 and rounded once, as torch's CPU kernels; 1 ulp of the format.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import scipy.special as sp
import torch

import mlx_impl  # noqa: F401  (preloads OpenBLAS if nothing imported mlx yet)
from mlx_impl import _cpu_ext
from mlx_impl.layers.activations import erf, exp, gelu, logsumexp, softmax
from mlx_impl.layers.norm import LayerNorm, layer_norm
from tests.helpers import assert_close

MX_DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ULP1 = {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}  # relative spacing at 1


def check_op(
    name,
    shapes_or_inputs,
    torch_fn,
    mlx_fn,
    atol,
    rtol,
    dtype="float32",
    ref64_fn=None,
    atol64=None,
    rtol64=None,
    seed=0,
):
    """Run mlx_fn and torch_fn on the same inputs (shapes -> random normal * 3, or arrays) in
    `dtype`; compare with torch at (atol, rtol) and, if given, with a float64 reference."""
    rng = np.random.default_rng(seed)
    inputs = [
        np.asarray(s, dtype=np.float32)
        if not isinstance(s, tuple)
        else (rng.standard_normal(s) * 3).astype(np.float32)
        for s in shapes_or_inputs
    ]
    tin = [torch.from_numpy(a).to(TORCH_DTYPES[dtype]) for a in inputs]
    # the exact values each side sees (rounded to dtype)
    seen = [t.float().numpy() for t in tin]
    want = torch_fn(*tin).float().numpy()
    out = mlx_fn(*[mx.array(a).astype(MX_DTYPES[dtype]) for a in seen])
    if out.dtype != MX_DTYPES[dtype]:
        raise AssertionError(f"{name}: output dtype {out.dtype}, expected {MX_DTYPES[dtype]}")
    got = np.asarray(out.astype(mx.float32))
    assert_close(f"{name}[{dtype}] vs torch", got, want, atol, rtol, inputs=seen[0],
                 match_nonfinite=True)
    if ref64_fn is not None:
        with np.errstate(all="ignore"):
            ref = ref64_fn(*[a.astype(np.float64) for a in seen])
        if dtype != "float32":
            ref = torch.from_numpy(ref).to(TORCH_DTYPES[dtype]).double().numpy()
        else:  # values beyond the fp32 range become +-inf, as an fp32 result must
            with np.errstate(over="ignore"):
                ref32 = ref.astype(np.float32)
            ref = np.where(np.isfinite(ref32) | np.isnan(ref), ref, ref32)
        assert_close(f"{name}[{dtype}] vs float64", got, ref, atol64, rtol64, inputs=seen[0],
                     match_nonfinite=True)


# --- inputs -----------------------------------------------------------------------------------
# fmt: off
SPECIAL = [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1e-30, 1.1754944e-38, 0.5, 1.0, -1.0,
           1.4142135, 3.9, -3.9, 5.0, -5.0, 10.0, -10.0, 87.3, -87.3, 88.7, 88.72, 89.0, -103.2,
           -103.3, -104.0, 200.0, -200.0, 3e38, -3e38, np.inf, -np.inf, np.nan]
# fmt: on
SWEEP = np.concatenate([np.linspace(-12, 12, 200_001), np.array(SPECIAL)]).astype(np.float32)
WIDE = np.concatenate([np.linspace(-110, 95, 100_001), np.array(SPECIAL)]).astype(np.float32)


def gelu64(x):
    return x * 0.5 * sp.erfc(-x / np.sqrt(2.0))


def softmax64(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


# --- activations ------------------------------------------------------------------------------
def test_exp_fp32():
    # 3e-45 = 2 subnormal steps: relative error means nothing for subnormal results
    check_op(
        "exp", [WIDE], torch.exp, exp, 3e-45, 2.5e-7, ref64_fn=np.exp, atol64=3e-45, rtol64=2.5e-7
    )


def test_exp_subnormal_results():
    x = np.linspace(-103.2, -87.4, 2001).astype(np.float32)
    # subnormal outputs have absolute spacing 1.4e-45: compare absolutely there
    check_op(
        "exp subnormal", [x], torch.exp, exp, 3e-45, 0.0, ref64_fn=np.exp, atol64=3e-45, rtol64=0.0
    )


def test_erf_fp32():
    check_op(
        "erf", [SWEEP], torch.erf, erf, 1.5e-7, 0.0, ref64_fn=sp.erf, atol64=1.5e-7, rtol64=0.0
    )


def test_gelu_fp32():
    # torch's fp32 kernel returns nan for gelu(+inf) and overflows to inf at 3e38 (it forms
    # x * (1 + erf) first); ours gives +inf and 3e38, as torch's fp64 kernel: checked below
    for_torch = SWEEP[~np.isin(SWEEP, np.float32([np.inf, 3e38]))]
    check_op(
        "gelu",
        [for_torch],
        torch.nn.functional.gelu,
        gelu,
        1.2e-6,
        5e-7,
        ref64_fn=gelu64,
        atol64=1.5e-7,
        rtol64=2.5e-7,
    )
    special = np.array([np.inf, -np.inf, np.nan, 3e38, -3e38], np.float32)
    got = np.asarray(gelu(mx.array(special)))
    want = torch.nn.functional.gelu(torch.from_numpy(special.astype(np.float64)))
    assert_close("gelu special vs torch fp64", got, want.numpy(), 0.0, 2.5e-7, inputs=special,
                 match_nonfinite=True)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gelu_low_precision(dtype):
    x = np.linspace(-12, 12, 20_001).astype(np.float32)
    check_op(
        "gelu",
        [x],
        torch.nn.functional.gelu,
        gelu,
        1.2e-6,
        ULP1[dtype],
        dtype=dtype,
        ref64_fn=gelu64,
        atol64=1e-9,
        rtol64=ULP1[dtype],
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_exp_erf_low_precision(dtype):
    x = np.linspace(-9, 9, 20_001).astype(np.float32)
    check_op("exp", [x], torch.exp, exp, 0.0, ULP1[dtype], dtype=dtype)
    check_op("erf", [x], torch.erf, erf, ULP1[dtype] / 2, 0.0, dtype=dtype)


def test_gelu_shapes():
    check_op(
        "gelu",
        [(2, 7, 33)],
        torch.nn.functional.gelu,
        gelu,
        1.2e-6,
        5e-7,
        ref64_fn=gelu64,
        atol64=1.5e-7,
        rtol64=2.5e-7,
    )
    check_op("gelu", [(1,)], torch.nn.functional.gelu, gelu, 1.2e-6, 5e-7)


def test_softmax_fp32():
    check_op(
        "softmax",
        [(4, 37, 129)],
        lambda t: torch.softmax(t, -1),
        softmax,
        3e-7,
        0.0,
        ref64_fn=softmax64,
        atol64=3e-7,
        rtol64=0.0,
    )
    check_op(
        "softmax prime length",
        [(3, 5, 449)],
        lambda t: torch.softmax(t, -1),
        softmax,
        3e-7,
        0.0,
        ref64_fn=softmax64,
        atol64=3e-7,
        rtol64=0.0,
    )
    check_op(
        "softmax axis0",
        [(129, 5)],
        lambda t: torch.softmax(t, 0),
        lambda a: softmax(a, axis=0),
        3e-7,
        0.0,
        ref64_fn=lambda a: softmax64(a, 0),
        atol64=3e-7,
        rtol64=0.0,
    )


def test_softmax_extremes():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 300)) * 40).astype(np.float32)
    x[0, :150] = -np.inf  # causal-mask style rows
    x[1] = -np.inf  # fully masked row: nan, as torch
    x[2, 7] = np.inf  # a +inf entry: nan row, as torch
    x[3, 11] = np.nan
    x[4] = np.float32(3e38)  # huge equal values: uniform
    x[5, :] = np.linspace(-1e4, 0, 300)  # spans far below exp's underflow
    check_op("softmax extremes", [x], lambda t: torch.softmax(t, -1), softmax, 3e-7, 0.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_softmax_low_precision(dtype):
    check_op(
        "softmax",
        [(3, 17, 200)],
        lambda t: torch.softmax(t, -1),
        softmax,
        3e-7,
        ULP1[dtype],
        dtype=dtype,
    )


@pytest.mark.parametrize("path", ["extension", "softmax"])
@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_logsumexp_fp32(scale, path, monkeypatch):
    # whisper-sized rows; measured from float64: <= 9e-7 abs at values ~30 (mx.logsumexp 4.7e-6),
    # and at scale 30 (values ~130) both 7.1e-6, half an fp32 ulp of the result
    if path == "extension" and _cpu_ext.kernels() is None:
        pytest.skip("extension not built: run .venv/bin/python mlx_impl/_cpu_ext/build.py")
    if path == "softmax":  # the form used without the extension
        monkeypatch.setattr(_cpu_ext, "kernels", lambda: None)
    x = (np.random.default_rng(0).standard_normal((3, 51865)) * scale).astype(np.float32)
    x[:, :50] += 20
    x64 = x.astype(np.float64)
    m = x64.max(-1, keepdims=True)
    want = m + np.log(np.exp(x64 - m).sum(-1, keepdims=True))
    got = np.array(logsumexp(mx.array(x), axis=-1, keepdims=True))
    assert got.shape == (3, 1)
    atol = 1.5e-6 if scale < 10 else 1.6e-5
    if path == "softmax":
        # without the extension the softmax is the compiled MLX fallback, whose exp error
        # reaches the sum: measured 2.7e-6 (scale 0.1) and 1.16e-5 (scale 3) at values ~25
        atol = 1.6e-5
    assert_close(f"logsumexp scale {scale} ({path})", got, want, atol=atol, rtol=0.0)
    assert np.array(logsumexp(mx.array(x), axis=-1)).shape == (3,)
    # along another axis, and rows that are all -inf give -inf (as mx.logsumexp)
    np.testing.assert_array_equal(np.array(logsumexp(mx.array(x.T), axis=0)), got[:, 0])
    y = np.full((2, 5), -np.inf, dtype=np.float32)
    y[1, 2] = 0.5
    np.testing.assert_array_equal(np.array(logsumexp(mx.array(y))), [-np.inf, 0.5])
    assert _cpu_ext.cpu_kernels_info()["used"]["logsumexp"] == path


def test_activations_reject_integers():
    with pytest.raises(TypeError, match="floating-point"):
        gelu(mx.array([1, 2, 3]))
    with pytest.raises(TypeError, match="floating-point"):
        softmax(mx.array([1, 2, 3]))


# --- layer norm -------------------------------------------------------------------------------
def _ln_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(np.float32)  # offset mean: a hard case
    return x, rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)


def _ln64(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


@pytest.mark.parametrize("c", [384, 512, 37])
def test_layer_norm_fp32(c):
    x, w, b = _ln_inputs((3, 50, c))
    check_op(
        f"layer_norm C={c}",
        [x, w, b],
        lambda t, tw, tb: torch.nn.functional.layer_norm(t, (c,), tw, tb, 1e-5),
        lambda a, aw, ab: layer_norm(a, aw, ab, 1e-5),
        4e-6,
        0.0,
        ref64_fn=_ln64,
        atol64=4e-6,
        rtol64=0.0,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_layer_norm_low_precision(dtype):
    x, w, b = _ln_inputs((2, 20, 256))

    def ref(t, tw, tb):  # openai-whisper's LayerNorm: fp32 compute, cast back
        return torch.nn.functional.layer_norm(t.float(), (256,), tw.float(), tb.float(), 1e-5).to(
            t.dtype
        )

    check_op(
        "layer_norm",
        [x, w, b],
        ref,
        lambda a, aw, ab: layer_norm(a, aw, ab),
        1e-6,
        ULP1[dtype],
        dtype=dtype,
    )


def test_layer_norm_module():
    x, w, b = _ln_inputs((2, 9, 64))
    m = LayerNorm(64)
    assert sorted(m.parameters()) == ["bias", "weight"], "parameter names must match upstream"
    m.update({"weight": mx.array(w), "bias": mx.array(b)})
    tm = torch.nn.LayerNorm(64)
    with torch.no_grad():
        tm.weight.copy_(torch.from_numpy(w))
        tm.bias.copy_(torch.from_numpy(b))
    want = tm(torch.from_numpy(x)).detach().numpy()
    assert_close("LayerNorm module", np.asarray(m(mx.array(x))), want, 4e-6, 0.0)
    with pytest.raises(ValueError, match="last axis"):
        m(mx.zeros((2, 3)))


# --- BLAS pick-up -----------------------------------------------------------------------------
_PROBE = """
import mlx_impl, mlx.core as mx, numpy as np, json
rng = np.random.default_rng(0)
a = rng.standard_normal((300, 512)).astype(np.float32)
b = rng.standard_normal((512, 200)).astype(np.float32)
c = np.asarray(mx.array(a) @ mx.array(b))
err = float(np.abs(c - a.astype(np.float64) @ b.astype(np.float64)).max())
import os
print(json.dumps({"info": mlx_impl.blas_info(), "err": err,
                  "timeout_env": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}))
"""


def _probe_blas(extra_env: dict | None = None) -> dict:
    import json

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
        env={"PYTHONPATH": str(root), "PATH": "", **(extra_env or {})},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("force", [None, "openblas", "bundled"])
def test_blas_pickup_in_fresh_process(force):
    """mlx_impl preloads MKL when pip's `mkl` is installed here, else the system OpenBLAS (a fresh
    process: mlx must not be imported before mlx_impl); MLX_IMPL_BLAS forces one. Whichever
    runs, matmuls stay fp32-exact to rounding."""
    from mlx_impl._blas import OPENBLAS_PATH, find_mkl

    res = _probe_blas(None if force is None else {"MLX_IMPL_BLAS": force})
    info = res["info"]
    on_linux = sys.platform.startswith("linux")
    has_openblas = on_linux and Path(OPENBLAS_PATH).exists()
    if force == "bundled":
        assert info["library"] == "bundled reference BLAS", info
    elif on_linux and force is None and find_mkl() is not None:
        assert info["library"] == "mkl", f"MKL not picked up: {info}"
        assert "MKL_THREADING_LAYER=GNU" in info["threading"], info  # see mlx_impl/_blas.py
        assert info["version"].startswith("Intel(R) oneAPI Math Kernel Library"), info
    elif has_openblas:
        assert info["library"] == "openblas", f"OpenBLAS not picked up: {info}"
        # worker threads sleep at once (not set by the user here): see mlx_impl/_blas.py
        assert info["thread_timeout"] == res["timeout_env"] == "4", res
    # 512-term fp32 dot products of N(0,1) values (|c| ~ 23-100): rounding error ~1e-5..1e-4
    assert_close(
        f"matmul max abs err vs float64 ({info['library']})",
        np.array([res["err"]]),
        np.array([0.0]),
        atol=2e-4,
        rtol=0.0,
    )


def test_blas_choice_rejects_unknown_value():
    with pytest.raises(subprocess.CalledProcessError) as e:
        _probe_blas({"MLX_IMPL_BLAS": "atlas"})
    assert "expected mkl, openblas or bundled" in e.value.stderr
