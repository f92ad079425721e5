"""BigVGAN configuration with the field names of the hub `config.json` (bigvgan 2.4.1 `AttrDict`).

The hub file also carries training settings (optimiser, discriminators, data paths): they are
ignored. A missing architecture or mel key is an error. `use_tanh_at_final` and
`use_bias_at_final` default to True when absent, as upstream's `h.get(..., True)`.
"""

from __future__ import annotations

from dataclasses import dataclass

_REQUIRED = ("num_mels", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
             "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes", "activation",
             "snake_logscale", "sampling_rate", "n_fft", "hop_size", "win_size", "fmin", "fmax")


@dataclass(frozen=True)
class BigVGANConfig:
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

    @classmethod
    def from_dict(cls, d: dict) -> BigVGANConfig:
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ValueError(f"BigVGAN config is missing {missing}; pass the model's config.json")
        cfg = cls(
            num_mels=int(d["num_mels"]), upsample_rates=tuple(int(r) for r in d["upsample_rates"]),
            upsample_kernel_sizes=tuple(int(k) for k in d["upsample_kernel_sizes"]),
            upsample_initial_channel=int(d["upsample_initial_channel"]), resblock=str(d["resblock"]),
            resblock_kernel_sizes=tuple(int(k) for k in d["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(int(x) for x in ds) for ds in d["resblock_dilation_sizes"]),
            activation=str(d["activation"]), snake_logscale=bool(d["snake_logscale"]),
            sampling_rate=int(d["sampling_rate"]), n_fft=int(d["n_fft"]), hop_size=int(d["hop_size"]),
            win_size=int(d["win_size"]), fmin=float(d["fmin"]),
            fmax=None if d["fmax"] is None else float(d["fmax"]),
            use_tanh_at_final=bool(d.get("use_tanh_at_final", True)),
            use_bias_at_final=bool(d.get("use_bias_at_final", True)))
        cfg.validate()
        return cfg

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
