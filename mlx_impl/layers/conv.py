"""Padded 1-D convolutions of the SEANet/EnCodec family, channels-last.

Upstream: transformers 5.24.0 `models/encodec/modeling_encodec.py` (`EncodecConv1d`,
`EncodecConvTranspose1d`), itself a port of `encodec/modules/conv.py` (`SConv1d`,
`SConvTranspose1d`, `pad1d`, `get_extra_padding_for_conv1d`).

- `Conv1d` pads its input itself: causal convs pad `kernel_eff - stride` on the left, non-causal
  ones split it (`right = total // 2`, the larger half on the left, for odd strides), and both add
  the "extra padding" on the right that makes the last (partial) window a full one. `pad_mode`
  is upstream's: "reflect" (with upstream's trick for inputs shorter than the padding: zero-extend
  on the right first, reflect, then drop the zero extension), "constant" (zeros) or "replicate"
  (edge samples; Mimi's downsampling conv). `bias=False` and, for transposed convs, `groups`
  (Mimi's depthwise upsampling) are options.
- `ConvTranspose1d` runs the plain transposed convolution and trims `kernel - stride` samples:
  causal -> `ceil(total * trim_right_ratio)` on the right and the rest on the left; non-causal ->
  `total // 2` on the right. The extra padding of the encoder is not trimmed here (upstream trims
  it once at the end, from the input length).
- `norm="time_group_norm"` is a `GroupNorm(1, out)` after the conv (upstream's 48 kHz model),
  `layers.group_norm.GroupNorm` (blocked sums: `nn.GroupNorm` over a 48000-step chunk was off
  by 2.3e-2, SNR 56 dB, on the first encoder conv of encodec-48khz; blocked: 7.6e-6);
  `norm="weight_norm"` needs nothing at run time: the weight readers fold the stored (g, v) pair
  into the plain kernel (`weights.weight_norm`).

Layout: activations are (B, T, C); kernels are MLX's (out, k, in) for both convolution types
(torch: Conv1d (out, in, k), ConvTranspose1d (in, out, k); `torch_to_mlx_kernel` transposes).
Attribute names (`conv`, `norm`) equal upstream's so checkpoint keys map one to one.
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.layers.group_norm import GroupNorm
from mlx_impl.layers.torch_conv import ConvTranspose1d as TorchConvTranspose1d

PAD_MODES = ("reflect", "constant", "replicate")
NORMS = ("weight_norm", "time_group_norm", "none")


def torch_to_mlx_kernel(w: np.ndarray, transposed: bool, groups: int = 1) -> np.ndarray:
    """torch Conv1d (out, in, k) or ConvTranspose1d (in, out, k) -> MLX (out, k, in).

    Grouped transposed kernels: torch (in, out / groups, k) -> MLX (out, k, in / groups), input
    channel g * in_per_group + i and output o of group g landing at [g * out_per_group + o, :, i].
    """
    if w.ndim != 3:
        raise ValueError(f"expected a 1-D conv kernel with 3 axes, got shape {w.shape}")
    if transposed and groups > 1:
        n_in, out_per_group, k = w.shape
        w = w.reshape(groups, n_in // groups, out_per_group, k).transpose(0, 2, 3, 1)
        return w.reshape(groups * out_per_group, k, n_in // groups)
    return w.transpose(1, 2, 0) if transposed else w.transpose(0, 2, 1)


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding that makes the last window full, so no input sample is dropped."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + kernel_size - padding_total
    return ideal_length - length


def _reflect_index(n: int, left: int, right: int) -> np.ndarray:
    """Source indices of torch's reflect padding (edge sample not repeated); needs n > max pad."""
    idx = np.arange(-left, n + right)
    idx = np.abs(idx)
    return np.where(idx > n - 1, 2 * (n - 1) - idx, idx)


def pad1d(x: mx.array, left: int, right: int, mode: str = "constant") -> mx.array:
    """Pad the time axis of x (B, T, C) as upstream's `_pad1d`."""
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {mode!r}; use one of {PAD_MODES}")
    if left < 0 or right < 0:
        raise ValueError(f"negative padding ({left}, {right})")
    if left == 0 and right == 0:
        return x
    if mode == "constant":
        return mx.pad(x, [(0, 0), (left, right), (0, 0)])
    if mode == "replicate":  # the edge samples repeated (torch F.pad mode="replicate")
        idx = np.clip(np.arange(-left, x.shape[1] + right), 0, x.shape[1] - 1)
        return mx.take(x, mx.array(idx.astype(np.int32)), axis=1)
    n = x.shape[1]
    extra = 0
    if n <= max(left, right):
        # torch's reflect needs pad < length: zero-extend, reflect, then drop the extension
        extra = max(left, right) - n + 1
        x = mx.pad(x, [(0, 0), (0, extra), (0, 0)])
    idx = _reflect_index(x.shape[1], left, right)
    out = mx.take(x, mx.array(idx.astype(np.int32)), axis=1)
    return out[:, : out.shape[1] - extra] if extra else out


class Conv1d(nn.Module):
    """Conv1d that pads its input (causal or centred, reflect or zeros), as `EncodecConv1d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, *, causal: bool, pad_mode: str = "reflect",
                 norm: str = "weight_norm", bias: bool = True):
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}; use one of {PAD_MODES}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                              dilation=dilation, bias=bias)
        if norm == "time_group_norm":
            self.norm = GroupNorm(1, out_channels)
        self.causal, self.pad_mode, self.use_group_norm = causal, pad_mode, norm == "time_group_norm"
        self.stride = stride
        self.kernel_eff = (kernel_size - 1) * dilation + 1
        self.padding_total = self.kernel_eff - stride

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C_in) -> (B, T', C_out)
        extra = extra_padding_for_conv1d(x.shape[1], self.kernel_eff, self.stride,
                                         self.padding_total)
        if self.causal:
            left, right = self.padding_total, extra
        else:
            right = self.padding_total // 2
            left, right = self.padding_total - right, right + extra
        y = self.conv(pad1d(x, left, right, self.pad_mode))
        return self.norm(y) if self.use_group_norm else y


class GroupedConvTranspose1d(nn.Module):
    """Transposed conv with `groups` (MLX's nn.ConvTranspose1d has none): weight (out, k, in / groups)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 groups: int, bias: bool = True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels ({in_channels} -> {out_channels}) not divisible by "
                             f"groups={groups}")
        self.stride, self.groups = stride, groups
        self.weight = mx.zeros((out_channels, kernel_size, in_channels // groups))
        if bias:
            self.bias = mx.zeros((out_channels,))

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C_in) -> (B, (T - 1) * stride + k, C_out)
        y = mx.conv_transpose1d(x, self.weight, stride=self.stride, groups=self.groups)
        return y + self.bias if "bias" in self else y


class ConvTranspose1d(nn.Module):
    """ConvTranspose1d followed by upstream's fixed trimming, as `EncodecConvTranspose1d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *,
                 causal: bool, trim_right_ratio: float = 1.0, norm: str = "weight_norm",
                 groups: int = 1, bias: bool = True):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; use one of {NORMS}")
        if not (causal or trim_right_ratio == 1.0):
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")
        if groups == 1:
            # torch_conv's matmul + overlap-add form, not nn.ConvTranspose1d: MLX's CPU
            # transposed conv takes a slow generic path (EnCodec 24 kHz decode of 10 s: 25 s,
            # against 0.6 s for torch; same parameters, same output length (T - 1) * stride + k)
            self.conv = TorchConvTranspose1d(in_channels, out_channels, kernel_size,
                                             stride=stride, bias=bias)
        else:
            self.conv = GroupedConvTranspose1d(in_channels, out_channels, kernel_size, stride,
                                               groups, bias)
        if norm == "time_group_norm":
            self.norm = GroupNorm(1, out_channels)
        self.use_group_norm = norm == "time_group_norm"
        total = kernel_size - stride
        right = math.ceil(total * trim_right_ratio) if causal else total // 2
        self.trim = (total - right, right)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C_in) -> (B, T * stride, C_out)
        y = self.conv(x)
        if self.use_group_norm:
            y = self.norm(y)
        left, right = self.trim
        return y[:, left: y.shape[1] - right]
