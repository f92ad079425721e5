"""Op-level parity of the Snake/SnakeBeta activations and rotary embeddings against torch.

Tolerances (measured, fp32, MLX 0.32.4 CPU vs torch 2.13.0):
- snake: max abs 9.5e-7 on |x| <= 10 with alpha in [0.1, 3] (sin of large arguments: 1-2 ulp of
  the output, which is ~x); atol 2e-6 + rtol 2e-7.
- rope: max abs 4.2e-6 vs transformers LlamaRotaryEmbedding at positions 1000-1039, base 1e6
  (|q| up to ~4; torch's float32 pow for the inverse frequencies differs from numpy's by 1 ulp);
  atol 1e-5.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.layers.rope import RotaryEmbedding, cos_sin
from mlx_impl.layers.snake import Snake, SnakeBeta, snake
from tests.helpers import assert_close

RNG = np.random.default_rng(0)


def torch_snake(x, alpha, beta):  # x (B, C, T), alpha/beta (1, C, 1): DAC / BigVGAN form
    return x + (beta + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)


def channels_first(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).transpose(1, 2)


def test_snake_plain():
    x = (RNG.standard_normal((2, 64, 12)) * 4).astype(np.float32)
    a = RNG.uniform(0.1, 3, 12).astype(np.float32)
    at = torch.from_numpy(a)[None, :, None]
    want = torch_snake(channels_first(x), at, at).transpose(1, 2).numpy()
    assert_close("snake", np.array(snake(mx.array(x), mx.array(a))), want, atol=2e-6, rtol=2e-7)
    m = Snake(12)
    m.alpha = mx.array(a)
    assert_close("Snake", np.array(m(mx.array(x))), want, atol=2e-6, rtol=2e-7)


def test_snake_logscale_and_beta():
    x = (RNG.standard_normal((1, 80, 6)) * 4).astype(np.float32)
    la, lb = RNG.uniform(-1, 1, (2, 6)).astype(np.float32)
    at, bt = (torch.from_numpy(v).exp()[None, :, None] for v in (la, lb))
    want = torch_snake(channels_first(x), at, bt).transpose(1, 2).numpy()
    m = SnakeBeta(6, logscale=True)
    m.alpha, m.beta = mx.array(la), mx.array(lb)
    assert_close("SnakeBeta(logscale)", np.array(m(mx.array(x))), want, atol=2e-6, rtol=2e-7)
    s = Snake(6, logscale=True)
    s.alpha = mx.array(la)
    want_s = torch_snake(channels_first(x), at, at).transpose(1, 2).numpy()
    assert_close("Snake(logscale)", np.array(s(mx.array(x))), want_s, atol=2e-6, rtol=2e-7)


@pytest.mark.parametrize("base,offset", [(10000.0, 0), (1e6, 1000), (1e8, 5000)])
def test_rope_matches_transformers(base, offset):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    cfg = LlamaConfig(hidden_size=128, num_attention_heads=2, rope_theta=base)
    q = torch.from_numpy(RNG.standard_normal((1, 2, 40, 64)).astype(np.float32))
    cos, sin = LlamaRotaryEmbedding(cfg)(q, torch.arange(offset, offset + 40)[None])
    want, _ = apply_rotary_pos_emb(q, q, cos, sin)
    got = RotaryEmbedding(64, base)(mx.array(q.numpy()), offset=offset)
    assert_close(f"rope base={base:g} offset={offset}", np.array(got), want.numpy(), atol=1e-5)


def test_rope_partial_rotary_leaves_tail():
    x = RNG.standard_normal((1, 1, 5, 8)).astype(np.float32)
    got = np.array(RotaryEmbedding(8, rotary_dims=4)(mx.array(x), offset=3))
    cos, sin = cos_sin(np.arange(3, 8), 4, 10000.0)
    head = x[..., :4]
    rot = np.concatenate([-head[..., 2:], head[..., :2]], axis=-1)
    assert_close("rope head", got[..., :4], head * cos + rot * sin, atol=1e-6)
    assert_close("rope tail", got[..., 4:], x[..., 4:], atol=0.0)


def test_rope_rejects_odd_dims():
    with pytest.raises(ValueError, match="rotary_dims must be even"):
        RotaryEmbedding(8, rotary_dims=3)
