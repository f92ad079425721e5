"""Spark-TTS configuration: BiCodec's `audio_tokenizer` block (BiCodec/config.yaml), the model
folder's config.yaml, and the wav2vec2 / Qwen2 configs (transformers config.json). Field names
are upstream's; a missing required key is an error."""

from __future__ import annotations

import math

from collections.abc import Mapping
from dataclasses import dataclass


def _need(d: Mapping, keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{what} lacks {missing}; pass the model folder's own config file")


@dataclass(frozen=True)
class VocosArgs:
    input_channels: int
    vocos_dim: int
    vocos_intermediate_dim: int
    vocos_num_layers: int
    out_channels: int
    sample_ratios: tuple[int, ...]
    condition_dim: int | None = None
    use_tanh_at_final: bool = False

    @classmethod
    def from_dict(cls, d: Mapping, what: str) -> "VocosArgs":
        _need(d, ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers",
                  "out_channels"), what)
        ratios = tuple(int(r) for r in d.get("sample_ratios", (1, 1)))
        if any(r != 1 for r in ratios):
            raise ValueError(f"{what}: sample_ratios {list(ratios)}; only ratio 1 (the released "
                             "Spark-TTS-0.5B config) is ported")
        return cls(int(d["input_channels"]), int(d["vocos_dim"]),
                   int(d["vocos_intermediate_dim"]), int(d["vocos_num_layers"]),
                   int(d["out_channels"]), ratios,
                   None if d.get("condition_dim") is None else int(d["condition_dim"]),
                   bool(d.get("use_tanh_at_final", False)))


@dataclass(frozen=True)
class BiCodecConfig:
    mel: dict  # sample_rate, n_fft, win_length, hop_length, mel_fmin, mel_fmax, num_mels
    encoder: VocosArgs
    prenet: VocosArgs
    codebook_size: int
    codebook_dim: int
    latent_dim: int  # quantizer input_dim
    speaker_input_dim: int
    speaker_out_dim: int
    speaker_latent_dim: int
    token_num: int
    fsq_levels: tuple[int, ...]
    fsq_num_quantizers: int
    decoder_input: int
    decoder_channels: int
    decoder_rates: tuple[int, ...]
    decoder_kernels: tuple[int, ...]

    @classmethod
    def from_dict(cls, d: Mapping) -> "BiCodecConfig":
        d = d.get("audio_tokenizer", d)
        _need(d, ("mel_params", "encoder", "decoder", "quantizer", "speaker_encoder", "prenet"),
              "BiCodec config.yaml (audio_tokenizer)")
        q, s, g = d["quantizer"], d["speaker_encoder"], d["decoder"]
        _need(q, ("input_dim", "codebook_size", "codebook_dim"), "quantizer")
        _need(g, ("input_channel", "channels", "rates", "kernel_sizes"), "decoder")
        if int(s.get("fsq_num_quantizers", 1)) != 1:
            raise ValueError("only one residual FSQ quantizer (the released config) is ported")
        return cls(dict(d["mel_params"]), VocosArgs.from_dict(d["encoder"], "encoder"),
                   VocosArgs.from_dict(d["prenet"], "prenet"), int(q["codebook_size"]),
                   int(q["codebook_dim"]), int(q["input_dim"]), int(s.get("input_dim", 100)),
                   int(s.get("out_dim", 512)), int(s.get("latent_dim", 128)),
                   int(s.get("token_num", 32)),
                   tuple(int(v) for v in s.get("fsq_levels", (4, 4, 4, 4, 4, 4))), 1,
                   int(g["input_channel"]), int(g["channels"]),
                   tuple(int(r) for r in g["rates"]), tuple(int(k) for k in g["kernel_sizes"]))

    @property
    def hop_length(self) -> int:
        return math.prod(self.decoder_rates)
