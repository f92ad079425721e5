"""EnCodec configuration, with the field names of transformers' `EncodecConfig` (5.24.0).

`from_dict` reads a transformers `config.json` (its bookkeeping keys such as `model_type` or
`transformers_version` are ignored); a missing architecture key is an error. The only default
is upstream's own: `codebook_dim: null` means `hidden_size`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig


@dataclass(frozen=True)
class EncodecConfig(StrictConfig):
    target_bandwidths: tuple[float, ...]  # kbps the model encodes at; stages = bw / (bits * rate)
    sampling_rate: int  # Hz of the audio in and out
    audio_channels: int  # 1 (24 kHz model) or 2 (48 kHz model)
    normalize: bool  # scale each chunk to unit RMS before encoding (48 kHz model)
    chunk_length_s: float | None  # encode in chunks of this many seconds (None: whole input)
    overlap: float | None  # fraction of a chunk shared with the next one
    hidden_size: int  # latent width (encoder output, quantizer input)
    num_filters: int  # width of the first conv; doubled at every downsampling
    num_residual_layers: int  # residual blocks per resolution
    upsampling_ratios: tuple[int, ...]  # decoder strides; the encoder uses them reversed
    norm_type: str  # "weight_norm" (folded at conversion) or "time_group_norm"
    kernel_size: int  # first conv
    last_kernel_size: int  # last conv
    residual_kernel_size: int
    dilation_growth_rate: int
    use_causal_conv: bool
    pad_mode: str  # "reflect" or "constant"
    compress: int  # residual branch width = dim // compress
    num_lstm_layers: int
    trim_right_ratio: float
    codebook_size: int
    codebook_dim: int
    use_conv_shortcut: bool  # 1x1 conv on the residual path (False: identity)

    WHAT: ClassVar[str] = "EnCodec"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if d.get("codebook_dim", 0) is None:
            d["codebook_dim"] = d.get("hidden_size")  # upstream: None means hidden_size
        if "target_bandwidths" in d:
            d["target_bandwidths"] = [float(b) for b in d["target_bandwidths"]]
        return d

    def validate(self) -> None:
        if self.norm_type not in ("weight_norm", "time_group_norm"):
            raise ValueError(f"norm_type must be 'weight_norm' or 'time_group_norm', got "
                             f"{self.norm_type!r}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {self.pad_mode!r}")
        if 2 ** self.codebook_nbits != self.codebook_size:
            raise ValueError(f"codebook_size must be a power of 2, got {self.codebook_size}")
        if self.num_quantizers < 1:
            raise ValueError(f"target bandwidths {self.target_bandwidths} allow no quantizer "
                             f"stage at {self.frame_rate} frames/s x {self.codebook_nbits} bits")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsampling_ratios)

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)

    @property
    def codebook_nbits(self) -> int:
        return math.ceil(math.log2(self.codebook_size))

    @property
    def num_quantizers(self) -> int:
        return int(1000 * self.target_bandwidths[-1] // (self.frame_rate * self.codebook_nbits))

    @property
    def chunk_length(self) -> int | None:
        return None if self.chunk_length_s is None else int(self.chunk_length_s * self.sampling_rate)

    @property
    def chunk_stride(self) -> int | None:
        if self.chunk_length_s is None or self.overlap is None:
            return None
        return max(1, int((1.0 - self.overlap) * self.chunk_length))


_COMMON = dict(hidden_size=128, num_filters=32, num_residual_layers=1,
               upsampling_ratios=(8, 5, 4, 2), kernel_size=7, last_kernel_size=7,
               residual_kernel_size=3, dilation_growth_rate=2, pad_mode="reflect", compress=2,
               num_lstm_layers=2, trim_right_ratio=1.0, codebook_size=1024, codebook_dim=128,
               use_conv_shortcut=True)
# The published configurations (facebook/encodec_24khz and facebook/encodec_48khz config.json).
PRESETS: dict[str, EncodecConfig] = {
    "encodec-24khz": EncodecConfig(
        **_COMMON, target_bandwidths=(1.5, 3.0, 6.0, 12.0, 24.0), sampling_rate=24000,
        audio_channels=1, normalize=False, chunk_length_s=None, overlap=None,
        norm_type="weight_norm", use_causal_conv=True),
    "encodec-48khz": EncodecConfig(
        **_COMMON, target_bandwidths=(3.0, 6.0, 12.0, 24.0), sampling_rate=48000,
        audio_channels=2, normalize=True, chunk_length_s=1.0, overlap=0.01,
        norm_type="time_group_norm", use_causal_conv=False),
}
