"""Mimi neural audio codec in MLX: causal SEANet encoder, encoder transformer, downsampling conv,
split residual vector quantizer (semantic + acoustic), upsampling conv, decoder transformer,
causal SEANet decoder.

Upstream: transformers 5.24.0 `models/mimi/modeling_mimi.py` (`MimiModel`), a port of Kyutai's
`moshi` Mimi. Module attribute names equal the flat checkpoint keys of kyutai/mimi (and of
transformers' `save_pretrained`), so `convert.py` only transposes kernels.

API (channels-last audio; codes in upstream's (B, K, F) layout):

    model = MimiModel(cfg)
    model.load_weights(list(convert(state, cfg).items()), strict=True)
    codes = model.encode(audio, sample_rate=24000, num_quantizers=8)  # audio (B, N, 1)
    audio_out = model.decode(codes)                 # (B, F * frame_size, 1)
    dec = model.streaming_decoder()                  # frame by frame, equal to decode()
    chunks = [dec.step(codes[:, :, f:f + 1]) for f in range(F)]

Deviations from upstream:
- Audio is (B, N, channels) instead of (B, channels, N).
- Nearest codeword by `mlx_impl.layers.quantize` (argmax of -(|x|^2 - 2 x.e + |e|^2)) where
  upstream takes argmin of `torch.cdist` (the same ranking up to float32 rounding of near ties).
- `padding_mask` and streaming *encode* are not supported; streaming decode is
  (`mlx_impl.mimi.streaming`; upstream only caches the decoder transformer's keys/values).
- Bad input raises with the problem and the fix (wrong rate or channels, empty audio, codes of
  the wrong shape or out of range, unsupported num_quantizers).

Taps (pass `taps=Taps()`, mlx_impl/taps.py): `encoder.layers.{i}` (non-ELU),
`encoder_transformer.layers.{i}`,
`downsample`, `audio_codes` (B, K, F), `quantizer.quantized` (B, F, hidden), `upsample`,
`decoder_transformer.layers.{i}`, `decoder.layers.{i}`, `audio_values` (trimmed to the input).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.audio_checks import codec_audio
from mlx_impl.layers.conv import Conv1d, ConvTranspose1d
from mlx_impl.layers.quantize import ResidualVectorQuantizer, check_codes
from mlx_impl.layers.seanet import SEANetDecoder, SEANetEncoder, SEANetOptions
from mlx_impl.layers.transformer import Transformer, TransformerOptions
from mlx_impl.mimi.config import MimiConfig
from mlx_impl.taps import NO_TAPS, Taps


def seanet_options(cfg: MimiConfig) -> SEANetOptions:
    return SEANetOptions(
        channels=cfg.audio_channels, dimension=cfg.hidden_size, n_filters=cfg.num_filters,
        n_residual_layers=cfg.num_residual_layers, ratios=cfg.upsampling_ratios,
        kernel_size=cfg.kernel_size, last_kernel_size=cfg.last_kernel_size,
        residual_kernel_size=cfg.residual_kernel_size, dilation_base=cfg.dilation_growth_rate,
        causal=cfg.use_causal_conv, pad_mode=cfg.pad_mode, compress=cfg.compress,
        lstm_layers=0, true_skip=not cfg.use_conv_shortcut, norm="none",
        trim_right_ratio=cfg.trim_right_ratio)


def transformer_options(cfg: MimiConfig) -> TransformerOptions:
    return TransformerOptions(
        dim=cfg.hidden_size, n_heads=cfg.num_attention_heads, n_kv_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim, ffn_dim=cfg.intermediate_size, norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta, sliding_window=cfg.sliding_window,
        layer_scale=cfg.layer_scale_initial_scale, bias=cfg.attention_bias)


class ProjectedRVQ(ResidualVectorQuantizer):
    """Euclidean RVQ with 1x1 input/output projections (upstream `MimiResidualVectorQuantizer`)."""

    def __init__(self, num_quantizers: int, cfg: MimiConfig):
        super().__init__(num_quantizers, cfg.codebook_size, cfg.codebook_dim, cfg.frame_rate)
        self.projected = cfg.vector_quantization_hidden_dimension != cfg.hidden_size
        if self.projected:  # upstream Conv1d(k=1, bias=False): stored as (out, in) linears
            dim = cfg.vector_quantization_hidden_dimension
            self.input_proj = nn.Linear(cfg.hidden_size, dim, bias=False)
            self.output_proj = nn.Linear(dim, cfg.hidden_size, bias=False)

    def encode(self, x: mx.array, n_q: int) -> mx.array:  # (B, F, hidden) -> (n_q, B, F)
        return super().encode(self.input_proj(x) if self.projected else x, n_q)

    def decode(self, codes: mx.array) -> mx.array:  # (n_q, B, F) -> (B, F, hidden)
        out = super().decode(codes)
        return self.output_proj(out) if self.projected else out


class SplitResidualVectorQuantizer(nn.Module):
    """Semantic RVQ (first stages) and acoustic RVQ (the rest), both fed the same latents; the
    decoded latents are summed (upstream `MimiSplitResidualVectorQuantizer`)."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.n_semantic, self.n_total = cfg.num_semantic_quantizers, cfg.num_quantizers
        self.codebook_size = cfg.codebook_size
        self.semantic_residual_vector_quantizer = ProjectedRVQ(self.n_semantic, cfg)
        self.acoustic_residual_vector_quantizer = ProjectedRVQ(self.n_total - self.n_semantic, cfg)

    def encode(self, x: mx.array, n_q: int) -> mx.array:  # (B, F, hidden) -> (B, n_q, F)
        codes = self.semantic_residual_vector_quantizer.encode(x, self.n_semantic)
        if n_q > self.n_semantic:
            acoustic = self.acoustic_residual_vector_quantizer.encode(x, n_q - self.n_semantic)
            codes = mx.concatenate([codes, acoustic], axis=0)
        return codes.transpose(1, 0, 2)

    def decode(self, codes: mx.array) -> mx.array:  # (B, K, F) -> (B, F, hidden)
        if codes.ndim != 3:
            raise ValueError(f"codes must be (batch, num_quantizers, frames), got shape "
                             f"{codes.shape}; one clip's (K, F) codes are codes[None]")
        check_codes(codes.transpose(1, 0, 2), self.n_total, self.codebook_size)
        if codes.shape[1] < self.n_semantic:
            raise ValueError(f"codes have {codes.shape[1]} codebooks; Mimi needs at least the "
                             f"{self.n_semantic} semantic one(s)")
        c = codes.transpose(1, 0, 2)  # (K, B, F)
        out = self.semantic_residual_vector_quantizer.decode(c[: self.n_semantic])
        if c.shape[0] > self.n_semantic:
            out = out + self.acoustic_residual_vector_quantizer.decode(c[self.n_semantic:])
        return out


class MimiModel(nn.Module):
    def __init__(self, cfg: MimiConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.cfg, self.dtype = cfg, dtype
        opts, topts = seanet_options(cfg), transformer_options(cfg)
        self.encoder = SEANetEncoder(opts)
        self.encoder_transformer = Transformer(topts, cfg.num_hidden_layers)
        stride = cfg.latent_stride
        self.downsample = Conv1d(cfg.hidden_size, cfg.hidden_size, 2 * stride, stride=stride,
                                 causal=True, pad_mode="replicate", norm="none", bias=False)
        self.quantizer = SplitResidualVectorQuantizer(cfg)
        self.upsample = ConvTranspose1d(cfg.hidden_size, cfg.hidden_size, 2 * stride,
                                        stride=stride, causal=True,
                                        trim_right_ratio=cfg.trim_right_ratio, norm="none",
                                        groups=cfg.upsample_groups, bias=False)
        self.decoder_transformer = Transformer(topts, cfg.num_hidden_layers)
        self.decoder = SEANetDecoder(opts)

        # mlx_impl.codec.Codec
        self.sample_rate, self.frame_rate = cfg.sampling_rate, cfg.frame_rate
        self.n_codebooks, self.codebook_size = cfg.num_quantizers, cfg.codebook_size

    # -- checks ------------------------------------------------------------------------------

    def _check_audio(self, audio, sample_rate: int) -> mx.array:
        return codec_audio(audio, sample_rate, self.cfg.sampling_rate, self.dtype,
                           channels=self.cfg.audio_channels)

    def _check_num_quantizers(self, n_q: int | None) -> int:
        n_q = self.cfg.num_quantizers if n_q is None else n_q
        lo, hi = self.cfg.num_semantic_quantizers, self.cfg.num_quantizers
        if not isinstance(n_q, (int, np.integer)) or not lo <= n_q <= hi:
            raise ValueError(f"num_quantizers={n_q!r}: Mimi encodes with {lo} to {hi} codebooks "
                             f"(the first {lo} semantic); pass an int in that range")
        return int(n_q)

    # -- encode / decode ---------------------------------------------------------------------

    def encode_latents(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """(B, N, channels) checked audio -> latents (B, F, hidden)."""
        h = self.encoder(x, taps=taps)
        h = self.encoder_transformer(h, taps=taps, name="encoder_transformer")
        h = self.downsample(h)
        h = taps("downsample", h)
        return h

    def encode(self, audio, sample_rate: int, num_quantizers: int | None = None,
               taps: Taps = NO_TAPS) -> mx.array:
        """audio (B, N, channels) at `sample_rate` -> codes (B, K, F) int32, K = num_quantizers
        (default: all, as upstream)."""
        x = self._check_audio(audio, sample_rate)
        n_q = self._check_num_quantizers(num_quantizers)
        codes = self.quantizer.encode(self.encode_latents(x, taps), n_q)
        codes = taps("audio_codes", codes)
        return codes

    def decode_latents(self, latents: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """latents (B, F, hidden) -> audio (B, F * frame_size, channels)."""
        h = self.upsample(latents.astype(self.dtype))
        h = taps("upsample", h)
        h = self.decoder_transformer(h, taps=taps, name="decoder_transformer")
        return self.decoder(h, taps=taps)

    def decode(self, codes: mx.array, n_samples: int | None = None,
               taps: Taps = NO_TAPS) -> mx.array:
        """codes (B, K, F) -> audio (B, F * frame_size, channels), cut to `n_samples` if given."""
        codes = mx.array(codes) if isinstance(codes, np.ndarray) else codes
        latents = self.quantizer.decode(codes)
        latents = taps("quantizer.quantized", latents)
        audio = self.decode_latents(latents, taps)
        return audio if n_samples is None else audio[:, :n_samples]

    # -- mlx_impl.codec.Codec ----------------------------------------------------------------

    def encode_audio(self, audio: mx.array) -> mx.array:
        """(B, N) mono audio at `sample_rate` -> codes (B, num_quantizers, frames) int32."""
        return self.encode(audio[:, :, None], self.cfg.sampling_rate)

    def decode_codes(self, codes: mx.array) -> mx.array:
        """codes (B, K, frames), K <= num_quantizers -> audio (B, frames * frame_size)."""
        return self.decode(codes)[:, :, 0]

    def __call__(self, audio, sample_rate: int, num_quantizers: int | None = None,
                 taps: Taps = NO_TAPS) -> mx.array:
        """Encode then decode; audio out has the input's length."""
        codes = self.encode(audio, sample_rate, num_quantizers, taps)
        out = self.decode(codes, n_samples=audio.shape[1], taps=taps)
        out = taps("audio_values", out)
        return out

    def streaming_decoder(self):
        from mlx_impl.mimi.streaming import StreamingDecoder

        return StreamingDecoder(self)
