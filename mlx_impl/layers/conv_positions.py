"""Convolutional relative position embedding of the wav2vec 2.0 family (channels-last).

Upstream: transformers 5.24.0 `models/wav2vec2/modeling_wav2vec2.py`
`Wav2Vec2PositionalConvEmbedding` + `Wav2Vec2SamePadLayer` (HuBERT, WavLM, Data2VecAudio, SEW
and UniSpeech use the same block): a grouped Conv1d of width `kernel_size` padded by
`kernel_size // 2` on both sides, then, for an even kernel, the last output frame is dropped so
the output is as long as the input; then GELU. The result is *added* to its input by the caller.

Upstream's kernel is weight-normed (`weight_norm(dim=2)`); here it is a plain kernel, folded once
when the checkpoint is converted (`weights.wav2vec2.fold_weight_norm`). The attribute is named
`conv` as upstream, so the checkpoint keys map one to one; its kernel is MLX's (out, k, in/groups).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_impl.layers.activations import gelu


class ConvPositionalEmbedding(nn.Module):
    def __init__(self, dims: int, kernel_size: int, groups: int):
        super().__init__()
        if dims % groups:
            raise ValueError(f"dims={dims} is not divisible by groups={groups}")
        self.conv = nn.Conv1d(dims, dims, kernel_size, padding=kernel_size // 2, groups=groups)
        self.n_trim = 1 if kernel_size % 2 == 0 else 0  # even kernel: one frame too many

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, T, C)
        y = self.conv(x)
        if self.n_trim:
            y = y[:, : y.shape[1] - self.n_trim]
        return gelu(y)
