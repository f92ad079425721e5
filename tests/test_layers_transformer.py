"""Op-level parity of the shared pre-norm RoPE transformer (mlx_impl/layers/transformer.py)
against transformers 5.24.0 `MimiTransformerModel`, and its streaming KV cache.

Tolerances (measured, fp32, MLX 0.32.4 CPU vs torch 2.13.0 CPU): max abs 9.5e-7 on outputs of
|x| <= ~4 for every configuration below; atol 5e-6. Chunked (streaming) calls against one call:
max abs 4.8e-7 (same ops, different matmul shapes); atol 2e-6.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.layers.transformer import (SlidingKVCache, Transformer, TransformerOptions,
                                         window_mask)
from tests.helpers import assert_close


def _pair(window, n_heads=4, n_kv=4, layer_scale=0.01, seed=0):
    from transformers import MimiConfig
    from transformers.models.mimi.modeling_mimi import MimiTransformerModel

    cfg = MimiConfig(hidden_size=32, num_attention_heads=n_heads, num_key_value_heads=n_kv,
                     head_dim=8, intermediate_size=64, num_hidden_layers=2,
                     sliding_window=window, layer_scale_initial_scale=layer_scale)
    cfg._attn_implementation = "sdpa"  # what MimiModel dispatches to (None builds no mask)
    torch.manual_seed(seed)
    ref = MimiTransformerModel(cfg).eval()
    with torch.no_grad():  # non-trivial layer norms and layer scales
        for name, p in ref.named_parameters():
            if name.endswith(("layernorm.weight", "layernorm.bias", "scale")):
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("weight") else 0.0))
    opts = TransformerOptions(dim=32, n_heads=n_heads, n_kv_heads=n_kv, head_dim=8, ffn_dim=64,
                              norm_eps=1e-5, rope_theta=10000.0, sliding_window=window,
                              layer_scale=layer_scale)
    ours = Transformer(opts, 2)
    ours.load_weights([(k, mx.array(v.detach().numpy())) for k, v in ref.state_dict().items()
                       if not k.startswith("rotary_emb")], strict=True)
    return ref, ours


def _torch(ref, x):
    with torch.no_grad():
        return ref(torch.from_numpy(x)).last_hidden_state.numpy()


@pytest.mark.parametrize("window,n_heads,n_kv", [(250, 4, 4), (5, 4, 4), (7, 4, 2), (1, 4, 1)])
def test_transformer_matches_mimi(window, n_heads, n_kv):
    ref, ours = _pair(window, n_heads, n_kv)
    x = np.random.default_rng(1).standard_normal((2, 23, 32)).astype(np.float32)
    assert_close(f"transformer window={window} heads={n_heads}/{n_kv}", np.array(ours(mx.array(x))),
                 _torch(ref, x), atol=5e-6)


@pytest.mark.parametrize("chunk", [1, 2, 3, 10])
def test_streaming_cache_equals_one_call(chunk):
    ref, ours = _pair(5)
    x = np.random.default_rng(2).standard_normal((1, 31, 32)).astype(np.float32)
    whole = np.array(ours(mx.array(x)))
    cache = ours.make_cache()
    parts = [np.array(ours(mx.array(x[:, i:i + chunk]), cache=cache)) for i in range(0, 31, chunk)]
    assert cache[0].offset == 31 and cache[0].keys.shape[2] == 4  # window - 1 keys kept
    assert_close(f"streaming chunk={chunk}", np.concatenate(parts, axis=1), whole, atol=2e-6)
    assert_close("one call vs transformers", whole, _torch(ref, x), atol=5e-6)


def test_window_mask_and_cache_bookkeeping():
    m = np.array(window_mask(3, 2, 1, 4, window=2))  # queries 3, 4; keys 1..4
    assert (np.isfinite(m) == np.array([[0, 1, 1, 0], [0, 0, 1, 1]], bool)).all(), m
    c = SlidingKVCache(window=3)
    k = mx.arange(5, dtype=mx.float32).reshape(1, 1, 5, 1)
    keys, _, start = c.update(k, k)
    assert start == 0 and keys.shape[2] == 5 and c.offset == 5
    assert np.array(c.keys).ravel().tolist() == [3.0, 4.0]
    keys, _, start = c.update(k[:, :, :1] + 5, k[:, :, :1])
    assert start == 3 and np.array(keys).ravel().tolist() == [3.0, 4.0, 5.0] and c.offset == 6
