"""The attention core, one function for every model, and Whisper's multi-head attention with a
preallocated self-attention KV cache and cached cross-attention K/V.

`scaled_dot_product_attention(q, k, v, scale, mask)` = softmax((q * scale) @ k^T + mask) @ v per
head, for q (B, H, T, D) and k, v (B, Hkv, S, D) with H a multiple of Hkv (grouped-query
attention: query head h reads K/V head h // (H / Hkv); K/V are never repeated). The scale goes
on q, as in `mx.fast.scaled_dot_product_attention`; a model whose upstream splits it (openai-
whisper and the S3 tokenizer scale q and k by d**-0.25 each) passes k pre-scaled and the other
half as `scale`. Backends, chosen per call:
- Metal/CUDA (`mx.default_device()` is not the CPU): `mx.fast.scaled_dot_product_attention`
  (softmax in float32 inside; additive masks cast to q's dtype, as that op requires).
- CPU, float32, no mask, extension built: `_cpu_ext` `attention`, tiles of one head x 256 query
  rows, so the (B, H, T, S) scores never exist in memory; query heads that share a K/V head are
  stacked as (B, Hkv, rep * T, D) rows of one call.
- Otherwise MLX ops: grouped scores, the mask added (or, boolean, True = attend, applied as
  -inf), softmax in float32 (`activations.softmax`), cast back to q's dtype before `@ v`.
`KVCache` is the one preallocated self-attention cache (append in place, grown in steps of 64).

`MultiHeadAttention` (openai-whisper's attribute names: `query`, `key`, `value`, `out`; the key
projection has no bias, so checkpoint conversion is a rename-free copy) keeps its own CPU fast
path, picked per call by `uses_cpu_kernel`:
- CPU, float32, extension built: keys and values stay in the projections' (B, T, C) layout (heads
  side by side in each row) in the KV cache and the cross-attention K/V, and unmasked attention
  runs in the extension's `multihead_attention`, which reads each head in place and applies the
  whole d**-0.5 to the scores (exact for d = 64, as torch's SDPA). A whisper-base decoding step
  makes ~120 fewer MLX ops this way (split/merge transposes, scale multiplies), each ~8 us to
  dispatch on the CPU.
- Otherwise (Metal/CUDA, fp16/bf16, or no extension): per-head (B, H, T, D) arrays, keys
  pre-scaled by d**-0.25 and q by the other d**-0.25 in the core (openai-whisper's non-SDPA
  scaling; splitting the scale keeps fp16 scores in range).
Masked calls (a decoder prompt) go through the core; calls that return the scores (word
timestamps) compute them here with the same scaling.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_impl import _cpu_ext
from mlx_impl.layers.activations import softmax
from mlx_impl.layers.linear import Linear


def _grouped_mask(mask: mx.array, n_kv: int, rep: int) -> mx.array:
    """A mask broadcastable to (B, H, T, S) as one for grouped scores (B, Hkv, rep, T, S)."""
    m = mask.reshape((1,) * (4 - mask.ndim) + mask.shape) if mask.ndim < 4 else mask
    if m.shape[1] == 1:
        return m[:, :, None]
    return m.reshape(m.shape[0], n_kv, rep, *m.shape[2:])


def scaled_dot_product_attention(
    q: mx.array,  # (B, H, T, D)
    k: mx.array,  # (B, Hkv, S, D)
    v: mx.array,  # (B, Hkv, S, Dv)
    scale: float,
    mask: mx.array | None = None,  # additive, or bool (True = attend); broadcastable to (B, H, T, S)
) -> mx.array:
    """softmax((q * scale) @ k^T + mask) @ v -> (B, H, T, Dv); backends in the module doc."""
    b, h, t, d = q.shape
    n_kv, s = k.shape[1], k.shape[2]
    if h % n_kv:
        raise ValueError(f"{h} query heads cannot share {n_kv} key/value heads; the query heads "
                         "must be a multiple of the key/value heads")
    if mx.default_device() != mx.cpu:
        if mask is not None and mask.dtype != mx.bool_:
            mask = mask.astype(q.dtype)
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    rep = h // n_kv
    if scale != 1.0:
        q = q * scale
    if rep > 1:  # query heads h = g * rep + r share K/V head g: rows of one product per group
        q = q.reshape(b, n_kv, rep * t, d)
    ext = _cpu_ext.kernels()
    if mask is None and ext is not None and q.dtype == k.dtype == v.dtype == mx.float32:
        _cpu_ext.record("attention", "extension")
        out = ext.attention(q, mx.contiguous(k.swapaxes(-1, -2)), v)
    else:
        scores = q @ k.swapaxes(-1, -2)  # (B, Hkv, rep * T, S)
        if mask is not None:
            if rep > 1:
                scores = scores.reshape(b, n_kv, rep, t, s)
                mask = _grouped_mask(mask, n_kv, rep)
            if mask.dtype == mx.bool_:
                scores = mx.where(mask, scores, mx.array(-mx.inf, scores.dtype))
            else:
                scores = scores + mask
            if rep > 1:
                scores = scores.reshape(b, n_kv, rep * t, s)
        w = softmax(scores.astype(mx.float32), axis=-1).astype(q.dtype)
        out = w @ v
    return out.reshape(b, h, t, v.shape[-1]) if rep > 1 else out


class KVCache:
    """Self-attention keys/values, preallocated in steps and filled in place.

    keys, values  # (B, H, capacity, D) or (B, capacity, C); time is the second-to-last axis
                  # and only [..., :offset, :] is valid
    """

    step = 64  # grow the buffers this many positions at a time

    def __init__(self):
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array]:
        """Append k, v ((B, H, T, D) or (B, T, C)) along time and return all valid keys/values."""
        axis = k.ndim - 2
        need = self.offset + k.shape[axis]
        if self.keys is None or need > self.keys.shape[axis]:
            capacity = ((need + self.step - 1) // self.step) * self.step

            def grown(a: mx.array, old: mx.array | None) -> mx.array:
                shape = list(a.shape)
                shape[axis] = capacity
                new = mx.zeros(shape, dtype=a.dtype)
                if old is not None and self.offset:
                    new[..., : self.offset, :] = old[..., : self.offset, :]
                return new

            self.keys, self.values = grown(k, self.keys), grown(v, self.values)
        self.keys[..., self.offset : need, :] = k
        self.values[..., self.offset : need, :] = v
        self.offset = need
        return self.keys[..., :need, :], self.values[..., :need, :]

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

    @staticmethod
    def uses_cpu_kernel(x: mx.array) -> bool:
        """True where keys/values are kept as (B, T, C) for the extension's kernel (module doc)."""
        return (x.dtype == mx.float32 and mx.default_device() == mx.cpu
                and _cpu_ext.kernels() is not None)

    def project_kv(self, source: mx.array) -> tuple[mx.array, mx.array]:
        """Cross-attention keys and values of `source` (B, S, C), computed once per audio window.

        For the CPU kernel: the projections as they are, (B, S, C) each. Otherwise laid out for
        the per-token step: keys pre-scaled by d**-0.25 and transposed, (B, H, D, S), values
        (B, H, S, D), both contiguous (as strided views, every decoding step re-scaled and copied
        them: 6.9 ms per layer per token for whisper-base on the CPU, against 0.3 ms).
        """
        if self.uses_cpu_kernel(source):
            return self.key(source), self.value(source)
        k, v = self.split_heads(self.key(source)), self.split_heads(self.value(source))
        scale = k.shape[-1] ** -0.25
        return mx.contiguous((k * scale).transpose(0, 1, 3, 2)), mx.contiguous(v)

    def __call__(
        self,
        x: mx.array,  # (B, T, C) queries' input
        kv: tuple[mx.array, mx.array] | None = None,  # cross-attention K/V of project_kv
        mask: mx.array | None = None,  # additive, broadcastable to (T, S)
        cache: KVCache | None = None,  # self-attention cache, appended to
        return_qk: bool = False,
    ) -> tuple[mx.array, mx.array | None]:
        d = x.shape[-1] // self.n_head
        scale = d**-0.25
        if self.uses_cpu_kernel(x):
            q = self.query(x)
            if kv is not None:
                k, v = kv  # (B, S, C)
            else:
                k, v = self.key(x), self.value(x)
                if cache is not None:
                    k, v = cache.update(k, v)
            if mask is None and not return_qk:
                # The (B, H, T, S) scores never exist in memory: tiles of one head x 256 query
                # rows (one row: matrix-vector products). whisper-base, 2 cores: an encoder
                # self-attention with its projections 64 ms vs 82 ms through per-head copies.
                _cpu_ext.record("attention", "extension")
                out = _cpu_ext.kernels().multihead_attention(q, k, v, self.n_head, d**-0.5)
                return self.out(out), None
            q, v = self.split_heads(q), self.split_heads(v)
            k = self.split_heads(k) * scale
        else:
            q = self.split_heads(self.query(x))
            if kv is not None:
                kt, v = kv  # keys already scaled and transposed (B, H, D, S)
                k = kt.swapaxes(-1, -2)  # a view: the products read kt in place
            else:
                k, v = self.split_heads(self.key(x)), self.split_heads(self.value(x))
                if cache is not None:
                    k, v = cache.update(k, v)
                k = k * scale
        b, h, t, _ = q.shape
        if not return_qk:  # keys carry one d**-0.25, the core puts the other on q
            out = scaled_dot_product_attention(q, k, v, scale, mask)
            return self.out(out.transpose(0, 2, 1, 3).reshape(b, t, h * d)), None
        qk = (q * scale) @ k.swapaxes(-1, -2)  # (B, H, T, S)
        if mask is not None:
            qk = qk + mask
        w = softmax(qk.astype(mx.float32), axis=-1).astype(q.dtype)
        out = (w @ v).transpose(0, 2, 1, 3).reshape(b, t, h * d)
        return self.out(out), qk


def causal_mask(n_query: int, offset: int, dtype=mx.float32) -> mx.array:
    """Additive mask (n_query, offset + n_query): query i sees keys <= offset + i."""
    rows = mx.arange(n_query)[:, None] + offset
    cols = mx.arange(offset + n_query)[None, :]
    return mx.where(cols > rows, mx.array(-mx.inf, dtype), mx.array(0, dtype))
