"""Parakeet configuration, with the field names of transformers 5.24.0's `ParakeetEncoderConfig`
and `ParakeetCTCConfig` / `ParakeetRNNTConfig` / `ParakeetTDTConfig`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

MODEL_TYPES = ("parakeet_ctc", "parakeet_rnnt", "parakeet_tdt")


def _pick(cls, d: dict, what: str) -> dict:
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in d]
    if missing:
        raise ValueError(f"Parakeet {what} config is missing {missing}; pass the model's "
                         "config.json (transformers Parakeet*Config.to_dict())")
    return {n: d[n] for n in names}


@dataclass(frozen=True)
class EncoderConfig:
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

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        cfg = cls(**_pick(cls, d, "encoder"))
        if cfg.hidden_act != "silu":
            raise ValueError(f"hidden_act={cfg.hidden_act!r} is not supported; this port "
                             "implements 'silu' (every released Parakeet)")
        n = round(math.log2(cfg.subsampling_factor))
        if 2 ** n != cfg.subsampling_factor or cfg.subsampling_conv_stride != 2:
            raise ValueError(f"subsampling_factor {cfg.subsampling_factor} with stride "
                             f"{cfg.subsampling_conv_stride}: this port implements stride-2 "
                             "convs and a power-of-two factor")
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ValueError(f"hidden_size {cfg.hidden_size} is not divisible by "
                             f"num_attention_heads {cfg.num_attention_heads}")
        if cfg.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd ('same' padding), got "
                             f"{cfg.conv_kernel_size}")
        return cfg

    @property
    def n_subsampling_convs(self) -> int:
        return round(math.log2(self.subsampling_factor))


@dataclass(frozen=True)
class ParakeetConfig:
    model_type: str  # "parakeet_ctc" | "parakeet_rnnt" | "parakeet_tdt"
    vocab_size: int  # output classes, blank included
    blank_token_id: int  # CTC: pad_token_id upstream; transducers: blank_token_id
    encoder_config: EncoderConfig
    decoder_hidden_size: int | None  # transducers: prediction/joint network width
    num_decoder_layers: int | None  # transducers: LSTM layers
    max_symbols_per_step: int | None  # transducers: greedy cap (RNN-T: per frame; both: length)
    decoder_start_token_id: int | None  # transducers: first prediction-network input
    durations: tuple[int, ...] | None  # TDT: frame advance of each duration class

    @classmethod
    def from_dict(cls, d: dict) -> ParakeetConfig:
        kind = d.get("model_type")
        if kind not in MODEL_TYPES:
            raise ValueError(f"model_type {kind!r} is not a Parakeet ASR model; expected one of "
                             f"{MODEL_TYPES}")
        if "encoder_config" not in d or "vocab_size" not in d:
            raise ValueError("Parakeet config is missing encoder_config or vocab_size")
        enc = EncoderConfig.from_dict(d["encoder_config"])
        if kind == "parakeet_ctc":
            if d.get("pad_token_id") is None:
                raise ValueError("Parakeet CTC config has no pad_token_id (the CTC blank)")
            return cls(kind, int(d["vocab_size"]), int(d["pad_token_id"]), enc,
                       None, None, None, None, None)
        keys = ["blank_token_id", "decoder_hidden_size", "num_decoder_layers",
                "max_symbols_per_step", "hidden_act"]
        keys += ["durations"] if kind == "parakeet_tdt" else []
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"Parakeet {kind} config is missing {missing}")
        if d["hidden_act"] != "relu":
            raise ValueError(f"joint activation {d['hidden_act']!r} is not supported; this port "
                             "implements 'relu'")
        start = d.get("decoder_start_token_id")
        if start is None:
            raise ValueError(f"Parakeet {kind} config has no decoder_start_token_id; upstream "
                             "generate() needs one (set it to the blank id)")
        durations = tuple(int(x) for x in d["durations"]) if kind == "parakeet_tdt" else None
        return cls(kind, int(d["vocab_size"]), int(d["blank_token_id"]), enc,
                   int(d["decoder_hidden_size"]), int(d["num_decoder_layers"]),
                   int(d["max_symbols_per_step"]), int(start), durations)
