"""Parakeet configuration, with the field names of transformers 5.24.0's `ParakeetEncoderConfig`
and `ParakeetCTCConfig` / `ParakeetRNNTConfig` / `ParakeetTDTConfig`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig

MODEL_TYPES = ("parakeet_ctc", "parakeet_rnnt", "parakeet_tdt")


@dataclass(frozen=True)
class EncoderConfig(StrictConfig):
    hidden_size: int  # conformer width (1024 for the 0.6b models)
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int  # feed-forward width (4 x hidden)
    hidden_act: str  # feed-forward and convolution-module activation ("silu")
    attention_bias: bool  # attention and feed-forward linears have biases
    convolution_bias: bool  # convolution-module convs have biases
    conv_kernel_size: int  # depthwise conv kernel of the convolution module (9)
    subsampling_factor: int  # time reduction of the conv front end (8 = 3 stride-2 convs)
    subsampling_conv_channels: int  # channels of the front-end convs (256)
    num_mel_bins: int  # input features (128 for the 0.6b models)
    subsampling_conv_kernel_size: int
    subsampling_conv_stride: int
    scale_input: bool  # multiply the subsampled features by sqrt(hidden_size)

    WHAT: ClassVar[str] = "Parakeet encoder"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """The fields of a transformers `ParakeetEncoderConfig` dict (its other keys dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in d.items() if k in names}

    def validate(self) -> None:
        if self.hidden_act != "silu":
            raise ValueError(f"hidden_act={self.hidden_act!r} is not supported; this port "
                             "implements 'silu' (every released Parakeet)")
        n = round(math.log2(self.subsampling_factor))
        if 2 ** n != self.subsampling_factor or self.subsampling_conv_stride != 2:
            raise ValueError(f"subsampling_factor {self.subsampling_factor} with stride "
                             f"{self.subsampling_conv_stride}: this port implements stride-2 "
                             "convs and a power-of-two factor")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd ('same' padding), got "
                             f"{self.conv_kernel_size}")

    @property
    def n_subsampling_convs(self) -> int:
        return round(math.log2(self.subsampling_factor))


@dataclass(frozen=True)
class ParakeetConfig(StrictConfig):
    model_type: str  # "parakeet_ctc" | "parakeet_rnnt" | "parakeet_tdt"
    vocab_size: int  # output classes, blank included
    blank_token_id: int  # CTC: pad_token_id upstream; transducers: blank_token_id
    encoder_config: EncoderConfig
    decoder_hidden_size: int | None  # transducers: prediction/joint network width
    num_decoder_layers: int | None  # transducers: LSTM layers
    max_symbols_per_step: int | None  # transducers: greedy cap (RNN-T: per frame; both: length)
    decoder_start_token_id: int | None  # transducers: first prediction-network input
    durations: tuple[int, ...] | None  # TDT: frame advance of each duration class

    WHAT: ClassVar[str] = "Parakeet"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """The fields from a transformers Parakeet{CTC,RNNT,TDT}Config dict: the CTC blank is its
        `pad_token_id`; the transducers' keys are required (their joint must be 'relu', their
        `decoder_start_token_id` set); other keys are dropped."""
        kind = d.get("model_type")
        if kind not in MODEL_TYPES:
            raise ValueError(f"model_type {kind!r} is not a Parakeet ASR model; expected one of "
                             f"{MODEL_TYPES}")
        if "encoder_config" not in d or "vocab_size" not in d:
            raise ValueError("Parakeet config is missing encoder_config or vocab_size")
        out = dict(model_type=kind, vocab_size=int(d["vocab_size"]),
                   encoder_config=EncoderConfig.from_dict(d["encoder_config"]),
                   decoder_hidden_size=None, num_decoder_layers=None, max_symbols_per_step=None,
                   decoder_start_token_id=None, durations=None)
        if kind == "parakeet_ctc":
            if d.get("pad_token_id") is None:
                raise ValueError("Parakeet CTC config has no pad_token_id (the CTC blank)")
            return dict(out, blank_token_id=int(d["pad_token_id"]))
        keys = ["blank_token_id", "decoder_hidden_size", "num_decoder_layers",
                "max_symbols_per_step", "hidden_act"]
        keys += ["durations"] if kind == "parakeet_tdt" else []
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"Parakeet {kind} config is missing {missing}")
        if d["hidden_act"] != "relu":
            raise ValueError(f"joint activation {d['hidden_act']!r} is not supported; this port "
                             "implements 'relu'")
        if d.get("decoder_start_token_id") is None:
            raise ValueError(f"Parakeet {kind} config has no decoder_start_token_id; upstream "
                             "generate() needs one (set it to the blank id)")
        out.update({k: int(d[k]) for k in ("blank_token_id", "decoder_hidden_size",
                                           "num_decoder_layers", "max_symbols_per_step",
                                           "decoder_start_token_id")})
        if kind == "parakeet_tdt":
            out["durations"] = [int(x) for x in d["durations"]]
        return out
