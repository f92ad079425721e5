"""Multi-head attention with a preallocated self-attention KV cache and cached cross-attention K/V.

Attribute names follow openai-whisper's `MultiHeadAttention` (`query`, `key`, `value`, `out`; the
key projection has no bias), so checkpoint conversion is a rename-free copy.

Scores are computed as `(q * d**-0.25) @ (k * d**-0.25)^T`, the scaling openai-whisper uses on its
non-SDPA path; splitting the scale between q and k keeps fp16 scores in range.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_impl import _cpu_ext
from mlx_impl.layers.activations import softmax
from mlx_impl.layers.linear import Linear


# Below this many query rows the fused CPU kernel is slower than MLX's batched matmuls (one
# decoding step of whisper-base: 27 ms with it for T = 1, 21 ms without; measured).
FUSED_MIN_QUERIES = 16


class KVCache:
    """Self-attention keys/values, preallocated in steps and filled in place.

    keys, values  # (B, H, capacity, D); only [:, :, :offset] is valid
    """

    step = 64  # grow the buffers this many positions at a time

    def __init__(self):
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array]:
        """Append k, v (B, H, T, D) and return all valid keys/values."""
        b, h, t, d = k.shape
        need = self.offset + t
        if self.keys is None or need > self.keys.shape[2]:
            capacity = ((need + self.step - 1) // self.step) * self.step
            new_k = mx.zeros((b, h, capacity, d), dtype=k.dtype)
            new_v = mx.zeros((b, h, capacity, d), dtype=v.dtype)
            if self.keys is not None and self.offset:
                new_k[:, :, : self.offset] = self.keys[:, :, : self.offset]
                new_v[:, :, : self.offset] = self.values[:, :, : self.offset]
            self.keys, self.values = new_k, new_v
        self.keys[:, :, self.offset : need] = k
        self.values[:, :, self.offset : need] = v
        self.offset = need
        return self.keys[:, :, :need], self.values[:, :, :need]

    def reorder(self, index: mx.array) -> None:
        """Select batch rows (beam search): keys = keys[index]."""
        if self.keys is not None:
            self.keys = self.keys[index]
            self.values = self.values[index]


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        if n_state % n_head:
            raise ValueError(f"n_state={n_state} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.query = Linear(n_state, n_state)
        self.key = Linear(n_state, n_state, bias=False)
        self.value = Linear(n_state, n_state)
        self.out = Linear(n_state, n_state)

    def split_heads(self, x: mx.array) -> mx.array:
        b, t, c = x.shape  # (B, T, C) -> (B, H, T, D)
        return x.reshape(b, t, self.n_head, c // self.n_head).transpose(0, 2, 1, 3)

    def project_kv(self, source: mx.array) -> tuple[mx.array, mx.array]:
        """Cross-attention keys and values of `source` (B, S, C), computed once per audio window
        and laid out for the per-token step: keys pre-scaled by d**-0.25 and transposed,
        (B, H, D, S), values (B, H, S, D), both contiguous. Kept as the strided views that
        `split_heads` makes, every decoding step re-scaled and copied them: 6.9 ms per layer
        per token for whisper-base on the CPU (measured), against 0.3 ms now."""
        k, v = self.split_heads(self.key(source)), self.split_heads(self.value(source))
        scale = k.shape[-1] ** -0.25
        return mx.contiguous((k * scale).transpose(0, 1, 3, 2)), mx.contiguous(v)

    def __call__(
        self,
        x: mx.array,  # (B, T, C) queries' input
        kv: tuple[mx.array, mx.array] | None = None,  # cross-attention (k^T, v) of project_kv
        mask: mx.array | None = None,  # additive, broadcastable to (T, S)
        cache: KVCache | None = None,  # self-attention cache, appended to
        return_qk: bool = False,
    ) -> tuple[mx.array, mx.array | None]:
        if (kv is None and cache is None and mask is None and not return_qk
                and x.dtype == mx.float32 and x.shape[1] >= FUSED_MIN_QUERIES
                and mx.default_device() == mx.cpu):
            ext = _cpu_ext.kernels()
            if ext is not None:
                # Self-attention (the encoders): the kernel reads each head out of the (B, T, C)
                # projections and writes (B, T, C), so no head transposes are copied, and applies
                # the whole d**-0.5 to the scores (exact for d = 64, as torch's SDPA).
                # One whisper-base encoder self-attention, projections included: 64 ms vs 82 ms
                # through the split layout below (measured, 2 cores).
                _cpu_ext.record("attention", "extension")
                d = x.shape[-1] // self.n_head
                out = ext.multihead_attention(self.query(x), self.key(x), self.value(x),
                                              self.n_head, d**-0.5)
                return self.out(out), None
        q = self.split_heads(self.query(x))
        b, h, t, d = q.shape
        scale = d**-0.25
        if kv is not None:
            kt, v = kv  # keys already scaled and transposed (B, H, D, S)
        else:
            k, v = self.split_heads(self.key(x)), self.split_heads(self.value(x))
            if cache is not None:
                k, v = cache.update(k, v)
            kt = (k * scale).transpose(0, 1, 3, 2)
        if mx.default_device() != mx.cpu and not return_qk:
            # Metal/CUDA: the fused kernel (softmax in float32 inside). Keys carry one d**-0.25,
            # the kernel applies the other to q: equal to scaling both up to float rounding.
            out = mx.fast.scaled_dot_product_attention(q, kt.transpose(0, 1, 3, 2), v,
                                                       scale=scale, mask=mask)
            return self.out(out.transpose(0, 2, 1, 3).reshape(b, t, h * d)), None
        if mask is None and not return_qk and q.dtype == mx.float32 and t >= FUSED_MIN_QUERIES:
            ext = _cpu_ext.kernels()
            if ext is not None:
                # one head and a block of query rows at a time: the (B, H, T, S) scores never
                # exist in memory (whisper-base encoder layer: 53 ms vs 88 ms, identical bits)
                _cpu_ext.record("attention", "extension")
                out = ext.attention(q * scale, kt, v).transpose(0, 2, 1, 3).reshape(b, t, h * d)
                return self.out(out), None
        qk = (q * scale) @ kt  # (B, H, T, S)
        if mask is not None:
            qk = qk + mask
        w = softmax(qk.astype(mx.float32), axis=-1).astype(q.dtype)
        out = (w @ v).transpose(0, 2, 1, 3).reshape(b, t, h * d)
        return self.out(out), (qk if return_qk else None)


def causal_mask(n_query: int, offset: int, dtype=mx.float32) -> mx.array:
    """Additive mask (n_query, offset + n_query): query i sees keys <= offset + i."""
    rows = mx.arange(n_query)[:, None] + offset
    cols = mx.arange(offset + n_query)[None, :]
    return mx.where(cols > rows, mx.array(-mx.inf, dtype), mx.array(0, dtype))
