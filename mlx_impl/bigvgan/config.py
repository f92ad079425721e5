"""BigVGAN configuration with the field names of the hub `config.json` (bigvgan 2.4.1 `AttrDict`).

The hub file also carries training settings (optimiser, discriminators, data paths): they are
ignored. A missing architecture or mel key is an error. `use_tanh_at_final` and
`use_bias_at_final` default to True when absent, as upstream's `h.get(..., True)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig


@dataclass(frozen=True)
class BigVGANConfig(StrictConfig):
    num_mels: int  # mel bands in
    upsample_rates: tuple[int, ...]  # transposed-conv strides; product = hop_size
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int  # conv_pre width; halved at every upsampling
    resblock: str  # "1" (AMPBlock1: convs1 + convs2) or "2" (AMPBlock2: convs)
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    activation: str  # "snake" or "snakebeta"
    snake_logscale: bool
    sampling_rate: int
    n_fft: int
    hop_size: int
    win_size: int
    fmin: float
    fmax: float | None  # None: sampling_rate / 2 (librosa)
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True

    WHAT: ClassVar[str] = "BigVGAN"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """Keep the architecture and mel keys (the hub file's training settings are dropped);
        numbers as upstream reads them (`resblock` a string, `fmin`/`fmax` floats)."""
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if "resblock" in d:
            d["resblock"] = str(d["resblock"])
        for k in ("fmin", "fmax"):
            if d.get(k) is not None:
                d[k] = float(d[k])
        return d

    def validate(self) -> None:
        if self.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {self.resblock!r}")
        if self.activation not in ("snake", "snakebeta"):
            raise ValueError(f"activation must be 'snake' or 'snakebeta', got {self.activation!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        hop = 1
        for r in self.upsample_rates:
            hop *= r
        if hop != self.hop_size:
            raise ValueError(f"product of upsample_rates is {hop}, hop_size is {self.hop_size}")
