"""torch-semantics `Conv1d` / `ConvTranspose1d` (zero `padding`, `output_padding`, `dilation`,
`groups`), channels-last, built on MLX's fast paths.

Why not `mlx.nn.Conv1d` / `nn.ConvTranspose1d` directly: on the CPU (MLX 0.32.4) their dilated
and transposed convolutions take a slow generic path. Measured on this 2-core x86 host:
a k=7 dilation-9 conv of 768 channels over 5504 frames took 257 s (2.1 s as below), a stride-8
transposed conv 1536 -> 768 over 688 frames 192 s. So:
- dilated convs run as an undilated conv on the `dilation` interleaved phases of the padded
  input (output t = q * d + r only reads inputs r, r + d, r + 2d, ...: each phase is an ordinary
  conv), the same products summed per output;
- depthwise convs (groups = channels) run as shifted multiply-adds (`depthwise_conv1d`);
- transposed convs run as one matmul, (T, C_in) x (C_in, k * C_out), and an overlap-add of the
  ceil(k / stride) stride-long pieces of each frame's contribution, then torch's crop
  (`padding` on both sides, `output_padding` extra on the right).
Both agree with torch to float32 rounding (tests/test_dac.py, tests/test_layers_vq.py).

Parameters as MLX's layers: `weight` (out, k, in / groups), `bias` (out,); the converters
(`mlx_impl.dac.convert`) produce that layout from torch's.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn


def depthwise_conv1d(x: mx.array, weight: mx.array, dilation: int = 1) -> mx.array:
    """torch's depthwise conv (groups = channels, stride 1, no padding): x (B, L, C), weight
    (C, k, 1) channels-last -> (B, L - (k - 1) * dilation, C).

    On the CPU it is k shifted multiply-adds, accumulated in float32: MLX 0.32.4's grouped
    conv takes a generic path there, measured on this 2-core host at k=7: 1024 channels x 7500
    frames 7.87 s against 0.11 s this way, 64 x 240000 2.05 s against 0.43 s (max difference
    3e-6, rounding). Elsewhere (Metal, CUDA) it is MLX's own grouped conv."""
    C, k = weight.shape[0], weight.shape[1]
    if x.shape[-1] != C or weight.shape[2] != 1:
        raise ValueError(f"depthwise weight {weight.shape} does not match {C} input channels")
    n = x.shape[1] - (k - 1) * dilation
    if n <= 0:
        raise ValueError(f"input of {x.shape[1]} frames is too short for a kernel of {k} taps "
                         f"at dilation {dilation}")
    if mx.default_device() != mx.cpu:
        return mx.conv1d(x, weight, dilation=dilation, groups=C)
    dtype = x.dtype
    x, w = x.astype(mx.float32), weight[:, :, 0].T.astype(mx.float32)  # w (k, C)
    y = x[:, :n] * w[0]
    for j in range(1, k):
        y = y + x[:, j * dilation: j * dilation + n] * w[j]
    return y.astype(dtype)


class Conv1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels ({in_channels} -> {out_channels}) not divisible by "
                             f"groups={groups}")
        if dilation > 1 and stride > 1:
            raise ValueError("dilation and stride together are not supported")
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.weight = mx.zeros((out_channels, kernel_size, in_channels // groups))
        if bias:
            self.bias = mx.zeros((out_channels,))

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C_in) -> (B, T', C_out)
        p, d = self.padding, self.dilation
        if p:
            x = mx.pad(x, [(0, 0), (p, p), (0, 0)])
        c_out, _, c_in_per_group = self.weight.shape
        if self.groups == c_out and c_in_per_group == 1 and self.stride == 1:
            y = depthwise_conv1d(x, self.weight, d)
        elif d == 1:
            y = mx.conv1d(x, self.weight, stride=self.stride, groups=self.groups)
        else:
            B, L, C = x.shape
            n_out = L - (self.weight.shape[1] - 1) * d
            if n_out <= 0:
                raise ValueError(f"input of {L - 2 * p} frames is too short for a kernel of "
                                 f"{self.weight.shape[1]} taps at dilation {d}")
            Lp = -(-L // d) * d
            x = mx.pad(x, [(0, 0), (0, Lp - L), (0, 0)])
            phases = x.reshape(B, Lp // d, d, C).transpose(0, 2, 1, 3).reshape(B * d, Lp // d, C)
            y = mx.conv1d(phases, self.weight, groups=self.groups)  # (B * d, n, C_out)
            n = y.shape[1]
            y = y.reshape(B, d, n, -1).transpose(0, 2, 1, 3).reshape(B, n * d, -1)[:, :n_out]
        return y + self.bias if "bias" in self else y


class ConvTranspose1d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, bias: bool = True):
        super().__init__()
        if output_padding >= max(stride, 1) or output_padding > padding:
            raise ValueError(f"output_padding={output_padding} must be < stride ({stride}) and "
                             f"<= padding ({padding})")
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.weight = mx.zeros((out_channels, kernel_size, in_channels))
        if bias:
            self.bias = mx.zeros((out_channels,))

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C_in) -> (B, L, C_out)
        B, T, _ = x.shape
        c_out, k, c_in = self.weight.shape
        s = self.stride
        n = -(-k // s)  # stride-long pieces per frame
        w = self.weight.transpose(2, 1, 0)  # (C_in, k, C_out)
        if n * s > k:
            w = mx.pad(w, [(0, 0), (0, n * s - k), (0, 0)])
        y = (x @ w.reshape(c_in, n * s * c_out)).reshape(B, T, n, s * c_out)
        full = None
        for c in range(n):  # piece c of frame t lands at (t + c) * s
            piece = y[:, :, c].reshape(B, T * s, c_out)
            piece = mx.pad(piece, [(0, 0), (c * s, (n - 1 - c) * s), (0, 0)])
            full = piece if full is None else full + piece
        length = (T - 1) * s + k - 2 * self.padding + self.output_padding
        out = full[:, self.padding: self.padding + length]
        return out + self.bias if "bias" in self else out


class DepthwiseConvTranspose1d(nn.Module):
    """torch `ConvTranspose1d(C, C, k, stride, padding, output_padding, groups=C)`,
    channels-last. `weight` (C, k, 1) (torch's (C, 1, k) transposed), `bias` (C,). Each channel
    is its own filter: frame t's sample times tap j lands at t * stride + j, then torch's crop."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, bias: bool = True):
        super().__init__()
        if output_padding >= max(stride, 1) or output_padding > padding:
            raise ValueError(f"output_padding={output_padding} must be < stride ({stride}) and "
                             f"<= padding ({padding})")
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.weight = mx.zeros((channels, kernel_size, 1))
        if bias:
            self.bias = mx.zeros((channels,))

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C) -> (B, L, C)
        B, T, C = x.shape
        k, s = self.weight.shape[1], self.stride
        full_len = (T - 1) * s + k
        full = None
        for j in range(k):
            z = x * self.weight[:, j, 0]  # (B, T, C)
            if s > 1:  # zero-stuff: sample t at t * s
                z = mx.concatenate([z[:, :, None], mx.zeros((B, T, s - 1, C), z.dtype)], axis=2)
                z = z.reshape(B, T * s, C)[:, : (T - 1) * s + 1]
            z = mx.pad(z, [(0, 0), (j, full_len - j - z.shape[1]), (0, 0)])
            full = z if full is None else full + z
        length = full_len - 2 * self.padding + self.output_padding
        out = full[:, self.padding: self.padding + length]
        return out + self.bias if "bias" in self else out
