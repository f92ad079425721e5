"""mlx_impl.layers.attention against torch's scaled-dot-product attention, on every path the
module takes: the CPU kernel on (B, T, C) keys/values (unmasked, any number of queries), MLX ops
(masked, or returning the scores), and the Metal/CUDA branch (mx.fast SDPA; run here on the CPU by making
the module believe the default device is a GPU), with self- and cross-attention K/V.

Tolerance: fp32 projections and attention of N(0, 1) inputs through 0.1-scaled weights: measured
max abs 6e-7 (outputs ~0.3); atol 5e-6.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch
from tests.helpers import assert_close

import mlx_impl  # noqa: F401
from mlx_impl import _cpu_ext
from mlx_impl.layers import attention as attn_mod
from mlx_impl.layers.attention import KVCache, MultiHeadAttention, causal_mask

RNG = np.random.default_rng(0)
C, H = 64, 4


@pytest.fixture
def mha():
    m = MultiHeadAttention(C, H)
    params = {}
    for name in ("query", "key", "value", "out"):
        lin = getattr(m, name)
        lin.weight = mx.array((RNG.standard_normal((C, C)) * 0.1).astype(np.float32))
        params[f"{name}.weight"] = np.array(lin.weight)
        if "bias" in lin:
            lin.bias = mx.array((RNG.standard_normal(C) * 0.1).astype(np.float32))
            params[f"{name}.bias"] = np.array(lin.bias)
    return m, params


def torch_mha(p, x, source=None, causal_offset=None):
    t = {k: torch.from_numpy(v) for k, v in p.items()}
    xt = torch.from_numpy(x)
    st = xt if source is None else torch.from_numpy(source)

    def lin(name, v):
        y = v @ t[f"{name}.weight"].T
        return y + t[f"{name}.bias"] if f"{name}.bias" in t else y

    def heads(v):
        b, n, _ = v.shape
        return v.reshape(b, n, H, C // H).transpose(1, 2)

    q, k, v = heads(lin("query", xt)), heads(lin("key", st)), heads(lin("value", st))
    mask = None
    if causal_offset is not None:
        n, s = q.shape[2], k.shape[2]
        mask = torch.arange(s)[None, :] <= (torch.arange(n)[:, None] + causal_offset)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return lin("out", out.transpose(1, 2).reshape(x.shape[0], x.shape[1], C)).numpy()


@pytest.fixture(params=["cpu", "cpu-no-extension", "gpu-branch"])
def branch(request, monkeypatch):
    if request.param == "gpu-branch":
        class FakeGpu:  # compares unequal to mx.cpu; the ops still run on the CPU stream
            pass
        monkeypatch.setattr(attn_mod.mx, "default_device", lambda: FakeGpu())
    elif request.param == "cpu-no-extension":  # per-head layout and MLX ops on the CPU
        monkeypatch.setattr(attn_mod._cpu_ext, "kernels", lambda: None)
    return request.param


@pytest.mark.parametrize("n", [1, 5, 40])
def test_cross_attention(mha, branch, n):
    m, p = mha
    x = RNG.standard_normal((2, n, C)).astype(np.float32)
    src = RNG.standard_normal((2, 70, C)).astype(np.float32)
    kv = m.project_kv(mx.array(src))
    if m.uses_cpu_kernel(mx.array(src)):  # the projections as they are, for the kernel
        assert kv[0].shape == kv[1].shape == (2, 70, C)
    else:  # keys pre-scaled and transposed per head
        assert kv[0].shape == (2, H, C // H, 70)
    got, _ = m(mx.array(x), kv=kv)
    assert_close(f"cross n={n} ({branch})", np.array(got), torch_mha(p, x, src), atol=5e-6)


def test_self_attention_fused_kernel_path(mha):
    m, p = mha
    x = RNG.standard_normal((1, 40, C)).astype(np.float32)
    _cpu_ext._state["used"].pop("attention", None)
    got, _ = m(mx.array(x))
    if _cpu_ext.kernels() is not None:
        assert _cpu_ext.cpu_kernels_info()["used"].get("attention") == "extension"
    assert_close("self unmasked", np.array(got), torch_mha(p, x), atol=5e-6)


def test_self_attention_causal_with_cache(mha, branch):
    m, p = mha
    x = RNG.standard_normal((1, 9, C)).astype(np.float32)
    cache = KVCache()
    first, _ = m(mx.array(x[:, :6]), mask=causal_mask(6, 0), cache=cache)
    steps = [m(mx.array(x[:, i:i + 1]), cache=cache)[0] for i in range(6, 9)]
    got = np.concatenate([np.array(first)] + [np.array(s) for s in steps], axis=1)
    assert_close(f"causal + cache ({branch})", got, torch_mha(p, x, causal_offset=0), atol=5e-6)


def test_return_qk_gives_scaled_scores(mha, branch):
    m, p = mha
    x = RNG.standard_normal((1, 3, C)).astype(np.float32)
    src = RNG.standard_normal((1, 20, C)).astype(np.float32)
    out, qk = m(mx.array(x), kv=m.project_kv(mx.array(src)), return_qk=True)
    t = {k: torch.from_numpy(v) for k, v in p.items()}
    q = (torch.from_numpy(x) @ t["query.weight"].T + t["query.bias"]).reshape(1, 3, H, -1)
    k = (torch.from_numpy(src) @ t["key.weight"].T).reshape(1, 20, H, -1)
    want = torch.einsum("bthd,bshd->bhts", q, k) / (C // H) ** 0.5
    assert_close("qk scores", np.array(qk), want.numpy(), atol=5e-6)
    assert_close("out with qk", np.array(out), torch_mha(p, x, src), atol=5e-6)
