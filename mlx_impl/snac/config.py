"""SNAC configuration, with the argument names of `snac.SNAC` (snac 1.2.1), i.e. the keys of
the hub `config.json` files. A missing key is an error; `latent_dim: null` means
`encoder_dim * 2 ** len(encoder_rates)` (upstream's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig


@dataclass(frozen=True)
class SnacConfig(StrictConfig):
    sampling_rate: int  # Hz of the audio in and out
    encoder_dim: int  # width of the first encoder conv; doubled at every downsampling
    encoder_rates: tuple[int, ...]  # encoder strides
    decoder_dim: int  # width after the decoder's input convs; halved at every upsampling
    decoder_rates: tuple[int, ...]  # decoder strides
    attn_window_size: int | None  # local attention window (frames); None: no attention layers
    codebook_size: int  # codes per stage
    codebook_dim: int  # factorised code space (in_proj output)
    vq_strides: tuple[int, ...]  # time pooling of each quantizer stage (coarse to fine)
    noise: bool  # noise blocks after each decoder upsampling
    depthwise: bool  # depthwise (grouped) convs in residual units and around the latent
    latent_dim: int | None = None  # None: encoder_dim * 2 ** len(encoder_rates)

    WHAT: ClassVar[str] = "SNAC"
    IGNORED: ClassVar[frozenset[str]] = frozenset()  # snac's config.json has no bookkeeping

    def validate(self) -> None:
        if not self.vq_strides or not self.encoder_rates or not self.decoder_rates:
            raise ValueError("encoder_rates, decoder_rates and vq_strides must be non-empty")
        if self.decoder_dim % 2 ** len(self.decoder_rates):
            raise ValueError(f"decoder_dim {self.decoder_dim} must be divisible by "
                             f"2**{len(self.decoder_rates)}")
        for dim in (self.latent, self.decoder_dim):
            if self.attn_window_size is not None and dim % 64:
                raise ValueError(f"attention layers need widths divisible by 64 (heads of 64), "
                                 f"got {dim}")

    @property
    def latent(self) -> int:
        return self.latent_dim or self.encoder_dim * 2 ** len(self.encoder_rates)

    @property
    def hop_length(self) -> int:
        return math.prod(self.encoder_rates)

    @property
    def pad_multiple(self) -> int:
        """Inputs are zero-padded on the right to a multiple of this (upstream `preprocess`)."""
        return self.hop_length * math.lcm(self.vq_strides[0], self.attn_window_size or 1)


# hubertsiuzdak/snac_24khz config.json
PRESETS: dict[str, SnacConfig] = {
    "snac-24khz": SnacConfig(sampling_rate=24000, encoder_dim=48, encoder_rates=(2, 4, 8, 8),
                             decoder_dim=1024, decoder_rates=(8, 8, 4, 2), attn_window_size=None,
                             codebook_size=4096, codebook_dim=8, vq_strides=(4, 2, 1),
                             noise=True, depthwise=True),
}
