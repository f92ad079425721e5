"""The FSMN memory block of the S3 speech tokenizer v2 attention (a depthwise conv over time).

Upstream: s3tokenizer 0.3.0, `s3tokenizer/model_v2.py` `FSMNMultiHeadAttention.forward_fsmn`,
applied to the attention values v (B, T, C) before the heads attend (v is not rotated):

    m = v * mask_pad                          # zero padded frames (mask (B, T, 1))
    m = depthwise_conv(zero_pad(m, left=(k-1)//2, right=k-1-(k-1)//2))   # groups = C, no bias
    memory = (m + v * mask_pad) * mask_pad    # added to the attention block's output

Weight: upstream's `fsmn_block.weight` (C, 1, k) becomes MLX's channels-last (C, k, 1).
`mask` None means no padding (every frame valid), which skips the three multiplies.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.torch_conv import depthwise_conv1d


class FSMNBlock(nn.Module):
    def __init__(self, n_state: int, kernel_size: int = 31):
        super().__init__()
        self.kernel_size = kernel_size
        self.left = (kernel_size - 1) // 2
        self.right = kernel_size - 1 - self.left
        self.weight = mx.zeros((n_state, kernel_size, 1))  # depthwise kernel, channels-last

    def __call__(self, v: mx.array, mask: mx.array | None = None) -> mx.array:
        """v (B, T, C) values, mask (B, T, 1) 1 for valid frames -> memory (B, T, C)."""
        if mask is not None:
            v = v * mask.astype(v.dtype)
        x = mx.pad(v, [(0, 0), (self.left, self.right), (0, 0)])
        m = depthwise_conv1d(x, self.weight.astype(v.dtype)) + v
        return m if mask is None else m * mask.astype(v.dtype)
