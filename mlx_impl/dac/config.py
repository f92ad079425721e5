"""DAC configuration, with the field names of transformers' `DacConfig` (5.24.0).

`from_dict` reads a transformers `config.json`. Keys that describe no architecture are ignored:
bookkeeping (`model_type`, `transformers_version`, ...) and the fields `DacConfig` recomputes
in `__post_init__` whatever the file says (`upsampling_ratios`, `hidden_size`, `hop_length`; the
published descript/dac_24khz and dac_16khz files carry a stale `hop_length: 512` although their
hop is 320). A missing architecture key is an error. The training-loss fields are kept so a
config round-trips.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

_IGNORED = {"architectures", "model_type", "transformers_version", "dtype", "torch_dtype",
            "return_dict", "output_hidden_states", "output_attentions", "id2label", "label2id",
            "problem_type", "chunk_size_feed_forward", "is_encoder_decoder",
            "tie_word_embeddings", "_name_or_path", "_attn_implementation_autoset",
            # recomputed by DacConfig.__post_init__ from the fields below
            "upsampling_ratios", "hidden_size", "hop_length"}


@dataclass(frozen=True)
class DacConfig:
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

    @classmethod
    def from_dict(cls, d: dict) -> DacConfig:
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"DAC config is missing {missing}; pass a full transformers "
                             f"DacConfig dict (config.json), got keys {sorted(d)}")
        unknown = sorted(set(d) - set(names) - _IGNORED)
        if unknown:
            raise ValueError(f"DAC config has unknown keys {unknown}; expected {names}")
        v = {n: d[n] for n in names if n in d}
        v["downsampling_ratios"] = tuple(int(r) for r in v["downsampling_ratios"])
        v["quantizer_dropout"] = float(v.get("quantizer_dropout", 0.0))
        cfg = cls(**v)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if 2 ** int(math.log2(self.codebook_size)) != self.codebook_size:
            raise ValueError(f"codebook_size must be a power of 2, got {self.codebook_size}")
        if self.n_codebooks < 1 or not self.downsampling_ratios:
            raise ValueError("need at least one codebook and one downsampling ratio")
        if self.decoder_hidden_size % 2 ** len(self.downsampling_ratios):
            raise ValueError(f"decoder_hidden_size {self.decoder_hidden_size} must be divisible "
                             f"by 2**{len(self.downsampling_ratios)}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["downsampling_ratios"] = list(self.downsampling_ratios)
        return d

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
