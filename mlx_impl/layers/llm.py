"""Llama/Mistral/Qwen2-style decoder-only language model pieces (Voxtral's text decoder; the
LLM-based TTS models reuse them).

Upstream: transformers 5.24.0 `models/llama/modeling_llama.py` (`LlamaRMSNorm`, `LlamaAttention`
with eager attention, `LlamaMLP`, `LlamaDecoderLayer`, `LlamaModel`, `LlamaForCausalLM`'s
`lm_head`); Mistral's modules are the same computation without a sliding window; Qwen2's add
biases to the q/k/v projections only (`qkv_bias`; no sliding-window layers here). Llama 3.1/3.2
checkpoints set `rope_scaling` (`rope.Llama3Scaling`). Attribute names are the transformers keys
(`self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`, ...), so a checkpoint maps one to one
under a prefix.

Numerics, fp32 on the CPU (Metal/CUDA use `mx.fast.rms_norm`, `mx.fast.rope` and
`mx.fast.scaled_dot_product_attention`, picked per call by the default device):
- RMSNorm runs in float32 and casts back before the gain, as upstream
  (`weight * (x * rsqrt(mean(x^2) + eps)).to(input_dtype)`); the mean of squares is summed in two
  levels (`activations.sum_last`), as the shared layer norm does.
- Grouped-query attention is the shared core `attention.scaled_dot_product_attention`: K/V are
  never repeated (upstream `repeat_kv` copies them), scores `(q * d**-0.5) @ k^T` (upstream
  scales the product: equal for power-of-two d, else within an ulp), softmax in float32; on the
  CPU unmasked float32 steps run in the extension's tiled kernel, off the CPU `mx.fast`.
- Keys/values live in the shared preallocated `attention.KVCache`; positions come from the
  cache offset, RoPE from `rope.RotaryEmbedding` ("rotate half").
- SwiGLU: `down(silu(gate(x)) * up(x))`, silu = x / (1 + exp(-x)) with the fp32-exact
  `activations.exp`.
- The vocabulary projection is `x @ W^T` with W the (tied or separate) head, (vocab, C).
- `LMArgs.attention_scale` replaces d**-0.5 (Dia's attention uses 1); `CrossAttention` is the
  position-free grouped-query cross-attention of encoder-decoder LMs (Dia), K/V projected once.

`DecoderStack` is the layers + final norm on input embeddings (CSM embeds its own inputs);
`DecoderLM` adds the token embedding and the head.

Taps: pass `taps=Taps()` (mlx_impl/taps.py) to record `{name}.embed`,
`{name}.layers.{i}.self_attn` / `.mlp` (sub-layer
outputs before the residual add), `{name}.layers.{i}` and `{name}.norm`.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from mlx_impl.layers.activations import exp, sum_last
from mlx_impl.layers.attention import KVCache, causal_mask, scaled_dot_product_attention
from mlx_impl.layers.linear import Linear, linear
from mlx_impl.layers.rope import Llama3Scaling, RotaryEmbedding
from mlx_impl.taps import NO_TAPS, Taps


@dataclass(frozen=True)
class LMArgs:
    """Decoder hyper-parameters, named as transformers' `LlamaConfig` fields."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int  # SwiGLU inner width
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int  # < num_attention_heads: grouped-query attention
    head_dim: int  # may differ from hidden_size // num_attention_heads (Mistral/Voxtral: 128)
    rms_norm_eps: float
    rope_theta: float
    attention_bias: bool = False  # biases on q/k/v/o (Llama's option)
    mlp_bias: bool = False
    tie_word_embeddings: bool = False  # True: logits use embed_tokens.weight, no lm_head
    qkv_bias: bool = False  # biases on q/k/v only, not o (Qwen2)
    rope_scaling: Llama3Scaling | None = None  # Llama 3.1/3.2 (rope_type "llama3"); None: default
    attention_scale: float | None = None  # None: head_dim**-0.5; Dia: 1 (its q weights carry it)

    def __post_init__(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not a multiple "
                             f"of num_key_value_heads {self.num_key_value_heads}")


class RMSNorm(nn.Module):
    """transformers `LlamaRMSNorm(dims, eps)`: parameter `weight`."""

    def __init__(self, dims: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = mx.ones((dims,))

    def __call__(self, x: mx.array) -> mx.array:
        if x.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"RMSNorm({self.weight.shape[0]}) got input with last axis "
                             f"{x.shape[-1]}")
        if mx.default_device() != mx.cpu:  # one fused kernel (float32 statistics inside)
            return mx.fast.rms_norm(x, self.weight.astype(x.dtype), self.eps)
        xf = x.astype(mx.float32)
        y = xf * mx.rsqrt(sum_last(xf * xf) / x.shape[-1] + self.eps)
        return self.weight * y.astype(x.dtype)


def silu(x: mx.array) -> mx.array:
    """x * sigmoid(x), fp32-exact on the CPU (torch `F.silu`)."""
    return x / (1 + exp(-x))


class MLP(nn.Module):
    """SwiGLU feed-forward (`LlamaMLP`): down(silu(gate(x)) * up(x))."""

    def __init__(self, hidden: int, inner: int, bias: bool = False):
        super().__init__()
        self.gate_proj = Linear(hidden, inner, bias=bias)
        self.up_proj = Linear(hidden, inner, bias=bias)
        self.down_proj = Linear(inner, hidden, bias=bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(silu(self.gate_proj(x)) * self.up_proj(x))


class Attention(nn.Module):
    """Causal grouped-query self-attention with RoPE and a preallocated KV cache."""

    def __init__(self, args: LMArgs):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = (args.num_attention_heads,
                                                 args.num_key_value_heads, args.head_dim)
        self.scale = (self.head_dim ** -0.5 if args.attention_scale is None
                      else args.attention_scale)
        h, d, b = args.hidden_size, args.head_dim, args.attention_bias
        self.q_proj = Linear(h, self.n_head * d, bias=b or args.qkv_bias)
        self.k_proj = Linear(h, self.n_kv * d, bias=b or args.qkv_bias)
        self.v_proj = Linear(h, self.n_kv * d, bias=b or args.qkv_bias)
        self.o_proj = Linear(self.n_head * d, h, bias=b)
        self.rope = RotaryEmbedding(d, base=args.rope_theta, scaling=args.rope_scaling)

    def __call__(self, x: mx.array, cache: KVCache, mask: mx.array | None = None) -> mx.array:
        b, t, _ = x.shape  # (B, T, C)
        d = self.head_dim
        offset = cache.offset
        q = self.q_proj(x).reshape(b, t, self.n_head, d).transpose(0, 2, 1, 3)  # (B, H, T, D)
        k = self.k_proj(x).reshape(b, t, self.n_kv, d).transpose(0, 2, 1, 3)  # (B, Hkv, T, D)
        v = self.v_proj(x).reshape(b, t, self.n_kv, d).transpose(0, 2, 1, 3)
        q, k = self.rope(q, offset), self.rope(k, offset)
        k, v = cache.update(k, v)  # (B, Hkv, S, D), S = offset + t
        out = scaled_dot_product_attention(q, k, v, self.scale, mask)  # (B, H, T, D)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, t, -1))


class CrossAttention(nn.Module):
    """Grouped-query cross-attention without positions (Dia's `DiaCrossAttention`): queries from
    `x` (B, T, hidden), keys/values from a source (B, S, source_dim) projected once
    (`project_kv`) and reused every step; no mask (the whole source is attended)."""

    def __init__(self, hidden: int, source_dim: int, n_head: int, n_kv: int, head_dim: int,
                 scale: float | None = None, bias: bool = False):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = n_head, n_kv, head_dim
        self.scale = head_dim ** -0.5 if scale is None else scale
        self.q_proj = Linear(hidden, n_head * head_dim, bias=bias)
        self.k_proj = Linear(source_dim, n_kv * head_dim, bias=bias)
        self.v_proj = Linear(source_dim, n_kv * head_dim, bias=bias)
        self.o_proj = Linear(n_head * head_dim, hidden, bias=bias)

    def project_kv(self, source: mx.array) -> tuple[mx.array, mx.array]:
        """source (B, S, source_dim) -> keys, values (B, Hkv, S, D)."""
        b, s, _ = source.shape
        k = self.k_proj(source).reshape(b, s, self.n_kv, self.head_dim).transpose(0, 2, 1, 3)
        v = self.v_proj(source).reshape(b, s, self.n_kv, self.head_dim).transpose(0, 2, 1, 3)
        return k, v

    def __call__(self, x: mx.array, kv: tuple[mx.array, mx.array],
                 mask: mx.array | None = None) -> mx.array:
        b, t, _ = x.shape  # (B, T, C)
        q = self.q_proj(x).reshape(b, t, self.n_head, self.head_dim).transpose(0, 2, 1, 3)
        out = scaled_dot_product_attention(q, kv[0], kv[1], self.scale, mask)  # (B, H, T, D)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, t, -1))


class DecoderLayer(nn.Module):
    """`LlamaDecoderLayer`: pre-norm attention and SwiGLU, each with a residual add."""

    def __init__(self, args: LMArgs):
        super().__init__()
        self.self_attn = Attention(args)
        self.mlp = MLP(args.hidden_size, args.intermediate_size, args.mlp_bias)
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)

    def __call__(self, x: mx.array, cache: KVCache, mask: mx.array | None = None,
                 taps: Taps = NO_TAPS, name: str = "") -> mx.array:
        a = self.self_attn(self.input_layernorm(x), cache, mask)
        x = x + a
        m = self.mlp(self.post_attention_layernorm(x))
        x = x + m
        taps(f"{name}.self_attn", a)
        taps(f"{name}.mlp", m)
        x = taps(name, x)
        return x


class DecoderStack(nn.Module):
    """`LlamaModel` without its embedding: the decoder layers and the final norm, run on input
    embeddings. CSM's backbone and depth decoder (mlx_impl/csm) embed their own inputs
    (sums of codebook embeddings) and use it alone; `DecoderLM` adds the embedding and head."""

    def __init__(self, args: LMArgs):
        super().__init__()
        self.args = args
        self.layers = [DecoderLayer(args) for _ in range(args.num_hidden_layers)]
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)

    def new_cache(self) -> list[KVCache]:
        return [KVCache() for _ in self.layers]

    def __call__(
        self,
        x: mx.array,  # (B, T, C) input embeddings
        cache: list[KVCache],
        taps: Taps = NO_TAPS,
        name: str = "language_model",
    ) -> mx.array:
        """Hidden states after the final norm, (B, T, C); `cache` is appended to."""
        if len(cache) != len(self.layers):
            raise ValueError(f"cache has {len(cache)} layers, the model {len(self.layers)}")
        t = x.shape[1]
        mask = causal_mask(t, cache[0].offset, x.dtype) if t > 1 else None
        x = taps(f"{name}.embed", x)
        for i, layer in enumerate(self.layers):
            x = layer(x, cache[i], mask, taps, f"{name}.layers.{i}")
        x = self.norm(x)
        x = taps(f"{name}.norm", x)
        return x


class DecoderLM(DecoderStack):
    """`LlamaModel` (embed_tokens, layers, norm) plus the vocabulary head (`lm_head` unless tied).

    `lm_head` lives here for one self-contained LM; a converter puts the upstream top-level
    `lm_head.weight` under this module's prefix.
    """

    def __init__(self, args: LMArgs):
        super().__init__(args)
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        if not args.tie_word_embeddings:
            self.lm_head = Linear(args.hidden_size, args.vocab_size, bias=False)

    def embed(self, tokens: mx.array) -> mx.array:
        """tokens (B, T) int -> (B, T, C); ids outside the vocabulary are an error."""
        if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= self.args.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.args.vocab_size}), got "
                             f"[{int(tokens.min())}, {int(tokens.max())}]")
        return self.embed_tokens(tokens)

    def logits(self, h: mx.array) -> mx.array:
        """(..., C) -> (..., vocab) float32."""
        w = self.embed_tokens.weight if self.args.tie_word_embeddings else self.lm_head.weight
        return linear(h, w).astype(mx.float32)
