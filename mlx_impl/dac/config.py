"""DAC configuration, with the field names of transformers' `DacConfig` (5.24.0).

`from_dict` reads a transformers `config.json`. Keys that describe no architecture are ignored:
bookkeeping (`model_type`, `transformers_version`, ...) and the fields `DacConfig` recomputes
in `__post_init__` whatever the file says (`upsampling_ratios`, `hidden_size`, `hop_length`; the
published descript/dac_24khz and dac_16khz files carry a stale `hop_length: 512` although their
hop is 320). A missing architecture key is an error. The training-loss fields are kept so a
config round-trips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import BOOKKEEPING, StrictConfig


@dataclass(frozen=True)
class DacConfig(StrictConfig):
    encoder_hidden_size: int  # width of the first encoder conv; doubled at every downsampling
    downsampling_ratios: tuple[int, ...]  # encoder strides; the decoder uses them reversed
    decoder_hidden_size: int  # width of the first decoder conv; halved at every upsampling
    n_codebooks: int  # residual quantizer stages
    codebook_size: int  # codes per stage (a power of 2)
    codebook_dim: int  # factorised code space (in_proj output)
    sampling_rate: int  # Hz of the audio in and out
    quantizer_dropout: float = 0.0  # training only
    commitment_loss_weight: float = 0.25  # training only
    codebook_loss_weight: float = 1.0  # training only

    WHAT: ClassVar[str] = "DAC"
    # recomputed by transformers' DacConfig.__post_init__ from the fields above
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {"upsampling_ratios", "hidden_size",
                                                       "hop_length"}

    def validate(self) -> None:
        if 2 ** int(math.log2(self.codebook_size)) != self.codebook_size:
            raise ValueError(f"codebook_size must be a power of 2, got {self.codebook_size}")
        if self.n_codebooks < 1 or not self.downsampling_ratios:
            raise ValueError("need at least one codebook and one downsampling ratio")
        if self.decoder_hidden_size % 2 ** len(self.downsampling_ratios):
            raise ValueError(f"decoder_hidden_size {self.decoder_hidden_size} must be divisible "
                             f"by 2**{len(self.downsampling_ratios)}")

    @property
    def upsampling_ratios(self) -> tuple[int, ...]:
        return self.downsampling_ratios[::-1]

    @property
    def hidden_size(self) -> int:  # latent width: encoder output, quantizer input
        return self.encoder_hidden_size * 2 ** len(self.downsampling_ratios)

    @property
    def hop_length(self) -> int:
        return math.prod(self.downsampling_ratios)

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)


_COMMON = dict(encoder_hidden_size=64, decoder_hidden_size=1536, codebook_size=1024,
               codebook_dim=8, quantizer_dropout=0.0)
# The published configurations (descript/dac_44khz, dac_24khz, dac_16khz config.json).
PRESETS: dict[str, DacConfig] = {
    "dac-44khz": DacConfig(**_COMMON, downsampling_ratios=(2, 4, 8, 8), n_codebooks=9,
                           sampling_rate=44100),
    "dac-24khz": DacConfig(**_COMMON, downsampling_ratios=(2, 4, 5, 8), n_codebooks=32,
                           sampling_rate=24000),
    "dac-16khz": DacConfig(**_COMMON, downsampling_ratios=(2, 4, 5, 8), n_codebooks=12,
                           sampling_rate=16000),
}
