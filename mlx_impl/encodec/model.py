"""EnCodec neural audio codec in MLX: SEANet encoder, residual vector quantizer, SEANet decoder.

Upstream: transformers 5.24.0 `models/encodec/modeling_encodec.py` (`EncodecModel`), a port of
Meta's `encodec` 0.1.1. Module attribute names equal the transformers checkpoint keys, so
`convert.py` only folds weight norm and transposes kernels.

API (channels-last audio, codes as upstream's `audio_codes`):

    model = EncodecModel(cfg)
    model.load_weights(list(convert(state, cfg).items()), strict=True)
    enc = model.encode(audio, sample_rate=24000, bandwidth=6.0)  # audio (B, N, channels)
    enc.codes                                    # (n_chunks, B, n_q, frames) int32
    audio_out = model.decode(enc.codes, enc.scales, n_samples=enc.n_samples)  # (B, N, channels)

Deviations from upstream:
- Audio is (B, N, channels) instead of (B, channels, N); codes keep upstream's layout.
- `padding_mask` is not supported (upstream's default, all ones, is what runs here).
- Bad input raises with the problem and the fix (wrong rate or channel count, empty audio,
  unsupported bandwidth, codes of the wrong shape or out of range) where upstream would fail
  deep inside a conv or index out of bounds.
- Chunked models (48 kHz): scales are an array (n_chunks, B) instead of a list of (B, 1).

Taps (pass `taps=Taps()`, mlx_impl/taps.py): `encoder.layers.{i}` (non-ELU layers, (B, T, C)), `quantizer.codes`
(n_q, B, frames), `quantizer.quantized` (B, frames, hidden), `decoder.layers.{i}`,
`audio_values` (B, N, channels, trimmed to the input length). For chunked models the layer and
quantizer taps hold the FIRST chunk; `encode` returns every chunk's codes and scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.audio_checks import codec_audio
from mlx_impl.encodec.config import EncodecConfig
from mlx_impl.layers.quantize import ResidualVectorQuantizer, check_codes
from mlx_impl.layers.seanet import SEANetDecoder, SEANetEncoder, SEANetOptions
from mlx_impl.taps import NO_TAPS, Taps

@dataclass(frozen=True)
class EncodedAudio:
    codes: mx.array  # (n_chunks, B, n_q, frames) int32; the last chunk zero-padded in frames
    scales: mx.array | None  # (n_chunks, B) per-chunk RMS when cfg.normalize, else None
    n_samples: int  # input length, to trim the decoded audio
    last_frame_pad_length: int  # frames of zero padding in the last chunk's codes


def seanet_options(cfg: EncodecConfig) -> SEANetOptions:
    return SEANetOptions(
        channels=cfg.audio_channels, dimension=cfg.hidden_size, n_filters=cfg.num_filters,
        n_residual_layers=cfg.num_residual_layers, ratios=cfg.upsampling_ratios,
        kernel_size=cfg.kernel_size, last_kernel_size=cfg.last_kernel_size,
        residual_kernel_size=cfg.residual_kernel_size, dilation_base=cfg.dilation_growth_rate,
        causal=cfg.use_causal_conv, pad_mode=cfg.pad_mode, compress=cfg.compress,
        lstm_layers=cfg.num_lstm_layers, true_skip=not cfg.use_conv_shortcut,
        norm=cfg.norm_type, trim_right_ratio=cfg.trim_right_ratio)


class EncodecModel(nn.Module):
    def __init__(self, cfg: EncodecConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.cfg, self.dtype = cfg, dtype
        opts = seanet_options(cfg)
        self.encoder = SEANetEncoder(opts)
        self.decoder = SEANetDecoder(opts)
        self.quantizer = ResidualVectorQuantizer(cfg.num_quantizers, cfg.codebook_size,
                                                 cfg.codebook_dim, cfg.frame_rate)

        # mlx_impl.codec.Codec
        self.sample_rate, self.frame_rate = cfg.sampling_rate, cfg.sampling_rate / cfg.hop_length
        # n_codebooks at the highest bandwidth
        self.n_codebooks = self.num_quantizers_for_bandwidth(max(cfg.target_bandwidths))
        self.codebook_size = cfg.codebook_size

    # -- checks ------------------------------------------------------------------------------

    def _check_audio(self, audio, sample_rate: int) -> mx.array:
        return codec_audio(audio, sample_rate, self.cfg.sampling_rate, self.dtype,
                           channels=self.cfg.audio_channels)

    def num_quantizers_for_bandwidth(self, bandwidth: float | None) -> int:
        bws = self.cfg.target_bandwidths
        if bandwidth is None:
            bandwidth = bws[0]  # upstream's default: the smallest bandwidth
        if bandwidth not in bws:
            raise ValueError(f"bandwidth {bandwidth} kbps is not supported; choose one of {list(bws)}")
        return self.quantizer.num_quantizers_for_bandwidth(bandwidth)

    # -- encode / decode ---------------------------------------------------------------------

    def _encode_chunk(self, x: mx.array, n_q: int, taps: Taps):
        scale = None
        if self.cfg.normalize:
            # in float32 whatever the model's dtype: in float16 the squares of a quiet chunk
            # (|x| ~ 1e-4) underflow and the 1e-8 guard rounds to 0, so x / scale was 0/0 = NaN
            # (measured on encodec-chunked-test-tiny fox, first chunk, 2026-12-05)
            mono = x.astype(mx.float32).mean(axis=2, keepdims=True)  # (B, N, 1)
            scale = mx.sqrt((mono * mono).mean(axis=1, keepdims=True)) + 1e-8
            x = (x.astype(mx.float32) / scale).astype(x.dtype)
            scale = scale.reshape(-1)
        emb = self.encoder(x, taps=taps)  # (B, frames, hidden)
        codes = self.quantizer.encode(emb, n_q)  # (n_q, B, frames)
        codes = taps("quantizer.codes", codes)
        return codes.transpose(1, 0, 2), scale  # (B, n_q, frames)

    def encode(self, audio, sample_rate: int, bandwidth: float | None = None,
               taps: Taps = NO_TAPS) -> EncodedAudio:
        """audio (B, N, channels) float at `sample_rate` Hz -> codes at `bandwidth` kbps."""
        x = self._check_audio(audio, sample_rate)
        n_q = self.num_quantizers_for_bandwidth(bandwidth)
        n = x.shape[1]
        chunk, stride = self.cfg.chunk_length, self.cfg.chunk_stride
        if chunk is None:
            chunk = stride = n
        elif stride is None:
            raise ValueError("config has chunk_length_s but no overlap; set overlap (e.g. 0.01)")
        frames, scales = [], []
        for i, offset in enumerate(range(0, n, stride)):
            codes, scale = self._encode_chunk(x[:, offset: offset + chunk], n_q,
                                              taps if i == 0 else NO_TAPS)
            frames.append(codes)
            scales.append(scale)
        pad = frames[0].shape[-1] - frames[-1].shape[-1]
        if pad > 0:
            frames[-1] = mx.pad(frames[-1], [(0, 0), (0, 0), (0, pad)])
        return EncodedAudio(
            codes=mx.stack(frames),
            scales=None if scales[0] is None else mx.stack(scales),
            n_samples=n, last_frame_pad_length=pad)

    def _decode_chunk(self, codes: mx.array, scale: mx.array | None, taps: Taps) -> mx.array:
        emb = self.quantizer.decode(codes.transpose(1, 0, 2)).astype(self.dtype)  # (B, F, D)
        emb = taps("quantizer.quantized", emb)
        out = self.decoder(emb, taps=taps)  # (B, N', channels)
        return out if scale is None else (out * scale.reshape(-1, 1, 1)).astype(out.dtype)

    def decode(self, codes, scales=None, n_samples: int | None = None,
               last_frame_pad_length: int = 0, taps: Taps = NO_TAPS) -> mx.array:
        """codes (n_chunks, B, n_q, frames) -> audio (B, N, channels), cut to n_samples if given."""
        codes = mx.array(codes) if isinstance(codes, np.ndarray) else codes
        if codes.ndim != 4:
            raise ValueError(f"codes must be (n_chunks, batch, n_q, frames) as returned by "
                             f"encode().codes, got shape {codes.shape}")
        check_codes(codes[0].transpose(1, 0, 2), self.quantizer.num_quantizers,
                    self.cfg.codebook_size)
        if self.cfg.normalize and scales is None:
            raise ValueError("this model normalizes chunks: pass the scales from encode()")
        if self.cfg.chunk_length is None and codes.shape[0] != 1:
            raise ValueError(f"this model encodes the whole input as one chunk; got "
                             f"{codes.shape[0]} chunks")
        if not 0 <= last_frame_pad_length < codes.shape[-1]:
            raise ValueError(f"last_frame_pad_length={last_frame_pad_length} must be in "
                             f"[0, {codes.shape[-1]})")
        outs = []
        for i in range(codes.shape[0]):
            c = codes[i]
            if i == codes.shape[0] - 1 and last_frame_pad_length > 0:
                c = c[..., : c.shape[-1] - last_frame_pad_length]
            outs.append(self._decode_chunk(c, None if scales is None else scales[i],
                                           taps if i == 0 else NO_TAPS))
        audio = outs[0] if len(outs) == 1 else linear_overlap_add(outs, self.cfg.chunk_stride)
        if n_samples is not None and n_samples < audio.shape[1]:
            audio = audio[:, :n_samples]
        audio = taps("audio_values", audio)
        return audio

    # -- mlx_impl.codec.Codec (single-chunk, unnormalised models: encodec 24 kHz) -------------

    def encode_audio(self, audio: mx.array, bandwidth: float | None = None) -> mx.array:
        """(B, N) mono audio at `sample_rate` -> codes (B, n_q, frames) int32 at `bandwidth`
        kbps (None: the highest, `n_codebooks` stages; `encode` defaults to the lowest as
        upstream does)."""
        if self.cfg.chunk_length is not None or self.cfg.normalize:
            raise ValueError("this EnCodec encodes in normalised chunks (48 kHz): use encode(), "
                             "whose codes carry the chunks and their scales")
        if self.cfg.audio_channels != 1:
            raise ValueError(f"encode_audio takes mono audio; this model has "
                             f"{self.cfg.audio_channels} channels: use encode()")
        bandwidth = max(self.cfg.target_bandwidths) if bandwidth is None else bandwidth
        return self.encode(audio[:, :, None], self.cfg.sampling_rate, bandwidth).codes[0]

    def decode_codes(self, codes: mx.array) -> mx.array:
        """codes (B, n_q, frames) -> audio (B, frames * hop_length)."""
        return self.decode(codes[None])[:, :, 0]

    def __call__(self, audio, sample_rate: int, bandwidth: float | None = None,
                 taps: Taps = NO_TAPS) -> tuple[EncodedAudio, mx.array]:
        """Encode then decode (upstream `forward`): (codes, audio cut to the input length)."""
        enc = self.encode(audio, sample_rate, bandwidth, taps=taps)
        return enc, self.decode(enc.codes, enc.scales, n_samples=enc.n_samples,
                                last_frame_pad_length=enc.last_frame_pad_length, taps=taps)


def linear_overlap_add(frames: list[mx.array], stride: int) -> mx.array:
    """Overlap-add of (B, N_i, C) chunks with triangular weights, as upstream's."""
    n_total = stride * (len(frames) - 1) + frames[-1].shape[1]
    length = frames[0].shape[1]
    t = np.linspace(0, 1, length + 2, dtype=np.float32)[1:-1]
    weight = (0.5 - np.abs(t - 0.5)).astype(np.float32)
    sum_w = np.zeros(n_total, dtype=np.float32)
    B, _, C = frames[0].shape
    out = mx.zeros((B, n_total, C), dtype=frames[0].dtype)
    for i, f in enumerate(frames):
        off, n = i * stride, f.shape[1]
        w = mx.array(weight[:n])[None, :, None]
        out = out.at[:, off: off + n].add(w * f)
        sum_w[off: off + n] += weight[:n]
    if sum_w.min() == 0:
        raise ValueError("overlap-add weights sum to zero somewhere; chunks do not cover the audio")
    return out / mx.array(sum_w)[None, :, None]
