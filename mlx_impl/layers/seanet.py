"""SEANet encoder and decoder (convolutional audio autoencoder of EnCodec), channels-last.

Upstream: transformers 5.24.0 `models/encodec/modeling_encodec.py` (`EncodecResnetBlock`,
`EncodecEncoder`, `EncodecDecoder`, `EncodecLSTM`), a port of `encodec/modules/seanet.py`.

The module lists keep upstream's indices (`layers.{i}`, `block.{i}`), parameter-free ELUs
included, so checkpoint keys map one to one. Encoder: conv, then per ratio (reversed upsampling
ratios) residual blocks + ELU + strided conv (kernel 2 * ratio), then LSTM (with a skip), ELU,
conv to `dimension`. Decoder: the mirror, with transposed convs.

Taps: with `taps` a `Taps` recorder, each non-ELU layer's output is recorded as `{name}.layers.{i}`
(B, T, C); the ELUs are skipped (their outputs are their inputs' elementwise function).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.conv import Conv1d, ConvTranspose1d
from mlx_impl.layers.lstm import LSTM
from mlx_impl.taps import NO_TAPS, Taps



class ELU(nn.Module):
    """ELU(alpha=1) with expm1, as torch's kernel (exact near 0, unlike exp(x) - 1)."""

    def __call__(self, x: mx.array) -> mx.array:
        return mx.where(x > 0, x, mx.expm1(mx.minimum(x, 0)))


@dataclass(frozen=True)
class SEANetOptions:
    channels: int  # audio channels
    dimension: int  # latent width (encoder output, decoder input)
    n_filters: int  # width of the first conv; doubled at every downsampling
    n_residual_layers: int
    ratios: tuple[int, ...]  # upsampling ratios (decoder order); the encoder uses them reversed
    kernel_size: int
    last_kernel_size: int
    residual_kernel_size: int
    dilation_base: int
    causal: bool
    pad_mode: str  # "reflect" | "constant" | "replicate"
    compress: int
    lstm_layers: int  # 0: no LSTM (Mimi's SEANet)
    true_skip: bool  # identity residual shortcut (False: a 1x1 conv, upstream use_conv_shortcut)
    norm: str  # "weight_norm" | "time_group_norm" | "none"
    trim_right_ratio: float = 1.0


class ResnetBlock(nn.Module):
    def __init__(self, o: SEANetOptions, dim: int, dilations: tuple[int, int]):
        super().__init__()
        kernels = (o.residual_kernel_size, 1)
        hidden = dim // o.compress
        conv = dict(causal=o.causal, pad_mode=o.pad_mode, norm=o.norm)
        self.block = []
        for i, (k, d) in enumerate(zip(kernels, dilations)):
            n_in = dim if i == 0 else hidden
            n_out = dim if i == len(kernels) - 1 else hidden
            self.block += [ELU(), Conv1d(n_in, n_out, k, dilation=d, **conv)]
        self.true_skip = o.true_skip
        if not o.true_skip:
            self.shortcut = Conv1d(dim, dim, 1, **conv)

    def __call__(self, x: mx.array) -> mx.array:
        y = x
        for layer in self.block:
            y = layer(y)
        return (x if self.true_skip else self.shortcut(x)) + y


class SkipLSTM(nn.Module):
    """LSTM over time plus its input (upstream `EncodecLSTM`)."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = LSTM(dim, dim, num_layers)

    def __call__(self, x: mx.array) -> mx.array:
        return self.lstm(x) + x


def _run(layers: list, x: mx.array, taps: Taps, name: str) -> mx.array:
    for i, layer in enumerate(layers):
        x = layer(x)
        if not isinstance(layer, ELU):
            x = taps(f"{name}.layers.{i}", x)
    return x


class SEANetEncoder(nn.Module):
    def __init__(self, o: SEANetOptions):
        super().__init__()
        conv = dict(causal=o.causal, pad_mode=o.pad_mode, norm=o.norm)
        self.layers = [Conv1d(o.channels, o.n_filters, o.kernel_size, **conv)]
        scale = 1
        for ratio in reversed(o.ratios):
            width = scale * o.n_filters
            for j in range(o.n_residual_layers):
                self.layers.append(ResnetBlock(o, width, (o.dilation_base ** j, 1)))
            self.layers += [ELU(), Conv1d(width, 2 * width, 2 * ratio, stride=ratio, **conv)]
            scale *= 2
        width = scale * o.n_filters
        if o.lstm_layers:  # 0: no LSTM (Mimi); the layer indices shift down by one
            self.layers.append(SkipLSTM(width, o.lstm_layers))
        self.layers += [ELU(), Conv1d(width, o.dimension, o.last_kernel_size, **conv)]

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS, name: str = "encoder") -> mx.array:
        return _run(self.layers, x, taps, name)  # (B, N, channels) -> (B, frames, dimension)


class SEANetDecoder(nn.Module):
    def __init__(self, o: SEANetOptions):
        super().__init__()
        conv = dict(causal=o.causal, pad_mode=o.pad_mode, norm=o.norm)
        scale = 2 ** len(o.ratios)
        self.layers = [Conv1d(o.dimension, scale * o.n_filters, o.kernel_size, **conv)]
        if o.lstm_layers:
            self.layers.append(SkipLSTM(scale * o.n_filters, o.lstm_layers))
        for ratio in o.ratios:
            width = scale * o.n_filters
            self.layers += [ELU(), ConvTranspose1d(width, width // 2, 2 * ratio, stride=ratio,
                                                   causal=o.causal, norm=o.norm,
                                                   trim_right_ratio=o.trim_right_ratio)]
            for j in range(o.n_residual_layers):
                self.layers.append(ResnetBlock(o, width // 2, (o.dilation_base ** j, 1)))
            scale //= 2
        self.layers += [ELU(), Conv1d(o.n_filters, o.channels, o.last_kernel_size, **conv)]

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS, name: str = "decoder") -> mx.array:
        return _run(self.layers, x, taps, name)  # (B, frames, dimension) -> (B, N', channels)
