"""Voxtral configuration, read from transformers' `VoxtralConfig` dict (config.json).

Field names are upstream's (`audio_config` / `text_config` sub-dicts). A missing required key is
an error; options this port does not implement (another activation, scaled embeddings, rope
scaling, a sliding window) are refused by name instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig
from mlx_impl.layers.llm import LMArgs


@dataclass(frozen=True)
class AudioConfig(StrictConfig):
    num_mel_bins: int  # 128 for Voxtral (Whisper large-v3 front end)
    max_source_positions: int  # encoder positions per chunk: mel frames / 2 (1500 for 30 s)
    hidden_size: int  # 1280
    num_attention_heads: int  # 20
    num_hidden_layers: int  # 32
    intermediate_size: int  # 5120: the encoder MLP width and the projector's stacked width

    WHAT: ClassVar[str] = "Voxtral audio_config"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """The Whisper-encoder fields of the `audio_config` dict (its other keys are upstream's
        encoder options, checked by `VoxtralConfig.prepare`), as ints."""
        return {k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__}

    def validate(self) -> None:
        if self.intermediate_size != 4 * self.hidden_size:
            raise ValueError(f"audio_config.intermediate_size must be 4 * hidden_size (the Whisper "
                             f"encoder MLP and the 4-frame projector stack), got "
                             f"{self.intermediate_size} for hidden_size {self.hidden_size}")
        if self.max_source_positions % self.stack:
            raise ValueError(f"max_source_positions {self.max_source_positions} is not a multiple "
                             f"of the {self.stack}-frame stack")

    @property
    def n_frames(self) -> int:
        """Mel frames of one chunk (conv2 halves the time axis)."""
        return 2 * self.max_source_positions

    @property
    def stack(self) -> int:
        """Encoder frames stacked into one audio token (upstream reshapes to intermediate_size)."""
        return self.intermediate_size // self.hidden_size

    @property
    def tokens_per_chunk(self) -> int:
        return self.max_source_positions // self.stack


@dataclass(frozen=True)
class VoxtralConfig(StrictConfig):
    audio: AudioConfig
    text: LMArgs
    audio_token_id: int  # the [AUDIO] placeholder replaced by projected audio frames (24)
    bos_token_id: int  # <s> (1)
    eos_token_id: int  # </s> (2): greedy decoding stops after it

    WHAT: ClassVar[str] = "Voxtral"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """The nested upstream dict -> the fields: `audio` (AudioConfig), `text` (LMArgs), the
        special ids; options this port does not implement are refused by name."""
        _need(d, ("audio_config", "text_config", "audio_token_id"), "config")
        a, t = d["audio_config"], d["text_config"]
        _need(a, ("num_mel_bins", "max_source_positions", "hidden_size", "num_attention_heads",
                  "num_hidden_layers", "intermediate_size"), "audio_config")
        _need(t, ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps"),
              "text_config")
        _only(d, "projector_hidden_act", "gelu")
        _only(a, "activation_function", "gelu")
        _only(a, "scale_embedding", False)
        _only(t, "hidden_act", "silu")
        _only(t, "sliding_window", None)
        rope = t.get("rope_parameters") or {}
        theta = rope.get("rope_theta", t.get("rope_theta"))
        if theta is None:
            raise ValueError("text_config has neither rope_parameters.rope_theta nor rope_theta")
        if rope.get("rope_type", "default") != "default" or t.get("rope_scaling"):
            raise ValueError(f"only the default rope is implemented; text_config has "
                             f"rope_parameters={rope} rope_scaling={t.get('rope_scaling')}")
        audio = AudioConfig.from_dict(a)
        text = LMArgs(
            vocab_size=int(t["vocab_size"]), hidden_size=int(t["hidden_size"]),
            intermediate_size=int(t["intermediate_size"]),
            num_hidden_layers=int(t["num_hidden_layers"]),
            num_attention_heads=int(t["num_attention_heads"]),
            num_key_value_heads=int(t["num_key_value_heads"]), head_dim=int(t["head_dim"]),
            rms_norm_eps=float(t["rms_norm_eps"]), rope_theta=float(theta),
            attention_bias=bool(t.get("attention_bias", False)),
            mlp_bias=bool(t.get("mlp_bias", False)),
            tie_word_embeddings=bool(t.get("tie_word_embeddings", False)))
        return dict(audio=audio, text=text, audio_token_id=int(d["audio_token_id"]),
                    bos_token_id=int(t.get("bos_token_id", 1)),
                    eos_token_id=int(t.get("eos_token_id", 2)))


def _need(d: Mapping, keys, where: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"Voxtral {where} is missing {missing}; is it a VoxtralConfig dict?")


def _only(d: Mapping, key: str, value) -> None:
    if key in d and d[key] != value:
        raise ValueError(f"{key}={d[key]!r} is not implemented; this port supports {value!r}")
