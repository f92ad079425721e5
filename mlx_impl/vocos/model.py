"""Vocos vocoder in MLX: features (log-mel or EnCodec codes) -> ConvNeXt backbone -> iSTFT head.

Upstream: vocos 0.1.0 (`vocos/pretrained.py` `Vocos`, `models.py` `VocosBackbone`,
`feature_extractors.py`, `heads.py` `ISTFTHead`). Module attribute names equal the checkpoint
(`pytorch_model.bin`) keys, so `convert.py` only transposes conv kernels.

API (audio (B, N) float at the model rate; features channels-last (B, frames, C)):

    model = Vocos(cfg)
    model.load_weights(list(convert(state, cfg).items()), strict=True)
    mel = model.features(audio)                       # mel models: (B, frames, n_mels) log-mel
    audio = model.decode(mel)                         # (B, samples)
    feats = model.codes_to_features(codes)            # EnCodec models: codes (K, B, L) -> (B, L, 128)
    audio = model.decode(feats, bandwidth_id=3)       # bandwidth_id indexes cfg.features.bandwidths
    audio = model.decode_codes(codes, bandwidth_id=3)

Deviations from upstream:
- Channels-last features (upstream (B, C, L)).
- The EnCodec feature path starts from codes (as `Vocos.codes_to_features`); audio -> codes is the
  EnCodec port's job (mlx_impl.encodec), not bundled here.
- Bad input raises with the problem and the fix: wrong feature width, codes out of range or of a
  count that does not match the bandwidth, bandwidth_id out of range, too-short audio.

Taps (pass `taps=Taps()`, mlx_impl/taps.py): `features`, `backbone.embed`, `backbone.norm`,
`backbone.convnext.{i}`, `backbone.final_layer_norm`, `head.out`, `audio`, all (B, T, C) or
(B, samples).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.layers.convnext import AdaLayerNorm, ConvNeXtBlock
from mlx_impl.layers.istft_head import ISTFTHead
from mlx_impl.layers.mel import MelSpectrogram, safe_log
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.taps import NO_TAPS, Taps
from mlx_impl.vocos.config import VocosConfig

class VocosBackbone(nn.Module):
    def __init__(self, cfg: VocosConfig):
        super().__init__()
        b = cfg.backbone
        self.embed = nn.Conv1d(b.input_channels, b.dim, kernel_size=7, padding=3)
        self.adanorm = bool(b.adanorm_num_embeddings)
        self.norm = (AdaLayerNorm(b.adanorm_num_embeddings, b.dim, eps=1e-6) if self.adanorm
                     else LayerNorm(b.dim, eps=1e-6))
        self.convnext = [ConvNeXtBlock(b.dim, b.intermediate_dim, cfg.layer_scale,
                                       b.adanorm_num_embeddings) for _ in range(b.num_layers)]
        self.final_layer_norm = LayerNorm(b.dim, eps=1e-6)

    def __call__(self, x: mx.array, bandwidth_id: int | None = None, taps: Taps = NO_TAPS):
        x = self.embed(x)  # (B, T, dim)
        x = taps("backbone.embed", x)
        x = self.norm(x, bandwidth_id) if self.adanorm else self.norm(x)
        x = taps("backbone.norm", x)
        for i, block in enumerate(self.convnext):
            x = block(x, bandwidth_id)
            x = taps(f"backbone.convnext.{i}", x)
        x = self.final_layer_norm(x)
        x = taps("backbone.final_layer_norm", x)
        return x


class EncodecFeatures(nn.Module):
    """The codebooks of the EnCodec quantizer stages, stacked: (num_q * bins, codebook_dim)."""

    def __init__(self, num_q: int, bins: int, dim: int = 128):
        super().__init__()
        self.num_q, self.bins = num_q, bins
        self.codebook_weights = mx.zeros((num_q * bins, dim))


class Vocos(nn.Module):
    def __init__(self, cfg: VocosConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.cfg, self.dtype = cfg, dtype
        if cfg.is_mel:
            f = cfg.features
            self._mel = MelSpectrogram(f.sample_rate, f.n_fft, f.hop_length, f.n_mels, f.padding)
        else:
            f = cfg.features
            self.feature_extractor = EncodecFeatures(f.num_q, f.bins, cfg.backbone.input_channels)
        self.backbone = VocosBackbone(cfg)
        h = cfg.head
        self.head = ISTFTHead(h.dim, h.n_fft, h.hop_length, h.padding)
        # mlx_impl.codec.Vocoder
        self.sample_rate, self.hop_length = cfg.sample_rate, cfg.head.hop_length

    def set_mel_filterbank(self, fb: np.ndarray) -> None:
        """Use a checkpoint's stored filterbank (`feature_extractor.mel_spec.mel_scale.fb`)."""
        f = self.cfg.features
        self._mel = MelSpectrogram(f.sample_rate, f.n_fft, f.hop_length, f.n_mels, f.padding,
                                   fb=fb)

    # -- features ----------------------------------------------------------------------------

    def features(self, audio, taps: Taps = NO_TAPS) -> mx.array:
        """Mel models: audio (B, N) at cfg.sample_rate -> log-mel (B, frames, n_mels)."""
        if not self.cfg.is_mel:
            raise ValueError("this Vocos takes EnCodec codes: use codes_to_features(codes)")
        audio = mx.array(audio) if isinstance(audio, np.ndarray) else audio
        if audio.ndim == 1:
            audio = audio[None]
        if audio.ndim != 2 or audio.shape[1] == 0:
            raise ValueError(f"expected audio (batch, samples) with samples > 0, got shape "
                             f"{audio.shape}; resample to {self.cfg.sample_rate} Hz mono first")
        out = safe_log(self._mel(audio.astype(mx.float32))).astype(self.dtype)
        out = taps("features", out)
        return out

    def bandwidth_id(self, bandwidth: float) -> int:
        bws = self._encodec_cfg().bandwidths
        if bandwidth not in bws:
            raise ValueError(f"bandwidth {bandwidth} kbps is not supported; choose one of "
                             f"{list(bws)}")
        return bws.index(bandwidth)

    def _encodec_cfg(self):
        if self.cfg.is_mel:
            raise ValueError("this Vocos is a mel vocoder: it has no EnCodec bandwidths")
        return self.cfg.features

    def codes_to_features(self, codes, taps: Taps = NO_TAPS) -> mx.array:
        """EnCodec codes (K, L) or (K, B, L) -> summed codebook embeddings (B, L, dim)."""
        f = self._encodec_cfg()
        codes = mx.array(codes) if isinstance(codes, np.ndarray) else codes
        if codes.ndim == 2:
            codes = codes[:, None]
        if codes.ndim != 3:
            raise ValueError(f"codes must be (n_q, frames) or (n_q, batch, frames), got shape "
                             f"{codes.shape}")
        if codes.shape[0] < 1 or codes.shape[0] > f.num_q:
            raise ValueError(f"got {codes.shape[0]} codebooks; this model has 1..{f.num_q}")
        if codes.shape[2] == 0:
            raise ValueError("codes have no frames (length 0)")
        if mx.issubdtype(codes.dtype, mx.floating):
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        lo, hi = mx.min(codes).item(), mx.max(codes).item()
        if lo < 0 or hi >= f.bins:
            raise ValueError(f"codes out of range [{lo}, {hi}]; valid codes are 0..{f.bins - 1}")
        offsets = mx.arange(codes.shape[0], dtype=mx.int32)[:, None, None] * f.bins
        emb = self.feature_extractor.codebook_weights[codes.astype(mx.int32) + offsets]
        out = emb.sum(axis=0).astype(self.dtype)  # (B, L, dim)
        out = taps("features", out)
        return out

    # -- decode ------------------------------------------------------------------------------

    def decode(self, features, bandwidth_id: int | None = None, taps: Taps = NO_TAPS) -> mx.array:
        """Features (B, frames, C) -> audio (B, samples)."""
        features = mx.array(features) if isinstance(features, np.ndarray) else features
        c = self.cfg.backbone.input_channels
        if features.ndim != 3 or features.shape[2] != c:
            raise ValueError(f"expected features (batch, frames, {c}), got shape {features.shape}"
                             + ("; pass model.features(audio)" if self.cfg.is_mel else ""))
        if features.shape[1] == 0:
            raise ValueError("features have no frames (length 0)")
        if self.backbone.adanorm:
            n = self.cfg.backbone.adanorm_num_embeddings
            if bandwidth_id is None or not 0 <= int(bandwidth_id) < n:
                raise ValueError(f"bandwidth_id must be in 0..{n - 1} (index into bandwidths "
                                 f"{list(self._encodec_cfg().bandwidths)}), got {bandwidth_id}")
        x = self.backbone(features.astype(self.dtype), bandwidth_id, taps)
        audio = self.head(x, taps).astype(mx.float32)
        audio = taps("audio", audio)
        return audio

    def decode_codes(self, codes, bandwidth_id: int, taps: Taps = NO_TAPS) -> mx.array:
        """EnCodec codes (K, B, L) at bandwidths[bandwidth_id] -> audio (B, L * hop)."""
        f = self._encodec_cfg()
        if not 0 <= bandwidth_id < len(f.bandwidths):
            raise ValueError(f"bandwidth_id must be in 0..{len(f.bandwidths) - 1}, got "
                             f"{bandwidth_id}")
        want = f.n_q(f.bandwidths[bandwidth_id])
        k = (mx.array(codes) if isinstance(codes, np.ndarray) else codes).shape[0]
        if k != want:
            raise ValueError(f"{f.bandwidths[bandwidth_id]} kbps (bandwidth_id {bandwidth_id}) "
                             f"uses {want} codebooks, got codes for {k}; encode at that bandwidth "
                             "or pass the matching bandwidth_id")
        return self.decode(self.codes_to_features(codes, taps), bandwidth_id, taps)

    def __call__(self, audio, taps: Taps = NO_TAPS) -> mx.array:
        """Mel models: copy synthesis audio -> log-mel -> audio (upstream `forward`)."""
        return self.decode(self.features(audio, taps), taps=taps)

    # -- mlx_impl.codec.Vocoder ---------------------------------------------------------------

    def vocode(self, features: mx.array, bandwidth_id: int | None = None) -> mx.array:
        """Features (B, frames, C): the log-mel (mel models) or EnCodec embeddings -> audio
        (B, frames * hop_length)."""
        return self.decode(features, bandwidth_id)
