"""Bark's three GPTs and the EnCodec decoder in MLX.

Upstream: transformers 5.24.0 `models/bark/modeling_bark.py` (`BarkSelfAttention` eager,
`BarkMLP`, `BarkBlock`, `BarkCausalModel` = `BarkSemanticModel` / `BarkCoarseModel`,
`BarkFineModel`, `BarkModel.codec_decode`), read, not copied. Attribute names are the
checkpoint keys (`semantic.layers.{i}.attn.att_proj`, `fine_acoustics.input_embeds_layers.{j}`,
`codec_model.*`), so `convert.py` only drops buffers and converts the codec.

- Block (GPT-2 style, pre-norm): x + attn(LN1(x)), then + mlp(LN2(.)); attention is one fused
  q|k|v projection (`att_proj`, (3C, C)), softmax((q @ k^T) / sqrt(d)) @ v through the shared
  core `layers.attention.scaled_dot_product_attention` (its scale goes on q: equal to
  upstream's scaled product for power-of-two head widths, 16 and 64 here, else within an ulp),
  `out_proj`; the MLP is in_proj (4C) -> exact GELU -> out_proj. Linear and layer-norm biases
  follow `bias` in the causal GPTs; the fine GPT's layer norms always have biases (upstream).
- Causal GPTs: token + learned position embeddings; the causal mask over a KV cache
  (`layers.attention.KVCache`, `causal_mask`); `step(embeds, cache)` continues from the cache.
  Upstream fills masked scores with float32's minimum, here -inf: both give exactly zero weight.
- Fine GPT (non-causal): the input of codebook `k` is the sum of the embeddings of codebooks
  0..k (one table per codebook), plus positions; `lm_heads[k - n_codes_given]` predicts codebook
  k, tied to `input_embeds_layers[k]` when `tie_word_embeddings` (upstream's `_tied_weights_keys`).
- `decode_codes`: `codec_model.quantizer.decode` + `decoder` of `mlx_impl.encodec` (reused).
Taps (`taps=Taps()`): `{name}.embeds` (input embeddings + positions), `{name}.layers.{i}`,
`{name}.layernorm_final`, `{name}.logits`, names as the upstream module paths.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_impl.bark.config import BarkConfig, BarkFineConfig, BarkGPTConfig
from mlx_impl.encodec.model import EncodecModel
from mlx_impl.layers.activations import gelu
from mlx_impl.layers.attention import KVCache, causal_mask, scaled_dot_product_attention
from mlx_impl.layers.linear import Linear, linear
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.taps import NO_TAPS, Taps


def _layer_norm(dim: int, bias: bool) -> LayerNorm:
    ln = LayerNorm(dim, eps=1e-5)
    if not bias:
        ln.pop("bias")  # upstream nn.LayerNorm(bias=False): weight only
    return ln


class Attention(nn.Module):
    def __init__(self, cfg: BarkGPTConfig, causal: bool):
        super().__init__()
        c = cfg.hidden_size
        self.n_head, self.head_dim, self.causal = cfg.num_heads, c // cfg.num_heads, causal
        self.att_proj = Linear(c, 3 * c, bias=cfg.bias)
        self.out_proj = Linear(c, c, bias=cfg.bias)

    def __call__(self, x: mx.array, cache: KVCache | None) -> mx.array:  # (B, T, C)
        b, t, c = x.shape
        q, k, v = mx.split(self.att_proj(x), 3, axis=-1)

        def heads(y):  # (B, T, C) -> (B, H, T, D)
            return y.reshape(b, t, self.n_head, self.head_dim).transpose(0, 2, 1, 3)

        q, k, v = heads(q), heads(k), heads(v)
        offset = 0
        if cache is not None:
            offset = cache.offset
            k, v = cache.update(k, v)
        mask = causal_mask(t, offset) if self.causal and t > 1 else None
        out = scaled_dot_product_attention(q, k, v, self.head_dim ** -0.5, mask)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: BarkGPTConfig):
        super().__init__()
        self.in_proj = Linear(cfg.hidden_size, 4 * cfg.hidden_size, bias=cfg.bias)
        self.out_proj = Linear(4 * cfg.hidden_size, cfg.hidden_size, bias=cfg.bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.out_proj(gelu(self.in_proj(x)))


class Block(nn.Module):
    def __init__(self, cfg: BarkGPTConfig, causal: bool):
        super().__init__()
        norm_bias = cfg.bias if causal else True
        self.layernorm_1 = _layer_norm(cfg.hidden_size, norm_bias)
        self.attn = Attention(cfg, causal)
        self.layernorm_2 = _layer_norm(cfg.hidden_size, norm_bias)
        self.mlp = MLP(cfg)

    def __call__(self, x: mx.array, cache: KVCache | None = None) -> mx.array:
        x = x + self.attn(self.layernorm_1(x), cache)
        return x + self.mlp(self.layernorm_2(x))


class CausalGPT(nn.Module):
    """`BarkCausalModel` (semantic and coarse)."""

    def __init__(self, cfg: BarkGPTConfig, name: str):
        super().__init__()
        self.cfg, self.name = cfg, name
        self.input_embeds_layer = nn.Embedding(cfg.input_vocab_size, cfg.hidden_size)
        self.position_embeds_layer = nn.Embedding(cfg.block_size, cfg.hidden_size)
        self.layers = [Block(cfg, causal=True) for _ in range(cfg.num_layers)]
        self.layernorm_final = _layer_norm(cfg.hidden_size, cfg.bias)
        self.lm_head = Linear(cfg.hidden_size, cfg.output_vocab_size, bias=False)

    def new_cache(self) -> list[KVCache]:
        return [KVCache() for _ in self.layers]

    def embed(self, ids) -> mx.array:  # (B, T) int -> (B, T, C)
        return self.input_embeds_layer(mx.array(ids, dtype=mx.int32))

    def step(self, embeds: mx.array, cache: list[KVCache] | None = None,
             taps: Taps = NO_TAPS, last_only: bool = False) -> mx.array:
        """Input embeddings (B, T, C) after the cache's positions -> logits (B, T, V)."""
        offset = 0 if cache is None else cache[0].offset
        t = embeds.shape[1]
        if offset + t > self.cfg.block_size:
            raise ValueError(f"{self.name}: {offset + t} positions exceed the block size "
                             f"{self.cfg.block_size}; shorten the input")
        x = embeds + self.position_embeds_layer(mx.arange(offset, offset + t))
        x = taps(f"{self.name}.embeds", x)
        for i, layer in enumerate(self.layers):
            x = taps(f"{self.name}.layers.{i}", layer(x, None if cache is None else cache[i]))
        x = taps(f"{self.name}.layernorm_final", self.layernorm_final(x))
        if last_only:
            x = x[:, -1:]
        return taps(f"{self.name}.logits", self.lm_head(x))


class FineGPT(nn.Module):
    """`BarkFineModel`: non-causal, one embedding table per codebook, one head per predicted
    codebook (tied to the embeddings by default)."""

    def __init__(self, cfg: BarkFineConfig, name: str = "fine_acoustics"):
        super().__init__()
        self.cfg, self.name = cfg, name
        self.input_embeds_layers = [nn.Embedding(cfg.input_vocab_size, cfg.hidden_size)
                                    for _ in range(cfg.n_codes_total)]
        self.position_embeds_layer = nn.Embedding(cfg.block_size, cfg.hidden_size)
        self.layers = [Block(cfg, causal=False) for _ in range(cfg.num_layers)]
        self.layernorm_final = LayerNorm(cfg.hidden_size, eps=1e-5)
        if not cfg.tie_word_embeddings:
            self.lm_heads = [Linear(cfg.hidden_size, cfg.output_vocab_size, bias=False)
                             for _ in range(cfg.n_codes_given, cfg.n_codes_total)]

    def __call__(self, codebook_idx: int, ids, taps: Taps = NO_TAPS) -> mx.array:
        """Codebook ids (B, T, n_codes_total) -> logits (B, T, V) of codebook `codebook_idx`."""
        cfg = self.cfg
        if not cfg.n_codes_given <= codebook_idx < cfg.n_codes_total:
            raise ValueError(f"the fine model predicts codebooks {cfg.n_codes_given}.."
                             f"{cfg.n_codes_total - 1}, got {codebook_idx}")
        ids = mx.array(ids, dtype=mx.int32)
        t = ids.shape[1]
        if t > cfg.block_size:
            raise ValueError(f"{self.name}: {t} frames exceed the block size {cfg.block_size}")
        x = self.input_embeds_layers[0](ids[:, :, 0])
        for j in range(1, codebook_idx + 1):  # upstream sums in float32 in the same order
            x = x + self.input_embeds_layers[j](ids[:, :, j])
        x = x + self.position_embeds_layer(mx.arange(t))
        x = taps(f"{self.name}.embeds", x)
        for i, layer in enumerate(self.layers):
            x = taps(f"{self.name}.layers.{i}", layer(x))
        x = taps(f"{self.name}.layernorm_final", self.layernorm_final(x))
        if cfg.tie_word_embeddings:
            logits = linear(x, self.input_embeds_layers[codebook_idx].weight)
        else:
            logits = self.lm_heads[codebook_idx - cfg.n_codes_given](x)
        return taps(f"{self.name}.logits", logits)


class BarkModel(nn.Module):
    def __init__(self, cfg: BarkConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.config = cfg
        self.semantic = CausalGPT(cfg.semantic_config, "semantic")
        self.coarse_acoustics = CausalGPT(cfg.coarse_acoustics_config, "coarse_acoustics")
        self.fine_acoustics = FineGPT(cfg.fine_acoustics_config)
        self.codec_model = EncodecModel(cfg.codec_config, dtype)

    @property
    def sample_rate(self) -> int:
        return self.config.codec_config.sampling_rate

    def decode_codes(self, codes) -> mx.array:
        """Fine codes (n_codebooks, F) -> audio (F * hop,) float32 (`BarkModel.codec_decode`)."""
        codes = mx.array(codes, dtype=mx.int32)
        if codes.ndim != 2 or codes.shape[0] != self.config.fine_acoustics_config.n_codes_total:
            raise ValueError(f"expected fine codes (n_codebooks "
                             f"{self.config.fine_acoustics_config.n_codes_total}, frames), got "
                             f"{codes.shape}")
        return self.codec_model.decode_codes(codes[None])[0]
