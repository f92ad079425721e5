"""mlx_impl.layers.attention against torch's scaled-dot-product attention.

The core `scaled_dot_product_attention` on each backend (the CPU extension's kernel, MLX ops,
and `mx.fast` as on Metal/CUDA, run here on the CPU by making the module believe the default
device is a GPU), grouped-query heads (8/2, 4/1, 4/4), additive and boolean masks of every
broadcast shape, against torch's SDPA in float64: measured max abs 3.9e-7 (kernel), 8.6e-7
(MLX ops), 6.4e-7 (mx.fast) on outputs ~1; atol 2e-6. float16 inputs (MLX ops): 1.8e-3 over
five draws (fp16 rounding of q, k, v, the weights and the output); atol 4e-3.

Whisper's `MultiHeadAttention` on every path it takes: the CPU kernel on (B, T, C) keys/values (unmasked, any number of queries), MLX ops
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
from mlx_impl.layers.attention import (KVCache, MultiHeadAttention, causal_mask,
                                       scaled_dot_product_attention)

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


def torch_sdpa64(q, k, v, scale, mask):
    """torch's SDPA in float64 (K/V heads repeated for grouped queries), in (B, H, T, D)."""
    rep = q.shape[1] // k.shape[1]
    qt, kt, vt = (torch.from_numpy(a.astype(np.float64)) for a in (q, k, v))
    kt, vt = kt.repeat_interleave(rep, 1), vt.repeat_interleave(rep, 1)
    m = None if mask is None else torch.from_numpy(
        mask if mask.dtype == bool else mask.astype(np.float64))
    return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=m,
                                                            scale=scale).numpy()


MASKS = {
    "none": lambda b, h, t, s: None,
    "causal (T, S)": lambda b, h, t, s: np.array(causal_mask(t, s - t)),
    "additive (B, 1, T, S)": lambda b, h, t, s: RNG.standard_normal((b, 1, t, s)).astype(
        np.float32),
    "additive (B, H, T, S)": lambda b, h, t, s: RNG.standard_normal((b, h, t, s)).astype(
        np.float32),
    "bool (B, 1, 1, S)": lambda b, h, t, s: np.arange(s)[None, None, None, :]
    < np.array([s, s - 3])[:b, None, None, None],
    "bool (B, H, T, S)": lambda b, h, t, s: RNG.random((b, h, t, s)) > 0.3,
}


@pytest.mark.parametrize("heads", [(4, 4), (8, 2), (4, 1)])
@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("t", [1, 7])
def test_core_matches_torch(branch, heads, mask_kind, t):
    h, h_kv = heads
    b, s, d = 2, 9, 16
    q = RNG.standard_normal((b, h, t, d)).astype(np.float32)
    k, v = (RNG.standard_normal((b, h_kv, s, d)).astype(np.float32) for _ in range(2))
    mask = MASKS[mask_kind](b, h, t, s)
    if mask is not None and mask.dtype == bool:
        mask[..., 0] = True  # no fully masked row (torch gives nan there, as we do)
    _cpu_ext._state["used"].pop("attention", None)
    got = scaled_dot_product_attention(mx.array(q), mx.array(k), mx.array(v), d ** -0.5,
                                       None if mask is None else mx.array(mask))
    want = torch_sdpa64(q, k, v, d ** -0.5, mask)
    assert_close(f"core {branch} heads={heads} mask={mask_kind} t={t}", np.array(got), want,
                 atol=2e-6)
    kernel = branch == "cpu" and mask is None and _cpu_ext.kernels() is not None
    assert (_cpu_ext.cpu_kernels_info()["used"].get("attention") == "extension") == kernel


def test_core_float16_and_prescaled_keys():
    b, h, t, s, d = 1, 4, 5, 11, 64
    q, k, v = (RNG.standard_normal((b, h, n, d)).astype(np.float32) for n in (t, s, s))
    mask = np.array(causal_mask(t, s - t))
    want = torch_sdpa64(q, k, v, d ** -0.5, mask)
    got = scaled_dot_product_attention(*(mx.array(a, dtype=mx.float16) for a in (q, k, v)),
                                       d ** -0.5, mx.array(mask))
    assert got.dtype == mx.float16
    assert_close("core fp16", np.array(got.astype(mx.float32)), want, atol=4e-3)
    # openai-whisper's split scaling: k pre-scaled by d**-0.25, the other half on q
    half = d ** -0.25
    got = scaled_dot_product_attention(mx.array(q), mx.array(k) * half, mx.array(v), half)
    assert_close("core split scale", np.array(got), torch_sdpa64(q, k, v, d ** -0.5, None),
                 atol=2e-6)


def test_core_rejects_uneven_groups():
    with pytest.raises(ValueError, match="multiple of the key/value heads"):
        scaled_dot_product_attention(mx.zeros((1, 6, 2, 8)), mx.zeros((1, 4, 3, 8)),
                                     mx.zeros((1, 4, 3, 8)), 1.0)
