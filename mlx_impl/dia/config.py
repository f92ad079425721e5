"""Dia configuration: transformers 5.24.0 `DiaConfig` (config.json of a
`DiaForConditionalGeneration.save_pretrained` folder: `encoder_config`, `decoder_config`,
`delay_pattern`), read strictly. Field names are upstream's; a missing required key is an
error; a rope type other than "default" or an activation other than silu is refused by name.
The top-level `pad/eos/bos_token_id` are deprecated upstream (they overwrite the decoder's);
set, they are refused here with the fix.

Presets: `mlx_impl.dia.presets` (plain data, importable without mlx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import BOOKKEEPING, StrictConfig
from mlx_impl.layers.llm import LMArgs

_SUB_IGNORED = BOOKKEEPING | {"initializer_range", "use_cache"}


def _rope_theta(rope: dict, what: str) -> float:
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"{what}: rope_type {rope.get('rope_type')!r} is not implemented; Dia "
                         "uses 'default'")
    if "rope_theta" not in rope:
        raise ValueError(f"{what}: rope_parameters has no rope_theta")
    return float(rope["rope_theta"])


@dataclass(frozen=True)
class DiaEncoderConfig(StrictConfig):
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    norm_eps: float
    vocab_size: int  # 256: UTF-8 bytes ([S1] = 1, [S2] = 2, pad = 0)
    max_position_embeddings: int  # text ids per prompt
    rope_parameters: dict
    hidden_act: str = "silu"

    WHAT: ClassVar[str] = "Dia encoder (DiaEncoderConfig)"
    IGNORED: ClassVar[frozenset[str]] = _SUB_IGNORED

    def validate(self) -> None:
        if self.hidden_act != "silu":
            raise ValueError(f"{self.WHAT}: hidden_act {self.hidden_act!r} is not implemented")
        _rope_theta(self.rope_parameters, self.WHAT)

    @property
    def lm_args(self) -> LMArgs:
        return LMArgs(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      intermediate_size=self.intermediate_size,
                      num_hidden_layers=self.num_hidden_layers,
                      num_attention_heads=self.num_attention_heads,
                      num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
                      rms_norm_eps=float(self.norm_eps),
                      rope_theta=_rope_theta(self.rope_parameters, self.WHAT),
                      attention_scale=1.0)


@dataclass(frozen=True, kw_only=True)
class DiaDecoderConfig(DiaEncoderConfig):
    cross_num_attention_heads: int
    cross_head_dim: int
    cross_num_key_value_heads: int
    cross_hidden_size: int  # the encoder's width
    num_channels: int  # codebooks
    eos_token_id: int  # 1024 in Dia
    pad_token_id: int  # 1025
    bos_token_id: int  # 1026

    WHAT: ClassVar[str] = "Dia decoder (DiaDecoderConfig)"

    def validate(self) -> None:
        super().validate()
        if not self.eos_token_id < self.pad_token_id < self.vocab_size \
                or not self.bos_token_id < self.vocab_size:
            raise ValueError(f"{self.WHAT}: special ids eos {self.eos_token_id}, pad "
                             f"{self.pad_token_id}, bos {self.bos_token_id} must lie in the "
                             f"vocabulary of {self.vocab_size}, eos below pad (Dia's layout)")


@dataclass(frozen=True)
class DiaConfig(StrictConfig):
    encoder_config: DiaEncoderConfig
    decoder_config: DiaDecoderConfig
    delay_pattern: tuple[int, ...]  # per channel, in steps
    norm_eps: float = 1e-5  # unused upstream (each sub-config has its own)

    WHAT: ClassVar[str] = "Dia (DiaConfig)"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {
        "initializer_range", "use_cache", "pad_token_id", "eos_token_id", "bos_token_id"}

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if d.get("model_type", "dia") != "dia":
            raise ValueError(f"{cls.WHAT}: config.json has model_type {d.get('model_type')!r}, "
                             "expected 'dia'")
        for k in ("pad_token_id", "eos_token_id", "bos_token_id"):
            if d.get(k) is not None:
                raise ValueError(f"{cls.WHAT}: top-level {k} is set (deprecated upstream, it "
                                 "overwrites the decoder's); set it in decoder_config instead")
        for k in ("encoder_config", "decoder_config"):
            if k not in d or not isinstance(d[k], dict):
                raise ValueError(f"{cls.WHAT}: config.json needs a {k} block")
        d["encoder_config"] = DiaEncoderConfig.from_dict(d["encoder_config"])
        d["decoder_config"] = DiaDecoderConfig.from_dict(d["decoder_config"])
        return d

    def validate(self) -> None:
        dec = self.decoder_config
        if len(self.delay_pattern) != dec.num_channels:
            raise ValueError(f"{self.WHAT}: delay_pattern has {len(self.delay_pattern)} entries "
                             f"for {dec.num_channels} channels")
        if min(self.delay_pattern) < 0:
            raise ValueError(f"{self.WHAT}: delays must be >= 0, got {self.delay_pattern}")
        if dec.cross_hidden_size != self.encoder_config.hidden_size:
            raise ValueError(f"{self.WHAT}: decoder cross_hidden_size {dec.cross_hidden_size} "
                             f"!= encoder hidden_size {self.encoder_config.hidden_size}")

    @property
    def max_delay(self) -> int:
        return max(self.delay_pattern)

    def to_dict(self) -> dict:
        return {"encoder_config": self.encoder_config.to_dict(),
                "decoder_config": self.decoder_config.to_dict(),
                "delay_pattern": list(self.delay_pattern), "norm_eps": self.norm_eps}


from mlx_impl.dia.presets import PRESETS  # noqa: E402,F401  (re-exported)
