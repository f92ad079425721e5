"""ECAPA-TDNN speaker encoder (inference), channels-last.

Upstream: spark-tts-lib 0.2.1 `modules/speaker/ecapa_tdnn.py` (`ECAPA_TDNN`, adapted there from
lawlict/ECAPA-TDNN and WeSpeaker) and `pooling_layers.py` (`ASTP`); the same blocks serve
IndexTTS's speaker embedding.

- `Conv1dReluBn`: conv -> ReLU -> BatchNorm (this order, as upstream).
- `Res2Conv1dReluBn`: the channels split into `scale` groups; group i (i < scale - 1) is
  conv(relu, bn) of (previous group's output + input group i); the last group passes through.
- `SERes2Block`: 1x1 Conv1dReluBn -> Res2 (dilated k=3) -> 1x1 Conv1dReluBn -> squeeze-excite
  (time mean -> Linear -> ReLU -> Linear -> sigmoid, a per-channel gain), plus the input.
- `EcapaTdnn`: layer1 (k=5) then three SE-Res2 blocks at dilations 2, 3, 4; their outputs
  concatenated over channels; `conv` 1x1 to 1536 and ReLU: the frame-level `latent`; attentive
  statistics pooling (`ASTP`, optionally with the global context: the frames' mean and standard
  deviation appended to every frame, torch's unbiased `var` + 1e-7 under the root), BatchNorm,
  Linear: the utterance embedding.
BatchNorm runs in inference form with its running statistics: (x - mean) / sqrt(var + eps) *
weight + bias, eps 1e-5. Attribute names are upstream's (`layer1.conv`, `layer2.se_res2block`
entries as `blocks`: the converter maps `se_res2block.{i}` to them; `pool.linear1`, `bn`,
`linear`). Layout: input (B, T, F) (upstream (B, T, F) too, permuted inside), frames (B, T, C).
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.activations import softmax
from mlx_impl.layers.torch_conv import Conv1d

BN_EPS = 1e-5
STD_EPS = 1e-7  # ASTP's floor under the square roots


class BatchNorm1d(nn.Module):
    """torch `BatchNorm1d` in eval mode over the last axis."""

    def __init__(self, channels: int, eps: float = BN_EPS):
        super().__init__()
        self.eps = eps
        self.weight, self.bias = mx.ones((channels,)), mx.zeros((channels,))
        self.running_mean, self.running_var = mx.zeros((channels,)), mx.ones((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        return (x - self.running_mean) / mx.sqrt(self.running_var + self.eps) * self.weight \
            + self.bias


class Conv1dReluBn(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int = 1, padding: int = 0,
                 dilation: int = 1):
        super().__init__()
        self.conv = Conv1d(n_in, n_out, kernel, padding=padding, dilation=dilation)
        self.bn = BatchNorm1d(n_out)

    def __call__(self, x: mx.array) -> mx.array:
        return self.bn(nn.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    def __init__(self, channels: int, kernel: int, padding: int, dilation: int, scale: int):
        super().__init__()
        if channels % scale:
            raise ValueError(f"{channels} channels do not split into {scale} Res2 groups")
        self.scale, self.width = scale, channels // scale
        n = scale if scale == 1 else scale - 1
        self.convs = [Conv1d(self.width, self.width, kernel, padding=padding, dilation=dilation)
                      for _ in range(n)]
        self.bns = [BatchNorm1d(self.width) for _ in range(n)]

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C)
        groups = mx.split(x, self.scale, axis=-1)
        out, sp = [], groups[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            if i >= 1:
                sp = sp + groups[i]
            sp = bn(nn.relu(conv(sp)))
            out.append(sp)
        if self.scale != 1:
            out.append(groups[len(self.convs)])
        return mx.concatenate(out, axis=-1)


class SEConnect(nn.Module):
    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C)
        s = mx.sigmoid(self.linear2(nn.relu(self.linear1(x.mean(axis=1)))))
        return x * s[:, None]


class SERes2Block(nn.Module):
    def __init__(self, channels: int, kernel: int, padding: int, dilation: int, scale: int):
        super().__init__()
        self.blocks = [Conv1dReluBn(channels, channels),
                       Res2Conv1dReluBn(channels, kernel, padding, dilation, scale),
                       Conv1dReluBn(channels, channels), SEConnect(channels)]

    def __call__(self, x: mx.array) -> mx.array:
        y = x
        for block in self.blocks:
            y = block(y)
        return x + y


class ASTP(nn.Module):
    """Attentive statistics pooling: (B, T, C) -> (B, 2C) (weighted mean, weighted std)."""

    def __init__(self, in_dim: int, bottleneck: int = 128, global_context: bool = False):
        super().__init__()
        self.global_context = global_context
        self.linear1 = Conv1d(in_dim * 3 if global_context else in_dim, bottleneck, 1)
        self.linear2 = Conv1d(bottleneck, in_dim, 1)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C)
        if self.global_context:
            t = x.shape[1]
            mean = x.mean(axis=1, keepdims=True)
            var = ((x - mean) ** 2).sum(axis=1, keepdims=True) / (t - 1)  # torch.var: unbiased
            std = mx.sqrt(var + STD_EPS)
            x_in = mx.concatenate([x, mx.broadcast_to(mean, x.shape),
                                   mx.broadcast_to(std, x.shape)], axis=-1)
        else:
            x_in = x
        alpha = softmax(self.linear2(mx.tanh(self.linear1(x_in))), axis=1)  # over time
        mean = (alpha * x).sum(axis=1)
        var = (alpha * x * x).sum(axis=1) - mean * mean
        return mx.concatenate([mean, mx.sqrt(mx.maximum(var, STD_EPS))], axis=-1)


class EcapaTdnn(nn.Module):
    def __init__(self, feat_dim: int, embed_dim: int, channels: int = 512,
                 global_context: bool = True, out_channels: int = 1536):
        super().__init__()
        self.layer1 = Conv1dReluBn(feat_dim, channels, 5, padding=2)
        self.layer2 = SERes2Block(channels, 3, 2, 2, 8)
        self.layer3 = SERes2Block(channels, 3, 3, 3, 8)
        self.layer4 = SERes2Block(channels, 3, 4, 4, 8)
        self.conv = Conv1d(channels * 3, out_channels, 1)
        self.pool = ASTP(out_channels, global_context=global_context)
        self.bn = BatchNorm1d(out_channels * 2)
        self.linear = nn.Linear(out_channels * 2, embed_dim)

    def frames(self, x: mx.array, taps=None, name: str = "") -> mx.array:
        """(B, T, feat_dim) -> the frame-level latent (B, T, out_channels) (after the ReLU)."""
        rec = taps if taps is not None else (lambda _n, v: v)
        out1 = rec(f"{name}.layer1", self.layer1(x))
        out2 = rec(f"{name}.layer2", self.layer2(out1))
        out3 = rec(f"{name}.layer3", self.layer3(out2))
        out4 = rec(f"{name}.layer4", self.layer4(out3))
        h = rec(f"{name}.conv", self.conv(mx.concatenate([out2, out3, out4], axis=-1)))
        return nn.relu(h)

    def embed(self, latent: mx.array) -> mx.array:
        """The frame-level latent -> the utterance embedding (B, embed_dim)."""
        return self.linear(self.bn(self.pool(latent)))

    def __call__(self, x: mx.array) -> tuple[mx.array, mx.array]:
        latent = self.frames(x)
        return self.embed(latent), latent
