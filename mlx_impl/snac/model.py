"""SNAC (Multi-Scale Neural Audio Codec) in MLX: DAC-style encoder and decoder with depthwise
residual units, optional local windowed attention, noise blocks, and a factorised residual VQ
whose stages run at different frame rates.

Upstream: `snac` 1.2.1 (`snac/snac.py`, `layers.py`, `attention.py`, `vq.py`). Module attribute
names equal the checkpoint keys (`encoder.block.{i}`, `decoder.model.{i}`, the inner
`block.{j}` of nn.Sequential), so `convert.py` only folds weight norm, squeezes Snake alphas and
transposes kernels.

API (mono audio (B, N) float at `cfg.sampling_rate`; codes as upstream: one array per stage):

    model = SnacModel(cfg)
    model.load_weights(list(convert(state).items()), strict=True)
    codes = model.encode(audio, sample_rate=24000)   # [(B, T / s_i) int32 for s_i in vq_strides]
    audio_out = model.decode(codes, noise=None)      # (B, T * hop), T = frames of the padded input

Noise: each decoder block with `noise=True` adds `randn(B, 1, T) * linear(x)`. Upstream draws
that noise with torch's generator, which MLX cannot reproduce; `decode(codes, noise=[...])`
takes the draws (one (B, T_k, 1) array per noise block, in decoder order; `noise_shapes` says
which) so a comparison can feed both sides the same numbers. Without it, MLX's own normal
generator is used (`key=` for reproducibility): same distribution, different samples.

Deviations from upstream:
- Audio is (B, N) (upstream (B, 1, N)); `__call__` returns (codes, audio cut to the input
  length) where upstream's `forward` returns (audio, codes).
- Bad input raises with the problem and the fix (wrong rate, shape, empty audio, codes of the
  wrong count, shape or range, noise of the wrong shape).

Taps (pass `taps=Taps()`, mlx_impl/taps.py), channels-last (B, T, C): `encoder.block.{i}`
(every element),
`quantizer.codes.{q}` (B, T_q),
`quantizer.latents.{q}` (B, T_q, d), `quantizer.quantized` (encode side), `quantizer.from_codes`
(decode side), `decoder.model.{i}` (every element but the final tanh),
`decoder.model.{i}.block.1` (transposed conv) and `.block.2` (noise block, when present),
`audio_values` (B, N).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.audio_checks import codec_audio
from mlx_impl.layers.attention import scaled_dot_product_attention
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.layers.rope import RotaryEmbedding
from mlx_impl.layers.torch_conv import Conv1d, ConvTranspose1d
from mlx_impl.layers.snake import Snake
from mlx_impl.layers.vq_factorized import ResidualFactorizedVQ
from mlx_impl.snac.config import SnacConfig
from mlx_impl.taps import NO_TAPS, Taps

class ResidualUnit(nn.Module):
    """block = [Snake, dilated k=7 conv (grouped), Snake, 1x1 conv]; output + centre-cropped input."""

    def __init__(self, dim: int, dilation: int, groups: int = 1, kernel: int = 7):
        super().__init__()
        pad = ((kernel - 1) * dilation) // 2
        self.block = [Snake(dim), Conv1d(dim, dim, kernel, padding=pad, dilation=dilation,
                                            groups=groups),
                      Snake(dim), Conv1d(dim, dim, 1)]

    def __call__(self, x: mx.array) -> mx.array:
        y = x
        for layer in self.block:
            y = layer(y)
        crop = (x.shape[1] - y.shape[1]) // 2
        if crop > 0:
            x = x[:, crop:-crop]
        return x + y


class EncoderBlock(nn.Module):
    def __init__(self, output_dim: int, stride: int, groups: int):
        super().__init__()
        d = output_dim // 2
        self.block = [ResidualUnit(d, 1, groups), ResidualUnit(d, 3, groups),
                      ResidualUnit(d, 9, groups), Snake(d),
                      Conv1d(d, output_dim, 2 * stride, stride=stride,
                                padding=math.ceil(stride / 2))]

    def __call__(self, x: mx.array) -> mx.array:
        for layer in self.block:
            x = layer(x)
        return x


class NoiseBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.linear = Conv1d(dim, dim, 1, bias=False)

    def __call__(self, x: mx.array, noise: mx.array) -> mx.array:  # x (B, T, C), noise (B, T, 1)
        return x + noise * self.linear(x)


class DecoderBlock(nn.Module):
    def __init__(self, input_dim: int, output_dim: int, stride: int, noise: bool, groups: int):
        super().__init__()
        layers = [Snake(input_dim),
                  ConvTranspose1d(input_dim, output_dim, 2 * stride, stride=stride,
                                     padding=math.ceil(stride / 2), output_padding=stride % 2)]
        if noise:
            layers.append(NoiseBlock(output_dim))
        layers += [ResidualUnit(output_dim, 1, groups), ResidualUnit(output_dim, 3, groups),
                   ResidualUnit(output_dim, 9, groups)]
        self.block = layers

    def __call__(self, x: mx.array, noise: list, taps: Taps = NO_TAPS, name: str = "") -> mx.array:
        for j, layer in enumerate(self.block):
            x = layer(x, noise.pop(0)) if isinstance(layer, NoiseBlock) else layer(x)
            if j in (1, 2) and not isinstance(layer, ResidualUnit):  # upsampling conv, noise
                x = taps(f"{name}.block.{j}", x)
        return x


class LocalMHA(nn.Module):
    """Pre-norm multi-head attention within non-overlapping windows, rotary positions 0..w-1
    inside each window, plus the input (upstream `LocalMHA`, heads of 64)."""

    def __init__(self, dim: int, window_size: int, dim_head: int = 64):
        super().__init__()
        self.norm = LayerNorm(dim)
        self.heads, self.dim_head, self.window_size = dim // dim_head, dim_head, window_size
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.rope = RotaryEmbedding(dim_head, base=10000.0)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C), T a multiple of the window
        B, T, C = x.shape
        w, H, d = self.window_size, self.heads, self.dim_head
        if T % w:
            raise ValueError(f"local attention needs a multiple of {w} frames, got {T}; pad the "
                             "input as SnacModel.encode does")
        q, k, v = mx.split(self.to_qkv(self.norm(x)), 3, axis=-1)

        def windows(t):  # (B, T, H*d) -> (B, H * n_windows, w, d)
            t = t.reshape(B, T // w, w, H, d).transpose(0, 3, 1, 2, 4)
            return t.reshape(B, H * (T // w), w, d)

        q, k, v = (windows(t) for t in (q, k, v))
        q, k = self.rope(q), self.rope(k)
        out = scaled_dot_product_attention(q, k, v, d ** -0.5)
        out = out.reshape(B, H, T // w, w, d).transpose(0, 2, 3, 1, 4).reshape(B, T, C)
        return self.to_out(out) + x


class Encoder(nn.Module):
    def __init__(self, cfg: SnacConfig):
        super().__init__()
        d = cfg.encoder_dim
        layers = [Conv1d(1, d, 7, padding=3)]
        for stride in cfg.encoder_rates:
            d *= 2
            layers.append(EncoderBlock(d, stride, d // 2 if cfg.depthwise else 1))
        if cfg.attn_window_size is not None:
            layers.append(LocalMHA(d, cfg.attn_window_size))
        layers.append(Conv1d(d, d, 7, padding=3, groups=d if cfg.depthwise else 1))
        self.block = layers

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, N, 1) -> (B, T, D)
        for i, layer in enumerate(self.block):
            name = f"encoder.block.{i}"
            x = layer(x)
            x = taps(name, x)
        return x


class Decoder(nn.Module):
    def __init__(self, cfg: SnacConfig):
        super().__init__()
        c_in, c = cfg.latent, cfg.decoder_dim
        if cfg.depthwise:
            layers = [Conv1d(c_in, c_in, 7, padding=3, groups=c_in), Conv1d(c_in, c, 1)]
        else:
            layers = [Conv1d(c_in, c, 7, padding=3)]
        if cfg.attn_window_size is not None:
            layers.append(LocalMHA(c, cfg.attn_window_size))
        for i, stride in enumerate(cfg.decoder_rates):
            out_dim = c // 2 ** (i + 1)
            layers.append(DecoderBlock(c // 2 ** i, out_dim, stride, cfg.noise,
                                       out_dim if cfg.depthwise else 1))
        layers += [Snake(out_dim), Conv1d(out_dim, 1, 7, padding=3)]
        self.model = layers  # upstream's final nn.Tanh (no parameters) is applied in __call__

    def __call__(self, x: mx.array, noise: list, taps: Taps = NO_TAPS) -> mx.array:
        for i, layer in enumerate(self.model):
            name = f"decoder.model.{i}"
            x = layer(x, noise, taps, name) if isinstance(layer, DecoderBlock) else layer(x)
            x = taps(name, x)
        return mx.tanh(x)  # (B, N, 1)


class SnacModel(nn.Module):
    def __init__(self, cfg: SnacConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.cfg, self.dtype = cfg, dtype
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualFactorizedVQ(cfg.latent, cfg.codebook_size, cfg.codebook_dim,
                                              cfg.vq_strides, distance="descript")
        self.decoder = Decoder(cfg)

        # mlx_impl.codec.Codec
        self.sample_rate, self.frame_rate = cfg.sampling_rate, cfg.sampling_rate / cfg.hop_length
        self.n_codebooks, self.codebook_size = self.quantizer.n_codebooks, cfg.codebook_size

    # -- checks ------------------------------------------------------------------------------

    def _check_audio(self, audio, sample_rate: int) -> mx.array:
        return codec_audio(audio, sample_rate, self.cfg.sampling_rate, self.dtype)

    def noise_shapes(self, batch: int, frames: int) -> list[tuple[int, int, int]]:
        """(B, T_k, 1) of the noise each noise block draws when decoding `frames` latent frames."""
        if not self.cfg.noise:
            return []
        out, t = [], frames
        for r in self.cfg.decoder_rates:
            t *= r
            out.append((batch, t, 1))
        return out

    # -- encode / decode ---------------------------------------------------------------------

    def preprocess(self, x: mx.array) -> mx.array:
        """Zero-pad (B, N) on the right to a multiple of `cfg.pad_multiple` (upstream)."""
        m = self.cfg.pad_multiple
        pad = -(-x.shape[1] // m) * m - x.shape[1]
        return mx.pad(x, [(0, 0), (0, pad)]) if pad else x

    def encode(self, audio, sample_rate: int, taps: Taps = NO_TAPS) -> list[mx.array]:
        """audio (B, N) -> codes [(B, T / s_q) int32 for each stage q]."""
        x = self.preprocess(self._check_audio(audio, sample_rate))
        z = self.encoder(x[:, :, None], taps=taps)
        quantized, codes, latents = self.quantizer.encode(z)
        for q, (c, lat) in enumerate(zip(codes, latents)):
            taps(f"quantizer.latents.{q}", lat)
            taps(f"quantizer.codes.{q}", c)
        quantized = taps("quantizer.quantized", quantized)
        return codes

    def decode(self, codes, noise: list | None = None, key: mx.array | None = None,
               taps: Taps = NO_TAPS) -> mx.array:
        """codes of every stage -> audio (B, frames * hop). `noise`: see the module docstring."""
        codes = [mx.array(c) if isinstance(c, np.ndarray) else c for c in codes]
        if len(codes) != self.quantizer.n_codebooks:
            raise ValueError(f"SNAC decodes from all {self.quantizer.n_codebooks} stages (strides "
                             f"{list(self.cfg.vq_strides)}); got {len(codes)} code arrays")
        z = self.quantizer.decode(codes).astype(self.dtype)
        z = taps("quantizer.from_codes", z)
        shapes = self.noise_shapes(z.shape[0], z.shape[1])
        if noise is None:
            keys = mx.random.split(key, max(len(shapes), 1)) if key is not None else [None] * len(shapes)
            noise = [mx.random.normal(s, dtype=self.dtype, key=k) for s, k in zip(shapes, keys)]
        else:
            noise = [mx.array(n) if isinstance(n, np.ndarray) else n for n in noise]
            got = [tuple(n.shape) for n in noise]
            if got != shapes:
                raise ValueError(f"noise shapes {got} do not match the decoder's {shapes} "
                                 f"(one (batch, frames, 1) array per noise block)")
            noise = [n.astype(self.dtype) for n in noise]
        return self.decoder(z, list(noise), taps=taps)[:, :, 0]

    # -- mlx_impl.codec.Codec: codes are a list, one (B, frames_q) int32 array per stage,
    # coarsest first (stage q runs at frame_rate / vq_strides[q]) --------------------------

    def encode_audio(self, audio: mx.array) -> list[mx.array]:
        """(B, N) audio at `sample_rate` -> codes [(B, frames_q) int32 per stage]."""
        return self.encode(audio, self.cfg.sampling_rate)

    def decode_codes(self, codes: list[mx.array], key: mx.array | None = None) -> mx.array:
        """Codes of every stage -> audio (B, frames * hop). The decoder's noise blocks draw from
        MLX's generator (`key`), or pass `noise=` to `decode` to inject the draws."""
        return self.decode(codes, key=key)

    def __call__(self, audio, sample_rate: int, noise: list | None = None,
                 taps: Taps = NO_TAPS) -> tuple[list[mx.array], mx.array]:
        """Encode, decode, cut to the input length: (codes, audio (B, N))."""
        n = int(audio.shape[1]) if hasattr(audio, "shape") and len(audio.shape) == 2 else None
        codes = self.encode(audio, sample_rate, taps=taps)
        out = self.decode(codes, noise=noise, taps=taps)
        out = out[:, :n] if n is not None else out
        out = taps("audio_values", out)
        return codes, out
