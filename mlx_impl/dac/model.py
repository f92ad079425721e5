"""DAC (Descript Audio Codec) in MLX: Snake/conv encoder, factorised residual VQ, decoder.

Upstream: transformers 5.24.0 `models/dac/modeling_dac.py` (`DacModel`), a port of Descript's
`descript-audio-codec` (`dac/model/dac.py`). Module attribute names equal the transformers
checkpoint keys, so `convert.py` only folds weight norm (where a file still has it), squeezes
the Snake alphas and transposes kernels.

API (mono audio (B, N) float at `cfg.sampling_rate`; codes as upstream's `audio_codes`):

    model = DacModel(cfg)
    model.load_weights(list(convert(state, cfg).items()), strict=True)
    enc = model.encode(audio, sample_rate=44100, n_quantizers=None)
    enc.codes                                        # (B, n_q, frames) int32
    audio_out = model.decode(enc.codes)              # (B, frames * hop)

Convolutions come from `mlx_impl/layers/torch_conv.py` (torch padding semantics; dilated and transposed
convs restructured onto MLX's fast CPU paths: its own took minutes per layer here).

Deviations from upstream:
- Audio is (B, N) (upstream (B, 1, N)); codes keep upstream's (B, n_q, frames) layout.
- Input that is not a multiple of the hop is encoded as upstream does (the strided convs drop
  the remainder: floor division); nothing is padded. `__call__` cuts the decoded audio to the
  input length, as upstream `forward`.
- Only inference: no losses, no quantizer dropout.
- Bad input raises with the problem and the fix (wrong rate, shape, empty or too-short audio,
  codes of the wrong shape or out of range) where upstream would fail inside a conv or index.

Taps (pass `taps=Taps()`, mlx_impl/taps.py), channels-last (B, T, C):
`encoder.conv1`, `encoder.block.{i}`, `encoder.conv2`
(encoder output), `quantizer.latents` (B, T, n_q * d: upstream's projected latents),
`quantizer.codes` (B, n_q, T), `quantizer.quantized` (encode-side sum of stage outputs),
`quantizer.from_codes` (decode-side), `decoder.conv1`, `decoder.block.{i}.conv_t1`,
`decoder.block.{i}`, `decoder.conv2` (before tanh),
`audio_values` (B, N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.audio_checks import codec_audio
from mlx_impl.dac.config import DacConfig
from mlx_impl.layers.torch_conv import Conv1d, ConvTranspose1d
from mlx_impl.layers.snake import Snake
from mlx_impl.layers.vq_factorized import ResidualFactorizedVQ
from mlx_impl.taps import NO_TAPS, Taps

@dataclass(frozen=True)
class DacEncoded:
    codes: mx.array  # (B, n_q, frames) int32
    quantized: mx.array  # (B, frames, hidden_size) encode-side quantized latents
    latents: mx.array  # (B, frames, n_q * codebook_dim) projected latents
    n_samples: int  # input length


class ResidualUnit(nn.Module):
    """Snake -> dilated k=7 conv -> Snake -> 1x1 conv, plus the input (centre-cropped if needed)."""

    def __init__(self, dim: int, dilation: int, kernel: int = 7):
        super().__init__()
        pad = ((kernel - 1) * dilation) // 2
        self.snake1 = Snake(dim)
        self.conv1 = Conv1d(dim, dim, kernel, padding=pad, dilation=dilation)
        self.snake2 = Snake(dim)
        self.conv2 = Conv1d(dim, dim, 1)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C)
        y = self.conv2(self.snake2(self.conv1(self.snake1(x))))
        crop = (x.shape[1] - y.shape[1]) // 2
        if crop > 0:
            x = x[:, crop:-crop]
        return x + y


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.res_unit1 = ResidualUnit(dim // 2, 1)
        self.res_unit2 = ResidualUnit(dim // 2, 3)
        self.res_unit3 = ResidualUnit(dim // 2, 9)
        self.snake1 = Snake(dim // 2)
        self.conv1 = Conv1d(dim // 2, dim, 2 * stride, stride=stride,
                               padding=math.ceil(stride / 2))

    def __call__(self, x: mx.array) -> mx.array:
        x = self.res_unit3(self.res_unit2(self.res_unit1(x)))
        return self.conv1(self.snake1(x))


class DecoderBlock(nn.Module):
    def __init__(self, input_dim: int, output_dim: int, stride: int):
        super().__init__()
        self.snake1 = Snake(input_dim)
        self.conv_t1 = ConvTranspose1d(input_dim, output_dim, 2 * stride, stride=stride,
                                          padding=math.ceil(stride / 2))
        self.res_unit1 = ResidualUnit(output_dim, 1)
        self.res_unit2 = ResidualUnit(output_dim, 3)
        self.res_unit3 = ResidualUnit(output_dim, 9)

    def __call__(self, x: mx.array, taps: Taps, name: str) -> mx.array:
        x = self.conv_t1(self.snake1(x))
        x = taps(f"{name}.conv_t1", x)
        return self.res_unit3(self.res_unit2(self.res_unit1(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: DacConfig):
        super().__init__()
        d = cfg.encoder_hidden_size
        self.conv1 = Conv1d(1, d, 7, padding=3)
        self.block = [EncoderBlock(d * 2 ** i, s) for i, s in enumerate(cfg.downsampling_ratios, 1)]
        self.snake1 = Snake(cfg.hidden_size)
        self.conv2 = Conv1d(cfg.hidden_size, cfg.hidden_size, 3, padding=1)

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, N, 1) -> (B, T, D)
        x = self.conv1(x)
        x = taps("encoder.conv1", x)
        for i, block in enumerate(self.block):
            x = block(x)
            x = taps(f"encoder.block.{i}", x)
        x = self.conv2(self.snake1(x))
        x = taps("encoder.conv2", x)
        return x


class Decoder(nn.Module):
    def __init__(self, cfg: DacConfig):
        super().__init__()
        c = cfg.decoder_hidden_size
        self.conv1 = Conv1d(cfg.hidden_size, c, 7, padding=3)
        self.block = [DecoderBlock(c // 2 ** i, c // 2 ** (i + 1), s)
                      for i, s in enumerate(cfg.upsampling_ratios)]
        out_dim = c // 2 ** len(cfg.upsampling_ratios)
        self.snake1 = Snake(out_dim)
        self.conv2 = Conv1d(out_dim, 1, 7, padding=3)

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, T, D) -> (B, N, 1)
        x = self.conv1(x)
        x = taps("decoder.conv1", x)
        for i, block in enumerate(self.block):
            x = block(x, taps, f"decoder.block.{i}")
            x = taps(f"decoder.block.{i}", x)
        x = self.conv2(self.snake1(x))
        x = taps("decoder.conv2", x)
        return mx.tanh(x)


class DacModel(nn.Module):
    def __init__(self, cfg: DacConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.cfg, self.dtype = cfg, dtype
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualFactorizedVQ(cfg.hidden_size, cfg.codebook_size,
                                              cfg.codebook_dim, (1,) * cfg.n_codebooks,
                                              distance="transformers-dac")
        self.decoder = Decoder(cfg)
        # mlx_impl.codec.Codec
        self.sample_rate, self.frame_rate = cfg.sampling_rate, cfg.sampling_rate / cfg.hop_length
        self.n_codebooks, self.codebook_size = cfg.n_codebooks, cfg.codebook_size

    def _check_audio(self, audio, sample_rate: int) -> mx.array:
        return codec_audio(audio, sample_rate, self.cfg.sampling_rate, self.dtype,
                           hop_length=self.cfg.hop_length)

    def encode(self, audio, sample_rate: int, n_quantizers: int | None = None,
               taps: Taps = NO_TAPS) -> DacEncoded:
        """audio (B, N) -> codes (B, n_q, frames) with the first `n_quantizers` stages (all)."""
        x = self._check_audio(audio, sample_rate)
        if n_quantizers is not None and not 1 <= n_quantizers <= self.cfg.n_codebooks:
            raise ValueError(f"n_quantizers={n_quantizers}; this model has 1 to "
                             f"{self.cfg.n_codebooks} codebooks")
        z = self.encoder(x[:, :, None], taps=taps)
        quantized, codes, latents = self.quantizer.encode(z, n_quantizers)
        codes = mx.stack(codes, axis=1)  # (B, n_q, T)
        latents = mx.concatenate(latents, axis=-1)
        latents = taps("quantizer.latents", latents)
        codes = taps("quantizer.codes", codes)
        quantized = taps("quantizer.quantized", quantized)
        return DacEncoded(codes, quantized, latents, int(x.shape[1]))

    def decode(self, codes, taps: Taps = NO_TAPS) -> mx.array:
        """codes (B, n_q, frames), n_q <= n_codebooks -> audio (B, frames * hop_length)."""
        codes = mx.array(codes) if isinstance(codes, np.ndarray) else codes
        if codes.ndim != 3:
            raise ValueError(f"codes must be (batch, n_q, frames) as returned by "
                             f"encode().codes, got shape {codes.shape}")
        z = self.quantizer.decode([codes[:, i] for i in range(codes.shape[1])]).astype(self.dtype)
        z = taps("quantizer.from_codes", z)
        return self.decode_latents(z, taps)

    def decode_latents(self, quantized: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """Quantized latents (B, frames, hidden_size) -> audio (B, frames * hop_length)."""
        return self.decoder(quantized, taps=taps)[:, :, 0]

    # -- mlx_impl.codec.Codec ----------------------------------------------------------------

    def encode_audio(self, audio: mx.array) -> mx.array:
        """(B, N) audio at `sample_rate` -> codes (B, n_codebooks, frames) int32."""
        return self.encode(audio, self.cfg.sampling_rate).codes

    def decode_codes(self, codes: mx.array) -> mx.array:
        """codes (B, K, frames) -> audio (B, frames * hop_length)."""
        return self.decode(codes)

    def __call__(self, audio, sample_rate: int, n_quantizers: int | None = None,
                 taps: Taps = NO_TAPS) -> tuple[DacEncoded, mx.array]:
        """Encode, decode the codes, cut to the input length: (encoded, audio (B, N'))."""
        enc = self.encode(audio, sample_rate, n_quantizers, taps=taps)
        out = self.decode(enc.codes, taps=taps)[:, : enc.n_samples]
        out = taps("audio_values", out)
        return enc, out
