"""Output projection onto a vocabulary with a tied embedding matrix: logits = x @ E^T.

MLX 0.32's CPU backend runs every float32 matmul as a BLAS sgemm, also for the single row of a
decoding step, and a one-row sgemm against whisper-base's (51865, 512) embedding takes 7.5 ms,
where a matrix-vector product over the same memory takes 2.0 ms (numpy's BLAS; measured on a
2-core x86). So on the CPU, for float32, the product runs in numpy on a zero-copy view of the
MLX weight (the row is evaluated first: decoding synchronises on every step anyway). Metal/CUDA
and other dtypes use MLX's matmul. Both are fp32 dot products of length C; they may round the
sums in a different order (parity tolerances cover that; tests/test_layers_vocab.py).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def tied_logits(x: mx.array, embedding: mx.array) -> mx.array:
    """x (..., C) @ embedding (V, C)^T -> (..., V) in x's dtype."""
    if x.shape[-1] != embedding.shape[-1]:
        raise ValueError(f"tied_logits: x has {x.shape[-1]} channels, the embedding "
                         f"{embedding.shape[-1]}")
    if mx.default_device() != mx.cpu or x.dtype != mx.float32 or embedding.dtype != mx.float32:
        return x @ embedding.T
    mx.eval(x)
    rows = np.asarray(x).reshape(-1, x.shape[-1])
    out = rows @ np.asarray(embedding).T  # np.asarray of an evaluated mx.array: no copy
    return mx.array(out.reshape(*x.shape[:-1], embedding.shape[0]))
