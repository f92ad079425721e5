"""Op-level parity of the Snake/SnakeBeta activations and rotary embeddings against torch.

Tolerances (measured, fp32, MLX 0.32.4 CPU vs torch 2.13.0):
- snake: max abs 9.5e-7 on |x| <= 10 with alpha in [0.1, 3] (sin of large arguments: 1-2 ulp of
  the output, which is ~x); atol 2e-6 + rtol 2e-7.
- rope: max abs 4.2e-6 vs transformers LlamaRotaryEmbedding at positions 1000-1039, base 1e6
  (|q| up to ~4; torch's float32 pow for the inverse frequencies differs from numpy's by 1 ulp);
  atol 1e-5. Llama-3 scaled rope (positions up to 3039): 4.8e-7; interleaved vs GPT-J's
  `apply_rotary_pos_emb`: 2.4e-7; the scaled inverse frequencies themselves are bit-equal to
  `modeling_rope_utils._compute_llama3_parameters` (tolerance 0).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.layers.rope import (Llama3Scaling, RotaryEmbedding, cos_sin, inverse_frequencies,
                                  scaling_from_config)
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


LLAMA3 = [  # (head_dim, theta, factor, low, high, original): Llama 3.2 1B/3B, Llama 3.1 8B
    (64, 500000.0, 32.0, 1.0, 4.0, 8192),
    (128, 500000.0, 8.0, 1.0, 4.0, 8192),
    (64, 10000.0, 4.0, 1.0, 2.0, 512),  # small context: every band (low, medium, high) present
]


def llama3_config(head_dim, theta, factor, low, high, original):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=2 * head_dim, num_attention_heads=2, head_dim=head_dim,
                       max_position_embeddings=4 * original,
                       rope_parameters={"rope_type": "llama3", "rope_theta": theta,
                                        "factor": factor, "low_freq_factor": low,
                                        "high_freq_factor": high,
                                        "original_max_position_embeddings": original})


@pytest.mark.parametrize("params", LLAMA3)
def test_llama3_inverse_frequencies_equal_transformers(params):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = llama3_config(*params)
    want, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    scaling = scaling_from_config(cfg.rope_parameters)
    assert scaling == Llama3Scaling(*params[2:])
    got = scaling.apply(inverse_frequencies(params[0], params[1]))
    assert got.dtype == np.float32
    diff = np.flatnonzero(got != want.numpy())
    assert not diff.size, f"llama3 inv_freq differ at {diff}: {got[diff]} vs {want.numpy()[diff]}"
    assert (got != inverse_frequencies(params[0], params[1])).any()  # the scaling did something


@pytest.mark.parametrize("params", LLAMA3)
@pytest.mark.parametrize("offset", [0, 3000])
def test_rope_llama3_matches_transformers(params, offset):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    cfg = llama3_config(*params)
    d = params[0]
    q = torch.from_numpy(RNG.standard_normal((1, 2, 40, d)).astype(np.float32))
    cos, sin = LlamaRotaryEmbedding(cfg)(q, torch.arange(offset, offset + 40)[None])
    want, _ = apply_rotary_pos_emb(q, q, cos, sin)
    rope = RotaryEmbedding(d, params[1], scaling=scaling_from_config(cfg.rope_parameters))
    got = rope(mx.array(q.numpy()), offset=offset)
    assert_close(f"llama3 rope {params} offset={offset}", np.array(got), want.numpy(), atol=1e-5)


@pytest.mark.parametrize("offset", [0, 1000])
def test_rope_interleaved_matches_gptj(offset):
    from transformers.models.gptj.modeling_gptj import (apply_rotary_pos_emb,
                                                        create_sinusoidal_positions)

    d, rot = 64, 32  # GPT-J rotates the first rotary_dim channels, interleaved
    x = torch.from_numpy(RNG.standard_normal((1, 40, 2, d)).astype(np.float32))  # (B, T, H, D)
    sincos = create_sinusoidal_positions(offset + 40, rot)[offset:][None]
    sin, cos = torch.split(sincos, rot // 2, dim=-1)
    want = torch.cat([apply_rotary_pos_emb(x[..., :rot], sin, cos), x[..., rot:]], dim=-1)
    rope = RotaryEmbedding(d, 10000.0, rotary_dims=rot, interleaved=True)
    got = rope(mx.array(x.numpy().transpose(0, 2, 1, 3)), offset=offset)
    assert_close(f"interleaved rope offset={offset}", np.array(got).transpose(0, 2, 1, 3),
                 want.numpy(), atol=1e-5)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_rope_fast_path_matches_tables(monkeypatch, interleaved, scaled):
    """The Metal/CUDA branch (mx.fast.rope, run on the CPU by making the module believe the
    default device is a GPU) against the CPU tables. Measured 7.2e-7 on |x| <= 9 at positions
    1980-2019 (float32 angles and cos/sin in the op); atol 2e-6."""
    scaling = Llama3Scaling(*LLAMA3[2][2:]) if scaled else None
    rope = RotaryEmbedding(64, 10000.0, rotary_dims=48, scaling=scaling, interleaved=interleaved)
    x = mx.array((RNG.standard_normal((2, 3, 40, 64)) * 2).astype(np.float32))
    want = np.array(rope(x, offset=1980))

    class FakeGpu:
        pass

    import mlx_impl.layers.rope as rope_mod
    monkeypatch.setattr(rope_mod.mx, "default_device", lambda: FakeGpu())
    got = np.array(rope(x, offset=1980))
    monkeypatch.undo()
    assert_close(f"fast rope interleaved={interleaved} llama3={scaled}", got, want, atol=2e-6)
    assert (got[..., 48:] == np.array(x)[..., 48:]).all()


def test_rope_config_errors():
    assert scaling_from_config(None) is None
    assert scaling_from_config({"rope_type": "default", "rope_theta": 1e4}) is None
    with pytest.raises(ValueError, match="'yarn' is not implemented"):
        scaling_from_config({"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ValueError, match="high_freq_factor > low_freq_factor"):
        Llama3Scaling(8.0, 4.0, 1.0, 8192)
