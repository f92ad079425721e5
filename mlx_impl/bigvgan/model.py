"""BigVGAN v2 generator (mel -> 24 kHz audio) in MLX.

Upstream: bigvgan 2.4.1 `bigvgan.py` (`BigVGAN`, `AMPBlock1`, `AMPBlock2`) with the torch
anti-aliased activation (`alias_free_activation/torch`, our `mlx_impl.layers.alias_free`), after
`remove_weight_norm()` (the weight reader folds weight norm, `weights.weight_norm`).
Module attribute names equal the checkpoint keys (`conv_pre`, `ups.{i}.0`, `resblocks.{j}.convs1.{n}`,
`resblocks.{j}.activations.{n}.act.alpha`, `activation_post.act.beta`, `conv_post`).

API:
    model = BigVGAN(cfg)
    model.load_weights(list(convert(state).items()), strict=True)
    audio = model(mel)            # mel (B, frames, num_mels) log-mel -> (B, frames * hop_size)
    mel = model.mel(audio)        # BigVGAN's own log-mel front end, (B, N) -> (B, frames, num_mels)

Convolutions are the torch-semantics ones of `mlx_impl/layers/torch_conv.py` (zero `padding`, dilation
and transposed convs on MLX's fast CPU paths).
Deviations: mel is channels-last; bad input (wrong n_mels, empty, NaN/Inf) raises instead of
failing inside a conv.

Taps (pass `taps=Taps()`, mlx_impl/taps.py), channels-last (B, T, C): `conv_pre`, per stage i
`ups.{i}` (transposed conv output), `stage.{i}` (mean of the stage's AMP blocks), `activation_post`, `conv_post`
(before the final tanh / clamp), `audio` (B, N).
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from mlx_impl.bigvgan.config import BigVGANConfig
from mlx_impl.bigvgan.mel import BigVGANMel
from mlx_impl.layers.torch_conv import Conv1d, ConvTranspose1d
from mlx_impl.layers.alias_free import Activation1d
from mlx_impl.layers.snake import Snake, SnakeBeta
from mlx_impl.taps import NO_TAPS, Taps

def _padding(k: int, d: int) -> int:
    return (k * d - d) // 2  # upstream utils.get_padding


def _act(cfg: BigVGANConfig, ch: int) -> Activation1d:
    a = SnakeBeta(ch, cfg.snake_logscale) if cfg.activation == "snakebeta" else Snake(ch, cfg.snake_logscale)
    return Activation1d(a)


class AMPBlock(nn.Module):
    """AMPBlock1 (convs1 dilated + convs2 undilated) or AMPBlock2 (convs), residual per pair."""

    def __init__(self, cfg: BigVGANConfig, ch: int, k: int, dilations: tuple[int, ...]):
        super().__init__()
        self.two_convs = cfg.resblock == "1"
        dilated = [Conv1d(ch, ch, k, padding=_padding(k, d), dilation=d) for d in dilations]
        if self.two_convs:
            self.convs1 = dilated
            self.convs2 = [Conv1d(ch, ch, k, padding=_padding(k, 1)) for _ in dilations]
        else:
            self.convs = dilated
        n = len(dilations) * (2 if self.two_convs else 1)
        self.activations = [_act(cfg, ch) for _ in range(n)]

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C)
        if self.two_convs:
            for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations[::2],
                                      self.activations[1::2]):
                x = c2(a2(c1(a1(x)))) + x
        else:
            for c, a in zip(self.convs, self.activations):
                x = c(a(x)) + x
        return x


class BigVGAN(nn.Module):
    def __init__(self, cfg: BigVGANConfig):
        super().__init__()
        self.cfg = cfg
        c0 = cfg.upsample_initial_channel
        self.conv_pre = Conv1d(cfg.num_mels, c0, 7, padding=3)
        self.ups = [[ConvTranspose1d(c0 // 2 ** i, c0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)]
                    for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes))]
        self.resblocks = [AMPBlock(cfg, c0 // 2 ** (i + 1), k, d)
                          for i in range(len(self.ups))
                          for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)]
        ch = c0 // 2 ** len(self.ups)
        self.activation_post = _act(cfg, ch)
        self.conv_post = Conv1d(ch, 1, 7, padding=3, bias=cfg.use_bias_at_final)
        self._mel = BigVGANMel(cfg.sampling_rate, cfg.n_fft, cfg.hop_size, cfg.win_size,
                               cfg.num_mels, cfg.fmin, cfg.fmax)
        # mlx_impl.codec.Vocoder
        self.sample_rate, self.hop_length = cfg.sampling_rate, cfg.hop_size

    def mel(self, audio: mx.array) -> mx.array:
        """BigVGAN's log-mel of audio (B, N) at cfg.sampling_rate -> (B, frames, num_mels)."""
        if audio.ndim != 2 or audio.shape[1] == 0:
            raise ValueError(f"expected mono audio (batch, samples) at {self.cfg.sampling_rate} Hz, "
                             f"got shape {audio.shape}")
        return self._mel(audio)

    def _check(self, mel: mx.array) -> None:
        n = self.cfg.num_mels
        if mel.ndim != 3 or mel.shape[2] != n:
            raise ValueError(f"expected a log-mel (batch, frames, {n}) (channels-last), got shape "
                             f"{mel.shape}; compute it with model.mel(audio) or transpose upstream's "
                             f"(batch, {n}, frames)")
        if mel.shape[1] == 0:
            raise ValueError("empty mel (0 frames); pass at least one frame")
        if not bool(mx.all(mx.isfinite(mel)).item()):
            raise ValueError("mel contains NaN or Inf; check the front end (log of zero?)")

    def __call__(self, mel: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, F, n_mels) -> (B, N)
        self._check(mel)
        nk = len(self.cfg.resblock_kernel_sizes)
        x = self.conv_pre(mel)
        x = taps("conv_pre", x)
        for i, up in enumerate(self.ups):
            for layer in up:
                x = layer(x)
            x = taps(f"ups.{i}", x)
            xs = None
            for j in range(nk):
                y = self.resblocks[i * nk + j](x)
                xs = y if xs is None else xs + y
            x = xs / nk
            x = taps(f"stage.{i}", x)
        x = self.activation_post(x)
        x = taps("activation_post", x)
        x = self.conv_post(x)
        x = taps("conv_post", x)
        x = mx.tanh(x) if self.cfg.use_tanh_at_final else mx.clip(x, -1.0, 1.0)
        audio = x[:, :, 0]
        audio = taps("audio", audio)
        return audio

    # -- mlx_impl.codec.Vocoder ---------------------------------------------------------------

    def vocode(self, features: mx.array) -> mx.array:
        """Log-mel (B, frames, num_mels), as `mel(audio)` computes it -> audio (B, N)."""
        return self(features)
